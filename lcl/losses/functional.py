"""Vectorised core shared by :class:`LabelAwareContrastiveLoss`, :class:`SupConLoss` and
:class:`ContrastiveMemory`.

For anchor ``i`` and candidates ``j`` (the batch, possibly gathered from all processes,
possibly followed by a memory queue), with ``s_ij = z_i . z_j / tau`` and ``W_ij`` the
anchor's weight for candidate ``j`` (``softmax(weight_logits)[i, y_j]`` for LCL, 1 for
SupCon, 0 for the anchor's own column)::

    l_i = -1/|P(i)| * sum_{p in P(i)} W_ip * (s_ip - log sum_{a != i} W_ia * exp(s_ia))

``P(i)`` are the candidates other than ``i`` with the anchor's label. This is the
published LCL code's formula (the positive's weight multiplies outside the log; the
denominator runs over every candidate but the anchor itself, positives included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lcl.losses.distributed import (
    all_reduce_sum,
    gather_no_grad,
    gather_with_grad,
    is_distributed,
    shard_sizes,
)

__all__ = ["per_anchor_contrastive_loss", "weighted_contrastive_loss", "contrastive_loss"]


def _compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    # At least float32: half-precision exp/logsumexp lose too much for this loss.
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def exp_rows_in_place(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(exp, sum_exp, log_denom)`` of (A, M) ``logits`` with -inf on excluded candidates:
    ``exp = exp(logits - shift_i)`` written over ``logits`` (the one (A, M) buffer),
    ``sum_exp`` its row sums and ``log_denom = log sum_a exp(logits_ia)``, finite even for a
    row with no candidate at all (all -inf: its shift is taken as 0)."""
    shift = logits.amax(dim=1)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    exp = logits.sub_(shift[:, None]).exp_()
    sum_exp = exp.sum(dim=1)
    log_denom = shift + sum_exp.clamp(min=torch.finfo(sum_exp.dtype).tiny).log()
    return exp, sum_exp, log_denom


def without_autocast(device: torch.device):
    """A context in which autocast (bf16/fp16 mixed precision, which a Trainer turns on around
    the model's forward) is off, so the loss cores' matmuls run in the dtype of their float32
    inputs: under autocast ``torch.mm`` would return bf16 similarities, and the hand-written
    backward would then mix bf16 and float32 operands."""
    return torch.autocast(device_type=device.type, enabled=False)


def feature_grads(ctx, g: torch.Tensor, anchor_z: torch.Tensor, cand_z: torch.Tensor):
    """Gradients of the anchor and candidate features from (A, M) ``g = dl/ds`` with
    ``s = anchor_z cand_z^T / temperature``: two matmuls, each only when asked for."""
    grad_anchor = grad_cand = None
    if ctx.needs_input_grad[0]:
        grad_anchor = torch.mm(g, cand_z).mul_(1.0 / ctx.temperature)
    if ctx.needs_input_grad[1]:
        grad_cand = torch.mm(g.T, anchor_z).mul_(1.0 / ctx.temperature)
    return grad_anchor, grad_cand


