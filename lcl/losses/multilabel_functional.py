"""Vectorised core of :class:`MultiLabelSupConLoss` and
:class:`MultiLabelLabelAwareContrastiveLoss`: the single-label core of
:mod:`lcl.losses.functional` with two matrices in place of the label comparison.

For anchor ``i`` and candidates ``a`` (the batch, possibly gathered from all processes,
possibly followed by memory), with multi-hot labels ``Y`` (rows ``y_i``),
``s_ia = z_i . z_a / tau``, a positive mass ``Pi_ia >= 0`` (zero unless ``i`` and ``a``
share a label, zero on the anchor's own column) and a label-aware weight ``W_ia > 0``
(1 for SupCon)::

    l_i = -sum_a Pi_ia * W_ia * (s_ia - log sum_{a' != i} W_ia' * exp(s_ia'))
    L   = sum_i l_i / sum_i K_i

Two positive masses (``positives=``), both computed with matmuls of the label matrices:

* ``"mulsupcon"`` (Zhang & Wu, "Multi-Label Supervised Contrastive Learning", AAAI 2024):
  each label ``c`` of anchor ``i`` is an anchor of its own whose positives are the other
  candidates carrying ``c``: ``Pi_ia = sum_{c in y_i, n_ic > 0} Y_ac / n_ic`` with
  ``n_ic = |{a != i : Y_ac = 1}|``; ``K_i`` is the number of labels of ``i`` with
  ``n_ic > 0``, so ``L`` is the mean over (anchor, label) pairs.
* ``"jaccard"``: positives weighted by label-set overlap, ``J_ia = |y_i & y_a| /
  |y_i | y_a|``, ``Pi_ia = J_ia / sum_{a' != i} J_ia'``; ``K_i = 1`` for anchors with any
  positive, so ``L`` is the mean over anchors.

The label-aware weight is the mean of the anchor's class probabilities ``p_i``
(``sigmoid`` or ``softmax`` of its weighting logits) over the candidate's labels:
``W_ia = sum_c Y_ac p_ic / sum_c Y_ac``. On one-hot labels ``Pi_ia = [y_a = y_i] / |P(i)|``,
``K_i = [P(i) non-empty]`` and ``W_ia = p_i[y_a]``: the single-label formula exactly.

Rows without any label are neither anchors nor candidates (the loss equals the loss of
the batch without them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lcl.losses.distributed import is_distributed
from lcl.losses.functional import (
    candidates,
    exp_rows_in_place,
    feature_grads,
    mean_over_anchors,
    self_rows_cols,
    without_autocast,
)

__all__ = [
    "POSITIVES",
    "WEIGHT_ACTIVATIONS",
    "log_label_weights",
    "multilabel_contrastive_loss",
    "per_anchor_multilabel_loss",
    "positive_mass",
]

POSITIVES = ("mulsupcon", "jaccard")
WEIGHT_ACTIVATIONS = ("sigmoid", "softmax")


def _compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    # At least float32, as the single-label core: half-precision exp/log lose too much.
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def positive_mass(
    anchor_y: torch.Tensor,
    cand_y: torch.Tensor,
    positives: str = "mulsupcon",
    self_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Pi, K)``: the (A, M) positive mass and the (A,) anchor counts of the module doc.

    Args:
        anchor_y: (A, C) multi-hot labels of the anchors, floating point.
        cand_y: (M, C) multi-hot labels of the candidates, same dtype.
        positives: ``"mulsupcon"`` or ``"jaccard"``.
        self_index: (A,) column of each anchor among the candidates (``-1``: absent).
    """
    num_anchors = anchor_y.shape[0]
    rows, cols = self_rows_cols(self_index, num_anchors, anchor_y.device)
    if positives == "mulsupcon":
        # n_ic: candidates with label c, the anchor itself left out.
        n = cand_y.sum(dim=0).expand(num_anchors, -1).clone()
        n[rows] -= cand_y[cols]
        usable = anchor_y * (n > 0)
        mass = torch.mm(usable / n.clamp(min=1), cand_y.T)
        mass[rows, cols] = 0.0
        return mass, usable.sum(dim=1)
    if positives == "jaccard":
        overlap = torch.mm(anchor_y, cand_y.T)
        union = anchor_y.sum(dim=1)[:, None] + cand_y.sum(dim=1)[None, :] - overlap
        jac = overlap / union.clamp(min=1)
        jac[rows, cols] = 0.0
        total = jac.sum(dim=1)
        mass = jac / total.clamp(min=torch.finfo(total.dtype).tiny)[:, None]
        return mass, (total > 0).to(jac.dtype)
    raise ValueError(f"positives must be one of {POSITIVES}, got {positives!r}")


