"""``--loss scl``: λ·CE + (1−λ)·SupCon."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lcl.losses import SupConLoss
from lcl.objectives.base import Objective


class SupCon(Objective):
    """``lam * CE + (1 - lam) * SupCon(features, labels)`` (Khosla et al., NeurIPS 2020, all
    views as anchors; :class:`~lcl.losses.SupConLoss`). Parts: ``loss_ce``, ``loss_contrastive``.
    """

    uses_features = True

    def build_contrastive(self):
        return self.with_memory(SupConLoss(temperature=self.config.temperature))

    def loss_parts(
        self, logits, labels, features=None, weight_logits=None
    ) -> dict[str, torch.Tensor]:
        lam = self.config.lam
        ce = F.cross_entropy(logits.float(), labels)
        contrastive = self.contrastive(features, labels)
        loss = lam * ce + (1 - lam) * contrastive
        return {"loss": loss, "loss_ce": ce, "loss_contrastive": contrastive}