class _ContrastiveCore(torch.autograd.Function):
    """Per-anchor ``l_i`` (A,) with a hand-written backward.

    The (A, M) similarity matrix is the only large object. Autograd would store and walk
    several copies of it; here the forward keeps one buffer (turned into exp in place) and
    the backward folds numerator and denominator into one matrix G with
    ``dl_i/ds_ia = w_iy * (softmax_a - [a in P(i)] / |P(i)|)``, then two matmuls.
    """

    @staticmethod
    def forward(
        ctx, anchor_z, cand_z, log_w, anchor_labels, cand_labels, self_rows, self_cols, temperature
    ):
        num_anchors = anchor_z.shape[0]
        positive = anchor_labels[:, None] == cand_labels[None, :]
        positive[self_rows, self_cols] = False
        num_pos = positive.sum(dim=1)
        if log_w is None:
            logits = torch.mm(anchor_z, cand_z.T).mul_(1.0 / temperature)
            sum_pos_sim = (logits * positive).sum(dim=1)
            w_pos = torch.ones_like(sum_pos_sim)
        else:
            gathered = log_w.gather(1, cand_labels[None, :].expand(num_anchors, -1))
            logits = torch.addmm(gathered, anchor_z, cand_z.T, alpha=1.0 / temperature)
            # All positives share the label y_i, hence the log weight log_w[i, y_i]; its
            # error here is ~eps * |log w| * w, negligible.
            log_w_pos = log_w.gather(1, anchor_labels[:, None]).squeeze(1)
            sum_pos_sim = (logits * positive).sum(dim=1) - num_pos * log_w_pos
            w_pos = log_w_pos.exp()
        logits[self_rows, self_cols] = float("-inf")
        exp, sum_exp, log_denom = exp_rows_in_place(logits)
        # W_ip stays outside the log; log_denom is finite, so no 0 * inf.
        loss = -w_pos * (sum_pos_sim / num_pos.clamp(min=1) - log_denom)
        loss = torch.where(num_pos > 0, loss, torch.zeros_like(loss))
        ctx.save_for_backward(
            anchor_z,
            cand_z,
            exp,
            sum_exp,
            positive,
            num_pos,
            w_pos,
            loss,
            anchor_labels,
            cand_labels,
        )
        ctx.temperature = temperature
        ctx.num_classes = None if log_w is None else log_w.shape[1]
        ctx.mark_non_differentiable(num_pos)
        return loss, num_pos

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad, _):
        (
            anchor_z,
            cand_z,
            exp,
            sum_exp,
            positive,
            num_pos,
            w_pos,
            loss,
            anchor_labels,
            cand_labels,
        ) = ctx.saved_tensors
        upstream = torch.where(num_pos > 0, grad, torch.zeros_like(grad))
        grad = upstream * w_pos
        denom_scale = torch.where(
            sum_exp > 0, grad / sum_exp.clamp(min=1e-30), torch.zeros_like(grad)
        )
        g = exp * denom_scale[:, None]  # g_i * w_iy * softmax
        grad_log_w = None
        if ctx.num_classes is not None and ctx.needs_input_grad[2]:
            grad_log_w = g.new_zeros(g.shape[0], ctx.num_classes)
            grad_log_w.index_add_(1, cand_labels, g)  # through the denominator's log W
            # through W_iy outside the log: d l_i / d log_w[i, y_i] = l_i
            grad_log_w.scatter_add_(1, anchor_labels[:, None], (upstream * loss)[:, None])
        g.sub_(positive * (grad / num_pos.clamp(min=1))[:, None])
        grad_anchor, grad_cand = feature_grads(ctx, g, anchor_z, cand_z)
        return grad_anchor, grad_cand, grad_log_w, None, None, None, None, None


def self_rows_cols(
    self_index: torch.Tensor | None, num_anchors: int, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, cols)``: each anchor present among the candidates (``self_index >= 0``) and its
    column there; both empty when ``self_index`` is None."""
    if self_index is None:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    present = self_index >= 0
    return torch.arange(num_anchors, device=device)[present], self_index[present]


def per_anchor_contrastive_loss(
    anchor_z: torch.Tensor,
    anchor_labels: torch.Tensor,
    cand_z: torch.Tensor,
    cand_labels: torch.Tensor,
    temperature: float,
    anchor_log_w: torch.Tensor | None = None,
    self_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor loss ``l_i`` and a mask of anchors that have at least one positive.

    Args:
        anchor_z: (A, D) normalised anchor features.
        anchor_labels: (A,) integer labels.
        cand_z: (M, D) normalised candidate features.
        cand_labels: (M,) integer labels, in ``[0, C)`` when ``anchor_log_w`` is given.
        temperature: tau > 0.
        anchor_log_w: (A, C) log class weights of each anchor (``log_softmax`` of the
            weighting logits); ``None`` means every weight is 1 (SupCon).
        self_index: (A,) column of each anchor among the candidates, left out of both
            numerator and denominator; ``-1`` (or ``None`` for all) means not present.

    Returns:
        ``(loss, has_positive)``, both (A,); ``loss`` is 0 where ``has_positive`` is False.
        Computed in ``anchor_z``'s dtype; first-order gradients only.
    """
    num_anchors, num_cands = anchor_z.shape[0], cand_z.shape[0]
    device = anchor_z.device
    if num_cands == 0:
        zero = anchor_z.sum(dim=1) * 0.0
        return zero, torch.zeros(num_anchors, dtype=torch.bool, device=device)
    self_rows, self_cols = self_rows_cols(self_index, num_anchors, device)
    with without_autocast(device):
        loss, num_pos = _ContrastiveCore.apply(
            anchor_z,
            cand_z,
            anchor_log_w,
            anchor_labels,
            cand_labels,
            self_rows,
            self_cols,
            temperature,
        )
    return loss, num_pos > 0


