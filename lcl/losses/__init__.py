"""Contrastive losses: Label-aware Contrastive Loss, SupCon and a label-aware memory."""

from lcl.losses.label_aware_contrastive import LabelAwareContrastiveLoss
from lcl.losses.memory import ContrastiveMemory
from lcl.losses.supcon import SupConLoss

__all__ = ["LabelAwareContrastiveLoss", "SupConLoss", "ContrastiveMemory"]
