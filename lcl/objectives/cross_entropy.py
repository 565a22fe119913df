"""``--loss ce``: cross-entropy of the main network."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lcl.objectives.base import Objective


class CrossEntropy(Objective):
    """Cross-entropy of the main network's logits; the baseline. Parts: ``loss_ce``."""

    def loss_parts(
        self, logits, labels, features=None, weight_logits=None
    ) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(logits.float(), labels)
        return {"loss": ce, "loss_ce": ce}
