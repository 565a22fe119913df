"""Multi-label Label-aware Contrastive Loss (LCL with multi-hot labels)."""

from __future__ import annotations

import torch
from torch import nn

from lcl.losses.multilabel_functional import (
    POSITIVES,
    WEIGHT_ACTIVATIONS,
    multilabel_contrastive_loss,
)


class MultiLabelLabelAwareContrastiveLoss(nn.Module):
    """Label-aware Contrastive Loss (Suresh & Ong, EMNLP 2021) for multi-hot labels, with
    the weighting network's per-label sigmoid probabilities giving the label-aware
    weights. With ``weight_activation="softmax"`` and one-hot labels it is
    :class:`LabelAwareContrastiveLoss` exactly (same values and gradients).

    With ``z = normalize(features)``, ``s_ia = z_i . z_a / tau``, multi-hot labels ``Y``
    (row ``y_i``, a set of labels) and the anchor's class probabilities
    ``p_i = sigmoid(weight_logits_i)`` (``softmax`` with ``weight_activation="softmax"``),
    the anchor's weight for candidate ``a`` is the mean of its probabilities over the
    candidate's labels, and the denominator is weighted by it::

        W_ia = (sum_{c in y_a} p_ic) / |y_a|,      D_i = sum_{a != i} W_ia exp(s_ia)

    ``positives="mulsupcon"`` (default; each label ``c`` of anchor ``i`` is an anchor of
    its own with positives ``P_c(i) = {p != i : c in y_p}``, as in MulSupCon, Zhang & Wu,
    AAAI 2024)::

        l_ic = -1/|P_c(i)| * sum_{p in P_c(i)} W_ip * (s_ip - log D_i)
        L    = mean of l_ic over the pairs (i, c), c in y_i, with P_c(i) non-empty

    ``positives="jaccard"`` (positives weighted by ``J_ip = |y_i & y_p| / |y_i | y_p|``)::

        l_i = -sum_{p != i} J_ip / (sum_{q != i} J_iq) * W_ip * (s_ip - log D_i)
        L   = mean of l_i over anchors sharing a label with some other sample

    As in the published LCL code the positive's weight multiplies outside the log and
    the denominator runs over every candidate but the anchor, positives included.

    Why these weights: in LCL, ``w_i[y_a]`` is how strongly the anchor's weighting network
    confuses it with the candidate's class, so confusable negatives are pushed harder.
    With several labels per text the classes are not exclusive, so each label gets its
    own probability (sigmoid, trained by per-label binary cross-entropy) and a candidate
    is as confusable as its labels on average; the mean keeps ``0 < W <= 1``, is one
    matmul, and on one label is ``p_i[y_a]``. The softmax mode reproduces single-label
    LCL (``W_ia = softmax(w_i)[y_a]`` on one-hot labels); on multi-label data it makes
    the label probabilities compete, which only suits a softmax-trained weighting head.

    Rows without any label are neither anchors nor candidates (the loss is that of the
    batch without them). The loss is the mean over (anchor, label) pairs (mulsupcon) or
    anchors (jaccard) with a positive; with none it is a zero that belongs to the graph.

    Args:
        temperature: tau. 0.3 is a reasonable start (as :class:`LabelAwareContrastiveLoss`).
        positives: ``"mulsupcon"`` or ``"jaccard"``, see above. MulSupCon gives an anchor
            with ``k`` labels ``k`` times the say; Jaccard favours identical label sets.
        weight_activation: ``"sigmoid"`` (multi-label weighting head, default) or
            ``"softmax"`` (single-label head; reproduces single-label LCL).
        detach_weights: stop the gradient into ``weight_logits`` (default False, as the
            published code lets it flow).
        gather_across_processes: under ``torch.distributed`` with more than one process,
            use every process's samples and labels as candidates for the local anchors,
            with gradient. Shards may differ in size. The weights are the anchor's own,
            so ``weight_logits`` are not gathered.

    Inputs:
        features: (N, D) float embeddings (normalised here). float16/bfloat16 is
            upcast; the loss is computed in float32 (float64 for float64 input).
        labels: (N, C) multi-hot tensor, every entry 0 or 1 (bool, integer or float).
        weight_logits: (N, C) raw logits of the weighting network (activation here).

    Returns:
        A scalar float32 tensor (float64 for float64 input). Under multi-process
        gathering each process returns ``world_size * sum(local l) / (global number of
        (anchor, label) pairs or anchors with a positive)``: the mean over processes is
        the global loss and DDP-averaged gradients are the full-batch gradients.

    Recommendations:
        Two views of each text per batch (label rows repeated) so that every label of an
        anchor has a positive; large batches, since rare labels need a second carrier in
        the batch. Combine with per-label binary cross-entropy on the same logits as
        ``lam * bce + (1 - lam) * lcl``; the sigmoid weights are then the classifier's own
        per-label probabilities. Sigmoid probabilities are not normalised across labels,
        so the scale differs from single-label LCL's: with every probability equal to
        ``p`` the loss is ``p * (scl + log p)`` (``scl`` the :class:`MultiLabelSupConLoss`
        value; ``p = 1/2`` at a zero-initialised head) against ``(scl - log C) / C`` for
        softmax; re-tune ``lam`` rather than reuse the single-label value.

    Example::

        loss_fn = MultiLabelLabelAwareContrastiveLoss(temperature=0.3)
        loss = loss_fn(features, multi_hot, weight_logits)
    """

    def __init__(
        self,
        temperature: float = 0.3,
        positives: str = "mulsupcon",
        weight_activation: str = "sigmoid",
        detach_weights: bool = False,
        gather_across_processes: bool = True,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if positives not in POSITIVES:
            raise ValueError(f"positives must be one of {POSITIVES}, got {positives!r}")
        if weight_activation not in WEIGHT_ACTIVATIONS:
            raise ValueError(
                f"weight_activation must be one of {WEIGHT_ACTIVATIONS}, got {weight_activation!r}"
            )
        self.temperature = float(temperature)
        self.positives = positives
        self.weight_activation = weight_activation
        self.detach_weights = detach_weights
        self.gather_across_processes = gather_across_processes

    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, weight_logits: torch.Tensor
    ) -> torch.Tensor:
        return self._loss_and_batch(features, labels, weight_logits)[0]

    def _loss_and_batch(self, features, labels, weight_logits, memory_z=None, memory_labels=None):
        # Memory hook as the single-label losses': also returns the detached (gathered)
        # batch; memory_labels are multi-hot.
        if weight_logits is None:
            raise ValueError(
                "MultiLabelLabelAwareContrastiveLoss needs weight_logits of shape (N, C)"
            )
        return multilabel_contrastive_loss(
            features,
            labels,
            self.temperature,
            weight_logits=weight_logits,
            positives=self.positives,
            weight_activation=self.weight_activation,
            detach_weights=self.detach_weights,
            gather_across_processes=self.gather_across_processes,
            memory_z=memory_z,
            memory_labels=memory_labels,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, positives={self.positives!r}, "
            f"weight_activation={self.weight_activation!r}, "
            f"detach_weights={self.detach_weights}, "
            f"gather_across_processes={self.gather_across_processes}"
        )