def log_label_weights(anchor_log_p: torch.Tensor, cand_y: torch.Tensor) -> torch.Tensor:
    """(A, M) ``log W_ia = log(sum_c Y_ac p_ic / sum_c Y_ac)`` from (A, C) ``log p``.

    Computed as ``m_i + log(sum_c Y_ac exp(log p_ic - m_i)) - log |y_a|`` with
    ``m_i = max_c log p_ic``, so sigmoid/softmax probabilities far below float range stay
    representable; a weight below ``exp(m_i) * tiny`` is clamped there (its contribution
    is that small). Candidates without labels get a finite dummy (they are masked).
    """
    m = anchor_log_p.detach().amax(dim=1, keepdim=True)
    q = (anchor_log_p - m).exp()
    mixed = torch.mm(q, cand_y.T).clamp(min=torch.finfo(q.dtype).tiny)
    return mixed.log() + m - cand_y.sum(dim=1).clamp(min=1).log()[None, :]


class _MultiLabelCore(torch.autograd.Function):
    """Per-anchor ``l_i`` (A,) with a hand-written backward (as the single-label core).

    With ``V_ia = Pi_ia W_ia``, ``c_i = sum_a V_ia``, ``softmax_ia = W_ia exp(s_ia) / D_i``
    and ``T_ia = V_ia (log D_i - s_ia)`` (so ``l_i = sum_a T_ia``)::

        dl_i/ds_ia     = c_i softmax_ia - V_ia
        dl_i/dlog W_ia = c_i softmax_ia + T_ia
    """

    @staticmethod
    def forward(ctx, anchor_z, cand_z, log_w, mass, cand_bias, self_rows, self_cols, temperature):
        sim = torch.mm(anchor_z, cand_z.T).mul_(1.0 / temperature)
        v = mass if log_w is None else mass * log_w.exp()
        c = v.sum(dim=1)
        term = v * sim  # becomes T below
        logits = sim if log_w is None else sim.add_(log_w)  # in place: one (A, M) buffer
        logits[self_rows, self_cols] = float("-inf")
        logits.add_(cand_bias)  # -inf on candidates without labels (faster than a mask)
        exp, sum_exp, log_denom = exp_rows_in_place(logits)
        # T = V * (log D - s); V is 0 off the positives, and s, log D are finite.
        term.neg_().addcmul_(v, log_denom[:, None].expand_as(v))
        loss = term.sum(dim=1)
        ctx.save_for_backward(
            anchor_z, cand_z, exp, sum_exp, v, c, term if log_w is not None else None
        )
        ctx.temperature = temperature
        ctx.has_w = log_w is not None
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        anchor_z, cand_z, exp, sum_exp, v, c, term = ctx.saved_tensors
        scale = torch.where(
            sum_exp > 0, grad * c / sum_exp.clamp(min=1e-30), torch.zeros_like(grad)
        )
        g = exp * scale[:, None]  # not in place: gradcheck reuses the saved tensors
        grad_log_w = None
        if ctx.has_w and ctx.needs_input_grad[2]:
            grad_log_w = torch.addcmul(g, term, grad[:, None].expand_as(term))
        g.sub_(v * grad[:, None])
        grad_anchor, grad_cand = feature_grads(ctx, g, anchor_z, cand_z)
        return grad_anchor, grad_cand, grad_log_w, None, None, None, None, None


