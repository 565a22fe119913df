"""The training objectives behind one registry: ``--loss NAME`` -> an :class:`Objective` class.

Each objective turns the main network's outputs (logits, the contrastive features, the labels
and, for label-aware objectives, the weighting logits) into the loss and its named parts
(``loss_ce``, ``loss_contrastive``, ...), which the trainer logs and the report plots.

The registry maps a name to ``"module:Class"`` and imports the class only when it is built,
so this module stays cheap to import (``lcl.training_args`` takes :data:`LOSSES` from here).
Adding an objective is one file in this package and one line in :data:`OBJECTIVES`
(docs/EXTENDING.md). On multi-label data (several classes per text) the same names hold: ``ce``
is binary cross-entropy per label, ``scl`` and ``lcl`` use
:class:`~lcl.losses.MultiLabelSupConLoss` and :class:`~lcl.losses.MultiLabelLabelAwareContrastiveLoss`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lcl.objectives.base import Objective
    from lcl.training_args import TrainConfig

OBJECTIVES: dict[str, str | None] = {
    "ce": "lcl.objectives.cross_entropy:CrossEntropy",
    "scl": "lcl.objectives.supcon:SupCon",
    "lcl": "lcl.objectives.label_aware:LabelAware",
    # no fine-tuning: a logistic regression on frozen features (lcl/probe.py, run_probe), which
    # trainer.train dispatches to; it has no Objective class
    "probe": None,
}

LOSSES: tuple[str, ...] = tuple(OBJECTIVES)
TRAINED_LOSSES: tuple[str, ...] = tuple(name for name, target in OBJECTIVES.items() if target)

# configuration fields that only some objectives read (the weights of the label-aware loss):
# under any other objective their value changes nothing, so it never makes two runs differ
OBJECTIVE_FIELDS: dict[str, tuple[str, ...]] = {
    "lcl": ("weighting", "weighting_model", "detach_weights"),
}

__all__ = [
    "OBJECTIVES",
    "OBJECTIVE_FIELDS",
    "LOSSES",
    "TRAINED_LOSSES",
    "get_objective",
    "build_objective",
    "unread_fields",
]


def unread_fields(loss: str) -> set[str]:
    """The objective-specific fields (:data:`OBJECTIVE_FIELDS`) that ``loss`` does not read."""
    every = {name for names in OBJECTIVE_FIELDS.values() for name in names}
    return every - set(OBJECTIVE_FIELDS.get(loss, ()))


def get_objective(name: str) -> type[Objective]:
    """The :class:`Objective` class registered as ``name``."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; use one of {', '.join(LOSSES)}")
    target = OBJECTIVES[name]
    if target is None:
        raise ValueError(
            f"objective {name!r} trains no network (see lcl.probe); it has no Objective class"
        )
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def build_objective(config: TrainConfig, multilabel: bool = False) -> Objective:
    """The objective of ``config.loss``, built from the configuration; ``multilabel`` for
    multi-hot labels (per-label binary cross-entropy, the multi-label contrastive losses)."""
    return get_objective(config.loss)(config, multilabel=multilabel)
