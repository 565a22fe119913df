"""``--loss scl``: λ·CE + (1−λ)·SupCon."""

from __future__ import annotations

import torch

from lcl.losses import MultiLabelSupConLoss, SupConLoss
from lcl.objectives.base import Objective


class SupCon(Objective):
    """``lam * CE + (1 - lam) * SupCon(features, labels)`` (Khosla et al., NeurIPS 2020, all
    views as anchors; :class:`~lcl.losses.SupConLoss`). Parts: ``loss_ce``, ``loss_contrastive``.
    On multi-label data: per-label binary cross-entropy and
    :class:`~lcl.losses.MultiLabelSupConLoss` (MulSupCon positives).
    """

    uses_features = True

    def build_contrastive(self):
        if self.multilabel:
            return self.with_memory(MultiLabelSupConLoss(temperature=self.config.temperature))
        return self.with_memory(SupConLoss(temperature=self.config.temperature))

    def loss_parts(
        self, logits, labels, features=None, weight_logits=None
    ) -> dict[str, torch.Tensor]:
        lam = self.config.lam
        ce = self.classification_loss(logits, labels)
        contrastive = self.contrastive(features, labels)
        loss = lam * ce + (1 - lam) * contrastive
        return {"loss": loss, "loss_ce": ce, "loss_contrastive": contrastive}
