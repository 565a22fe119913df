"""Label-aware Contrastive Loss (LCL)."""

from __future__ import annotations

from typing import Any

import torch

from lcl.losses.base import ContrastiveLoss


class LabelAwareContrastiveLoss(ContrastiveLoss):
    """Label-aware Contrastive Loss of Suresh & Ong, "Not All Negatives are Equal:
    Label-Aware Contrastive Loss for Fine-grained Text Classification", EMNLP 2021.

    Supervised contrastive loss in which each anchor weighs every other sample by how
    confusable the anchor finds that sample's class: with ``z = normalize(features)``,
    ``w = softmax(weight_logits)``, ``s_ij = z_i . z_j / tau`` and ``W_ij = w[i, y_j]``
    (``W_ii = 0``)::

        l_i = -1/|P(i)| * sum_{p in P(i)} W_ip * (s_ip - log sum_{a != i} W_ia exp(s_ia))

    where ``P(i)`` are the other samples with label ``y_i``. The loss is the mean of
    ``l_i`` over anchors with at least one positive; with none it is a zero that still
    belongs to the graph (zero gradient). This reproduces the published code, including
    the positive's weight multiplying outside the log and the denominator running over
    positives too.

    Args:
        temperature: tau. The paper tunes it per dataset; 0.3 is a reasonable start.
        detach_weights: stop the gradient into ``weight_logits``. The published code lets
            it flow (default False); set True when the weights come from a network you do
            not want the contrastive term to train.
        gather_across_processes: under ``torch.distributed`` with more than one process,
            use every process's samples as candidates for the local anchors (with
            gradient). Shards may differ in size.

    Inputs:
        features: (N, D) float embeddings (normalised here; already-normalised input is
            fine). float16/bfloat16 is upcast; the loss is computed in float32 (float64
            for float64 input).
        labels: (N,) integer class ids in ``[0, C)``.
        weight_logits: (N, C) raw logits of the weighting network (softmax taken here).

    Returns:
        A scalar float32 (float64 for float64 input) tensor. Under multi-process
        gathering each process returns ``world_size * sum(local l_i) / (global number of
        anchors with a positive)``: the mean over processes is the global loss, so DDP's
        gradient averaging yields exactly the full-batch gradient.

    Recommendations:
        Put two views of each text in the batch (labels repeated) so that every anchor has
        a positive, and use large batches or :class:`ContrastiveMemory` for more
        candidates. Combine with cross-entropy as ``lam * ce + (1 - lam) * lcl``.

    Example::

        loss_fn = LabelAwareContrastiveLoss(temperature=0.3)
        loss = loss_fn(features, labels, weight_logits)
    """

    def __init__(
        self,
        temperature: float = 0.3,
        detach_weights: bool = False,
        gather_across_processes: bool = True,
    ) -> None:
        super().__init__(temperature, gather_across_processes)
        self.detach_weights = detach_weights

    def weight_arguments(self, weight_logits: torch.Tensor | None) -> dict[str, Any]:
        if weight_logits is None:
            raise ValueError("LabelAwareContrastiveLoss needs weight_logits of shape (N, C)")
        return {"weight_logits": weight_logits, "detach_weights": self.detach_weights}

    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, weight_logits: torch.Tensor
    ) -> torch.Tensor:
        return self.loss_and_batch(features, labels, weight_logits)[0]

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, detach_weights={self.detach_weights}, "
            f"gather_across_processes={self.gather_across_processes}"
        )
