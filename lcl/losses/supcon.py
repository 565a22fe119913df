"""Supervised Contrastive Loss (SupCon)."""

from __future__ import annotations

import torch
from torch import nn

from lcl.losses.functional import contrastive_loss


class SupConLoss(nn.Module):
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

    def __init__(self, temperature: float = 0.3, gather_across_processes: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather_across_processes = gather_across_processes

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._loss_and_batch(features, labels)[0]

    def _loss_and_batch(self, features, labels, weight_logits=None, memory_z=None, memory_labels=None):
        # Hook for ContrastiveMemory: also returns the detached (gathered) batch.
        if weight_logits is not None:
            raise ValueError("SupConLoss takes no weight_logits; use LabelAwareContrastiveLoss")
        return contrastive_loss(
            features,
            labels,
            self.temperature,
            gather_across_processes=self.gather_across_processes,
            memory_z=memory_z,
            memory_labels=memory_labels,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, "
            f"gather_across_processes={self.gather_across_processes}"
        )
