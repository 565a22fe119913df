"""Classification metrics, all from scikit-learn: accuracy, macro/weighted F1, per class, confusion."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def classification_metrics(labels, probs, label_names: list[str]) -> dict:
    """``labels`` (N,) gold ids, ``probs`` (N, C) predicted distributions."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    preds = probs.argmax(axis=1)
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, preds, labels=ids, zero_division=0
    )
    entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=1)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, labels=ids, average="macro", zero_division=0)),
        "weighted_f1": float(
            f1_score(labels, preds, labels=ids, average="weighted", zero_division=0)
        ),
        "mean_entropy": float(entropy.mean()) if len(entropy) else 0.0,
        "num_examples": int(len(labels)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": confusion_matrix(labels, preds, labels=ids).tolist(),
    }


def trainer_metrics(eval_prediction) -> dict:
    """The few numbers the Trainer logs each epoch (and picks the best epoch by)."""
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    preds = np.asarray(logits).argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, preds, average="weighted", zero_division=0)),
    }
