"""Multi-label Supervised Contrastive Loss (MulSupCon, or Jaccard-weighted positives)."""

from __future__ import annotations

import torch
from torch import nn

from lcl.losses.multilabel_functional import POSITIVES, multilabel_contrastive_loss


class MultiLabelSupConLoss(nn.Module):
    """Supervised contrastive loss for multi-hot labels; on one-hot labels it is
    :class:`SupConLoss` exactly (same values and gradients).

    With ``z = normalize(features)``, ``s_ia = z_i . z_a / tau``, multi-hot labels ``Y``
    (row ``y_i``, a set of labels) and the denominator ``D_i = sum_{a != i} exp(s_ia)``:

    ``positives="mulsupcon"`` (default; Zhang & Wu, "Multi-Label Supervised Contrastive
    Learning", AAAI 2024): every label ``c`` of anchor ``i`` is an anchor of its own, with
    positives ``P_c(i) = {p != i : c in y_p}``::

        l_ic = -1/|P_c(i)| * sum_{p in P_c(i)} (s_ip - log D_i)
        L    = mean of l_ic over the pairs (i, c), c in y_i, with P_c(i) non-empty

    ``positives="jaccard"``: one anchor per sample, positives weighted by label-set
    overlap ``J_ip = |y_i & y_p| / |y_i | y_p|`` (the Jaccard-weighted SupCon of the
    multi-label text-classification literature, e.g. Lin et al., Findings of ACL 2023)::

        l_i = -sum_{p != i} J_ip / (sum_{q != i} J_iq) * (s_ip - log D_i)
        L   = mean of l_i over anchors sharing a label with some other sample

    With one label per sample both are SupCon: ``P_c(i)`` and the ``J > 0`` set are the
    samples of the anchor's class, with equal weights. MulSupCon gives an anchor with
    ``k`` labels ``k`` times the say of a single-label anchor and pulls hardest towards
    samples sharing several labels; Jaccard treats every sample alike and favours
    positives with the same label set. If neither has a positive the loss is a zero that
    belongs to the graph.

    Rows without any label are neither anchors nor candidates: the loss is that of the
    batch without them (the data layer rejects unlabelled texts; this lets a batch carry
    padding rows).

    Args:
        temperature: tau (0.3 as :class:`SupConLoss`).
        positives: ``"mulsupcon"`` or ``"jaccard"``, see above.
        gather_across_processes: under ``torch.distributed`` with more than one process,
            use every process's samples (and labels) as candidates for the local anchors,
            with gradient. Shards may differ in size.

    Inputs:
        features: (N, D) float embeddings (normalised here); half precision is upcast
            and the loss computed in float32 (float64 for float64 input).
        labels: (N, C) multi-hot tensor, every entry 0 or 1 (bool, integer or float).

    Returns:
        A scalar float32 tensor (float64 for float64 input). Under multi-process
        gathering each process returns ``world_size * sum(local l) / (global number of
        anchors, or (anchor, label) pairs, with a positive)``: the mean over processes is
        the global loss and DDP-averaged gradients are the full-batch gradients.

    Recommendations:
        Two views of each text per batch (label rows repeated) so every label of every
        anchor has a positive; large batches, since rare labels need a second carrier in
        the batch. Combine with per-label binary cross-entropy as
        ``lam * bce + (1 - lam) * scl``.

    Example::

        loss = MultiLabelSupConLoss(temperature=0.3)(features, multi_hot)
    """

    def __init__(
        self,
        temperature: float = 0.3,
        positives: str = "mulsupcon",
        gather_across_processes: bool = True,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if positives not in POSITIVES:
            raise ValueError(f"positives must be one of {POSITIVES}, got {positives!r}")
        self.temperature = float(temperature)
        self.positives = positives
        self.gather_across_processes = gather_across_processes

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._loss_and_batch(features, labels)[0]

    def _loss_and_batch(
        self, features, labels, weight_logits=None, memory_z=None, memory_labels=None
    ):
        # Memory hook as the single-label losses': also returns the detached (gathered)
        # batch; memory_labels are multi-hot.
        if weight_logits is not None:
            raise ValueError(
                "MultiLabelSupConLoss takes no weight_logits; use "
                "MultiLabelLabelAwareContrastiveLoss"
            )
        return multilabel_contrastive_loss(
            features,
            labels,
            self.temperature,
            positives=self.positives,
            gather_across_processes=self.gather_across_processes,
            memory_z=memory_z,
            memory_labels=memory_labels,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, positives={self.positives!r}, "
            f"gather_across_processes={self.gather_across_processes}"
        )
