"""Label-aware memory queue for the contrastive losses."""

from __future__ import annotations

import torch
from torch import nn

from lcl.losses.base import ContrastiveLoss


class ContrastiveMemory(nn.Module):
    """FIFO memory of past contrastive features that adds candidates to a wrapped
    :class:`~lcl.losses.base.ContrastiveLoss` (:class:`LabelAwareContrastiveLoss`,
    :class:`SupConLoss`) through its public ``loss_and_batch`` (in the spirit of the
    cross-batch memory of Wang et al., CVPR 2020, and MoCo's queue).

    The queue keeps the last ``memory_size`` detached, normalised features with their
    labels. While it is active, the candidates of each anchor are the live batch (gathered
    across processes when the loss gathers) followed by the queued samples, which act as
    positives and negatives in numerator and denominator alike. For LCL the anchor's own
    weights ``softmax(weight_logits)[i, y_q]`` weight a queued sample ``q`` by its label,
    so nothing but features and labels is stored. Only the live batch carries gradient:
    queued samples are constants.

    Warm-up rule: let ``step`` be the number of earlier training-mode calls. The queue
    takes part in a call iff it is not empty and either it is full (holds ``memory_size``
    items) or ``start_step`` is not None and ``step >= start_step``. With the default
    ``start_step=None`` it is used only once full; ``start_step=0`` uses whatever it holds
    from the start. After computing the loss a training-mode call enqueues the (gathered)
    batch and increments ``step``; in eval mode the queue is read but not changed. Under
    DDP every process enqueues the same gathered batch, so the queues stay identical.

    ``memory_size=0`` is the wrapped loss, unchanged. The queue, its labels, the write
    pointer, the fill count and the step are buffers, so ``state_dict`` checkpoints
    resume exactly (the feature width is taken from the checkpoint if needed).

    Args:
        loss: the wrapped :class:`~lcl.losses.base.ContrastiveLoss`.
        memory_size: K, number of past samples kept (0 disables the memory).
        start_step: see the warm-up rule above.
        feature_dim: D, to allocate the queue up front; otherwise it is allocated on the
            first call.

    Inputs:
        features: (N, D), labels: (N,), weight_logits: (N, C) for LCL, None for SupCon.

    Returns:
        Scalar loss, scaled across processes exactly as the wrapped loss's.

    Example::

        loss_fn = ContrastiveMemory(LabelAwareContrastiveLoss(0.3), memory_size=4096)
        loss = loss_fn(features, labels, weight_logits)
    """

    def __init__(
        self,
        loss: nn.Module,
        memory_size: int,
        start_step: int | None = None,
        feature_dim: int | None = None,
    ) -> None:
        super().__init__()
        if memory_size < 0:
            raise ValueError(f"memory_size must be >= 0, got {memory_size}")
        if not isinstance(loss, ContrastiveLoss):
            raise TypeError(
                "loss must be a ContrastiveLoss (LabelAwareContrastiveLoss, SupConLoss)"
            )
        self.loss = loss
        self.memory_size = int(memory_size)
        self.start_step = start_step
        self.register_buffer("queue", torch.zeros(self.memory_size, feature_dim or 0))
        self.register_buffer("queue_labels", torch.full((self.memory_size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("fill", torch.zeros((), dtype=torch.long))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def is_active(self) -> bool:
        """Whether the queue takes part in the next call (the warm-up rule)."""
        fill = int(self.fill)
        if self.memory_size == 0 or fill == 0:
            return False
        if fill >= self.memory_size:
            return True
        return self.start_step is not None and int(self.step) >= self.start_step

    def memory(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The queued ``(features, labels)``, oldest first."""
        fill = int(self.fill)
        if fill < self.memory_size:
            return self.queue[:fill], self.queue_labels[:fill]
        order = torch.roll(torch.arange(self.memory_size, device=self.queue.device), -int(self.ptr))
        return self.queue[order], self.queue_labels[order]

    def forward(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        weight_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.memory_size == 0:
            return self.loss.loss_and_batch(features, labels, weight_logits)[0]
        memory_z = memory_labels = None
        if self.is_active():
            fill = int(self.fill)
            if features.dim() == 2 and features.shape[1] != self.queue.shape[1]:
                raise ValueError(
                    f"feature width changed from {self.queue.shape[1]} to {features.shape[1]}"
                )
            memory_z, memory_labels = self.queue[:fill], self.queue_labels[:fill]
        loss, batch_z, batch_labels = self.loss.loss_and_batch(
            features, labels, weight_logits, memory_z, memory_labels
        )
        if self.training:
            self._enqueue(batch_z, batch_labels)
            self.step += 1
        return loss

    @torch.no_grad()
    def _enqueue(self, z: torch.Tensor, labels: torch.Tensor) -> None:
        size = self.memory_size
        if int(self.fill) == 0 and (
            self.queue.shape[1] != z.shape[1] or self.queue.dtype != z.dtype
        ):
            self.queue = z.new_zeros(size, z.shape[1])  # lazy allocation on first use
        elif self.queue.shape[1] != z.shape[1]:
            raise ValueError(f"feature width changed from {self.queue.shape[1]} to {z.shape[1]}")
        z, labels = z[-size:], labels[-size:]  # a batch larger than K keeps its last K rows
        idx = (self.ptr + torch.arange(z.shape[0], device=self.ptr.device)) % size
        self.queue[idx] = z.to(self.queue.device, self.queue.dtype)
        self.queue_labels[idx] = labels.to(self.queue_labels.device)
        self.ptr.copy_((self.ptr + z.shape[0]) % size)
        self.fill.copy_(torch.clamp(self.fill + z.shape[0], max=size))

    def reset(self) -> None:
        """Empty the queue and restart the step count."""
        self.queue.zero_()
        self.queue_labels.fill_(-1)
        self.ptr.zero_()
        self.fill.zero_()
        self.step.zero_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A queue allocated lazily has width 0 until the first call; take the checkpoint's.
        saved = state_dict.get(prefix + "queue")
        if saved is not None and saved.shape != self.queue.shape:
            self.queue = torch.zeros(saved.shape, dtype=saved.dtype, device=self.queue.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"memory_size={self.memory_size}, start_step={self.start_step}"
