"""Supervised Contrastive Loss (SupCon)."""

from __future__ import annotations

import torch

from lcl.losses.base import ContrastiveLoss


class SupConLoss(ContrastiveLoss):
    """Supervised Contrastive Loss of Khosla et al., "Supervised Contrastive Learning",
    NeurIPS 2020 (the "all views as anchors" form), the unweighted baseline of LCL.

    With ``z = normalize(features)`` and ``s_ij = z_i . z_j / tau``::

        l_i = -1/|P(i)| * sum_{p in P(i)} (s_ip - log sum_{a != i} exp(s_ia))

    where ``P(i)`` are the other samples with label ``y_i``; the loss is the mean of
    ``l_i`` over anchors with at least one positive (a graph-connected zero if none).
    It is :class:`LabelAwareContrastiveLoss` with every weight equal to 1, sharing its
    implementation, and on batches where every anchor has a positive it equals
    ``pytorch_metric_learning.losses.SupConLoss(temperature=tau)``.

    Args:
        temperature: tau (0.3 matches the LCL default; Khosla et al. use 0.1 for images).
        gather_across_processes: under ``torch.distributed`` with more than one process,
            use every process's samples as candidates for the local anchors (with
            gradient). Shards may differ in size.

    Inputs:
        features: (N, D) float embeddings (normalised here); half precision is upcast and
            the loss computed in float32.
        labels: (N,) integer class ids.

    Returns:
        A scalar float32 tensor (float64 for float64 input). Under multi-process
        gathering each process returns ``world_size * sum(local l_i) / (global number of
        anchors with a positive)``, so the mean over processes is the global loss and
        DDP-averaged gradients equal the full-batch gradient.

    Recommendations:
        Two views of each text per batch (labels repeated) so every anchor has a
        positive; larger batches or :class:`ContrastiveMemory` give more negatives.

    Example::

        loss = SupConLoss(temperature=0.3)(features, labels)
    """

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_and_batch(features, labels)[0]