def per_anchor_multilabel_loss(
    anchor_z: torch.Tensor,
    anchor_y: torch.Tensor,
    cand_z: torch.Tensor,
    cand_y: torch.Tensor,
    temperature: float,
    anchor_log_p: torch.Tensor | None = None,
    self_index: torch.Tensor | None = None,
    positives: str = "mulsupcon",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor loss ``l_i`` and anchor count ``K_i``, both (A,).

    Args:
        anchor_z: (A, D) normalised anchor features.
        anchor_y: (A, C) multi-hot anchor labels, in ``anchor_z``'s dtype.
        cand_z: (M, D) normalised candidate features.
        cand_y: (M, C) multi-hot candidate labels, same dtype.
        temperature: tau > 0.
        anchor_log_p: (A, C) log class probabilities of each anchor (``logsigmoid`` or
            ``log_softmax`` of the weighting logits); ``None``: every weight 1 (SupCon).
        self_index: (A,) column of each anchor among the candidates, left out of
            numerator and denominator; ``-1`` (or ``None`` for all) means not present.
        positives: ``"mulsupcon"`` or ``"jaccard"`` (module doc).

    Returns:
        ``(loss, count)``; ``loss`` is 0 where ``count`` is 0. First-order gradients only.
    """
    num_anchors, num_cands = anchor_z.shape[0], cand_z.shape[0]
    with without_autocast(anchor_z.device):  # the label masses' matmuls too
        mass, count = positive_mass(anchor_y, cand_y, positives, self_index)
        if num_cands == 0:
            return anchor_z.sum(dim=1) * 0.0, count
        rows, cols = self_rows_cols(self_index, num_anchors, anchor_z.device)
        log_w = None if anchor_log_p is None else log_label_weights(anchor_log_p, cand_y)
        no_label = cand_y.sum(dim=1) == 0
        cand_bias = torch.zeros_like(cand_z[:, 0]).masked_fill_(no_label, float("-inf"))
        loss = _MultiLabelCore.apply(
            anchor_z, cand_z, log_w, mass, cand_bias, rows, cols, temperature
        )
    return loss, count


def _check_inputs(features, labels, weight_logits):
    if features.dim() != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(features.shape)}")
    if labels.dim() != 2 or labels.shape[0] != features.shape[0]:
        raise ValueError(
            f"labels must be multi-hot (N, C) with N={features.shape[0]}, got shape "
            f"{tuple(labels.shape)} (for class ids use F.one_hot or the single-label losses)"
        )
    if labels.is_complex() or not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("labels must be multi-hot: every entry 0 or 1 (or bool)")
    if weight_logits is not None and tuple(weight_logits.shape) != tuple(labels.shape):
        raise ValueError(
            f"weight_logits must be (N, C) = {tuple(labels.shape)} like labels, "
            f"got shape {tuple(weight_logits.shape)}"
        )


def multilabel_contrastive_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    weight_logits: torch.Tensor | None = None,
    positives: str = "mulsupcon",
    weight_activation: str = "sigmoid",
    detach_weights: bool = False,
    gather_across_processes: bool = True,
    memory_z: torch.Tensor | None = None,
    memory_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch-level multi-label loss as the loss modules compute it.

    Normalises ``features``, turns ``weight_logits`` into log class probabilities
    (``weight_activation``), gathers the batch from all processes when asked (anchors
    stay local; candidates are the global batch, then ``memory_z`` with multi-hot
    ``memory_labels``) and reduces: ``sum_i l_i / sum_i K_i``. Returns ``(loss, batch_z,
    batch_labels)``, the last two the detached normalised (gathered) batch and its
    multi-hot labels.

    In a multi-process run the loss is ``world_size * (sum of local l_i) / (global sum of
    K_i)``: the mean over processes is the global loss and DDP-averaged gradients equal
    the full-batch gradients.
    """
    if positives not in POSITIVES:
        raise ValueError(f"positives must be one of {POSITIVES}, got {positives!r}")
    if weight_activation not in WEIGHT_ACTIVATIONS:
        raise ValueError(
            f"weight_activation must be one of {WEIGHT_ACTIVATIONS}, got {weight_activation!r}"
        )
    _check_inputs(features, labels, weight_logits)
    dtype = _compute_dtype(features, weight_logits)
    z = F.normalize(features.to(dtype), dim=1)
    y = labels.to(dtype)
    log_p = None
    if weight_logits is not None:
        w = weight_logits.to(dtype)
        log_p = F.logsigmoid(w) if weight_activation == "sigmoid" else F.log_softmax(w, dim=1)
        if detach_weights:
            log_p = log_p.detach()

    distributed = gather_across_processes and is_distributed()
    cand_z, cand_y, self_index, batch_z, batch_y = candidates(
        z, y, distributed, memory_z, memory_labels
    )
    loss, count = per_anchor_multilabel_loss(
        z, y, cand_z, cand_y, temperature, log_p, self_index, positives
    )
    return mean_over_anchors(loss, count.sum(), distributed), batch_z, batch_y
