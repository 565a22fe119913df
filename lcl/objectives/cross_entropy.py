"""``--loss ce``: cross-entropy of the main network (binary, per label, on multi-label data)."""

from __future__ import annotations

import torch

from lcl.objectives.base import Objective


class CrossEntropy(Objective):
    """Cross-entropy of the main network's logits; the baseline. On multi-label data, binary
    cross-entropy per label of a sigmoid head. Parts: ``loss_ce``."""

    def loss_parts(
        self, logits, labels, features=None, weight_logits=None
    ) -> dict[str, torch.Tensor]:
        ce = self.classification_loss(logits, labels)
        return {"loss": ce, "loss_ce": ce}
