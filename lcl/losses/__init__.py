"""Contrastive losses: Label-aware Contrastive Loss, SupCon and a label-aware memory."""

from lcl.losses.base import ContrastiveLoss
from lcl.losses.label_aware_contrastive import LabelAwareContrastiveLoss
from lcl.losses.memory import ContrastiveMemory
from lcl.losses.multilabel_label_aware_contrastive import MultiLabelLabelAwareContrastiveLoss
from lcl.losses.multilabel_supcon import MultiLabelSupConLoss
from lcl.losses.supcon import SupConLoss

__all__ = [
    "ContrastiveLoss",
    "LabelAwareContrastiveLoss",
    "SupConLoss",
    "ContrastiveMemory",
    "MultiLabelLabelAwareContrastiveLoss",
    "MultiLabelSupConLoss",
]