def weighted_contrastive_loss(
    anchor_z: torch.Tensor,
    anchor_labels: torch.Tensor,
    cand_z: torch.Tensor,
    cand_labels: torch.Tensor,
    temperature: float,
    anchor_log_w: torch.Tensor | None = None,
    self_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of :func:`per_anchor_contrastive_loss` over anchors with a positive (single
    process, no gathering). A zero connected to the graph when no anchor has a positive."""
    loss, has_positive = per_anchor_contrastive_loss(
        anchor_z, anchor_labels, cand_z, cand_labels, temperature, anchor_log_w, self_index
    )
    return loss.sum() / has_positive.sum().clamp(min=1).to(loss.dtype)


def candidates(
    z: torch.Tensor,
    labels: torch.Tensor,
    distributed: bool,
    memory_z: torch.Tensor | None = None,
    memory_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The candidates of the local anchors ``z`` (A, D) with ``labels`` (A,) or (A, C).

    The batch of every process when ``distributed`` (gradients flow back to the local rows
    only), then the memory queue cast to ``z``'s and ``labels``' dtypes. Returns
    ``(cand_z, cand_labels, self_index, batch_z, batch_labels)``: ``self_index`` (A,) the
    anchors' own columns, the last two the detached (gathered) batch, for a queue to store.
    """
    if distributed:
        sizes = shard_sizes(z.shape[0], z.device)
        offset = sum(sizes[: torch.distributed.get_rank()])
        cand_z = gather_with_grad(z, sizes)
        cand_labels = gather_no_grad(labels, sizes)
    else:
        offset, cand_z, cand_labels = 0, z, labels
    batch_z, batch_labels = cand_z.detach(), cand_labels
    if memory_z is not None and memory_z.shape[0] > 0:
        cand_z = torch.cat([cand_z, memory_z.to(device=z.device, dtype=z.dtype)])
        cand_labels = torch.cat(
            [cand_labels, memory_labels.to(device=z.device, dtype=labels.dtype)]
        )
    self_index = offset + torch.arange(z.shape[0], device=z.device)
    return cand_z, cand_labels, self_index, batch_z, batch_labels


def mean_over_anchors(loss: torch.Tensor, count: torch.Tensor, distributed: bool) -> torch.Tensor:
    """``sum(loss) / count``, ``count`` (a scalar) at least 1.

    In a multi-process run ``world_size * (local sum) / (global count)``: the mean over
    processes is the global loss and the gradients DDP averages equal those of one process
    on the whole batch.
    """
    total = loss.sum()
    if distributed:
        count = all_reduce_sum(count)
        total = total * torch.distributed.get_world_size()
    return total / count.clamp(min=1).to(loss.dtype)


def _check_inputs(features, labels, weight_logits):
    if features.dim() != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(features.shape)}")
    if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(
            f"labels must be (N,) with N={features.shape[0]}, got shape {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be integer, got {labels.dtype}")
    if weight_logits is not None and (
        weight_logits.dim() != 2 or weight_logits.shape[0] != features.shape[0]
    ):
        raise ValueError(
            f"weight_logits must be (N, C) with N={features.shape[0]}, "
            f"got shape {tuple(weight_logits.shape)}"
        )


def contrastive_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    weight_logits: torch.Tensor | None = None,
    detach_weights: bool = False,
    gather_across_processes: bool = True,
    memory_z: torch.Tensor | None = None,
    memory_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch-level loss as the loss modules compute it.

    Normalises ``features``, turns ``weight_logits`` into log weights, gathers the batch
    from all processes when asked (anchors stay local; candidates are the global batch,
    then ``memory_z``), and reduces. Returns ``(loss, batch_z, batch_labels)`` where the
    last two are the detached normalised (gathered) batch, for a memory queue to store.

    In a multi-process run the loss is ``world_size * (sum of local l_i) / (global number
    of anchors with a positive)``, so the mean over processes is the global loss and the
    gradients DDP averages equal those of one process on the whole batch.
    """
    _check_inputs(features, labels, weight_logits)
    dtype = _compute_dtype(features, weight_logits)
    z = F.normalize(features.to(dtype), dim=1)
    labels = labels.long()
    log_w = None
    if weight_logits is not None:
        log_w = F.log_softmax(weight_logits.to(dtype), dim=1)
        if detach_weights:
            log_w = log_w.detach()

    distributed = gather_across_processes and is_distributed()
    cand_z, cand_labels, self_index, batch_z, batch_labels = candidates(
        z, labels, distributed, memory_z, memory_labels
    )
    loss, has_positive = per_anchor_contrastive_loss(
        z, labels, cand_z, cand_labels, temperature, log_w, self_index
    )
    return mean_over_anchors(loss, has_positive.sum(), distributed), batch_z, batch_labels
