"""The base class of the contrastive losses: temperature, gathering, and the one public method
(:meth:`ContrastiveLoss.loss_and_batch`) that both ``forward`` and :class:`ContrastiveMemory`
call."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lcl.losses.functional import contrastive_loss


class ContrastiveLoss(nn.Module):
    """Supervised contrastive loss over a batch of L2-normalised features (the common part of
    :class:`LabelAwareContrastiveLoss` and :class:`SupConLoss`).

    With ``z = normalize(features)``, ``s_ij = z_i . z_j / tau`` and ``W_ij`` the anchor's
    weight for candidate ``j`` (see :mod:`lcl.losses.functional`)::

        l_i = -1/|P(i)| * sum_{p in P(i)} W_ip * (s_ip - log sum_{a != i} W_ia exp(s_ia))

    averaged over anchors with at least one positive. A subclass says where ``W`` comes from
    by overriding :meth:`weight_arguments` (the default, all weights 1, is SupCon) and defines
    ``forward`` with the inputs it takes.

    Args:
        temperature: tau (> 0).
        gather_across_processes: under ``torch.distributed`` with more than one process,
            use every process's samples as candidates for the local anchors (with
            gradient). Shards may differ in size.

    Subclassing::

        class MyWeightedLoss(ContrastiveLoss):
            def weight_arguments(self, weight_logits):
                return {"weight_logits": weight_logits}   # arguments of contrastive_loss

            def forward(self, features, labels, weight_logits):
                return self.loss_and_batch(features, labels, weight_logits)[0]
    """

    def __init__(self, temperature: float = 0.3, gather_across_processes: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather_across_processes = gather_across_processes

    def weight_arguments(self, weight_logits: torch.Tensor | None) -> dict[str, Any]:
        """Keyword arguments of :func:`~lcl.losses.functional.contrastive_loss` that weight
        the candidates; unweighted here (``weight_logits`` must be None)."""
        if weight_logits is not None:
            raise ValueError(
                f"{type(self).__name__} takes no weight_logits; use LabelAwareContrastiveLoss"
            )
        return {}

    def loss_and_batch(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        weight_logits: torch.Tensor | None = None,
        memory_z: torch.Tensor | None = None,
        memory_labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The loss with optional extra candidates, and the batch a memory queue should keep.

        Inputs:
            features: (N, D) float embeddings; labels: (N,) integer class ids;
            weight_logits: (N, C) or None, as :meth:`weight_arguments` wants;
            memory_z: (M, D) normalised, detached extra candidates, with memory_labels (M,).

        Returns:
            ``(loss, batch_z, batch_labels)``: the scalar loss (scaled across processes as
            ``forward``'s) and the detached normalised batch with its labels, gathered from
            every process when the loss gathers.
        """
        return contrastive_loss(
            features,
            labels,
            self.temperature,
            gather_across_processes=self.gather_across_processes,
            memory_z=memory_z,
            memory_labels=memory_labels,
            **self.weight_arguments(weight_logits),
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, "
            f"gather_across_processes={self.gather_across_processes}"
        )
