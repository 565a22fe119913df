"""The base class of the objectives."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lcl.losses import ContrastiveMemory
from lcl.training_args import TrainConfig


class Objective:
    """A training objective: the loss of one training batch and its named parts.

    :class:`~lcl.modeling.LCLModel` runs the main network and asks the objective for the loss.
    The class attributes tell the model what to compute first:

    - ``uses_features``: the contrastive feature of every row (pooled, L2-normalised last
      hidden state, :func:`~lcl.pooled_model.contrastive_feature`) is passed as ``features``;
    - ``uses_weights``: the logits of the weighting network are passed as ``weight_logits``
      (None when the configuration has no weighting network, ``--weighting self``).

    :meth:`needs_weighting_network` says whether :meth:`LCLModel.from_config` loads a second
    classifier for this configuration. A contrastive module returned by
    :meth:`build_contrastive` becomes ``LCLModel.contrastive`` (so its buffers, e.g. a
    memory queue, are in the model's ``state_dict`` and checkpoints).

    In evaluation mode the model computes cross-entropy only, whatever the objective.

    With ``multilabel`` the labels are (N, C) multi-hot rows: :meth:`classification_loss` is
    binary cross-entropy per label (sigmoid heads), and ``build_contrastive`` returns the
    multi-label loss of its kind.
    """

    uses_features: ClassVar[bool] = False
    uses_weights: ClassVar[bool] = False

    def __init__(self, config: TrainConfig, multilabel: bool = False) -> None:
        self.config = config
        self.multilabel = multilabel
        self.contrastive: nn.Module | None = self.build_contrastive()

    @classmethod
    def needs_weighting_network(cls, config: TrainConfig) -> bool:
        return False

    def build_contrastive(self) -> nn.Module | None:
        """The contrastive loss module, if the objective has one (None here)."""
        return None

    def classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of class ids, or for multi-label rows the mean binary cross-entropy
        over every (text, label) of the sigmoid outputs; computed in float32."""
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return F.cross_entropy(logits.float(), labels)

    def with_memory(self, loss: nn.Module) -> nn.Module:
        """``loss`` wrapped in the label-aware memory when ``--memory-size`` is set (single-label
        losses only: the memory queues one class per sample)."""
        if self.config.memory_size > 0 and self.multilabel:
            from lcl.training_args import ConfigError

            raise ConfigError(
                "--memory-size works with one class per text only, not with multi-label data"
            )
        if self.config.memory_size > 0:
            return ContrastiveMemory(
                loss, memory_size=self.config.memory_size, start_step=self.config.memory_start_step
            )
        return loss

    def loss_parts(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        features: torch.Tensor | None = None,
        weight_logits: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The loss of a training batch.

        Inputs:
            logits: (N, C) main-network logits; labels: (N,) class ids, or (N, C) multi-hot
                rows when ``multilabel``;
            features: (N, D) contrastive features if ``uses_features``, else None;
            weight_logits: (N, C) weighting-network logits if ``uses_weights`` and the model
                has a weighting network, else None.

        Returns:
            ``{"loss": total, "loss_<part>": ..., ...}``: the total (backpropagated) and its
            named parts, logged per step (``history.json``) and plotted by ``lcl report``.
        """
        raise NotImplementedError
