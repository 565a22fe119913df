"""``--loss lcl``: λ·CE + (1−λ)·LCL + λ·CE of the weighting network."""

from __future__ import annotations

import torch

from lcl.losses import LabelAwareContrastiveLoss, MultiLabelLabelAwareContrastiveLoss
from lcl.objectives.base import Objective


class LabelAware(Objective):
    """Label-aware Contrastive Loss objective of Suresh & Ong (EMNLP 2021)::

        lam * CE + (1 - lam) * LCL(features, labels, weight_logits) + lam * CE(weight_logits)

    With a weighting network (``--weighting network``) its logits weight the negatives and it
    is trained by its own cross-entropy; with ``--weighting self`` the weights are the main
    model's own detached logits and there is no third term. ``--detach-weights`` stops the
    contrastive gradient into the weights (:class:`~lcl.losses.LabelAwareContrastiveLoss`).
    Parts: ``loss_ce``, ``loss_weighting_ce`` (with a weighting network), ``loss_contrastive``.

    On multi-label data both CE terms are per-label binary cross-entropy, so the weighting
    network's sigmoid outputs are its per-label probabilities, and they are the weights of
    :class:`~lcl.losses.MultiLabelLabelAwareContrastiveLoss` (a candidate weighs as the mean
    probability of its labels; MulSupCon positives).
    """

    uses_features = True
    uses_weights = True

    @classmethod
    def needs_weighting_network(cls, config) -> bool:
        return config.weighting == "network"

    def build_contrastive(self):
        if self.multilabel:
            return self.with_memory(
                MultiLabelLabelAwareContrastiveLoss(
                    temperature=self.config.temperature,
                    weight_activation="sigmoid",
                    detach_weights=self.config.detach_weights,
                )
            )
        return self.with_memory(
            LabelAwareContrastiveLoss(
                temperature=self.config.temperature, detach_weights=self.config.detach_weights
            )
        )

    def loss_parts(
        self, logits, labels, features=None, weight_logits=None
    ) -> dict[str, torch.Tensor]:
        lam = self.config.lam
        ce = self.classification_loss(logits, labels)
        parts = {"loss_ce": ce}
        if weight_logits is not None:
            weighting_ce = self.classification_loss(weight_logits, labels)
            parts["loss_weighting_ce"] = weighting_ce
        else:  # weighting: self — the main model's own, detached, belief
            weight_logits, weighting_ce = logits.detach(), None
        contrastive = self.contrastive(features, labels, weight_logits)
        loss = lam * ce + (1 - lam) * contrastive
        if weighting_ce is not None:
            loss = loss + lam * weighting_ce
        parts["loss_contrastive"] = contrastive
        return {"loss": loss, **parts}
