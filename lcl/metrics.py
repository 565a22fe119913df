"""Classification metrics, all from scikit-learn: accuracy, macro/weighted F1, per class, confusion.

Multi-label (gold a 0/1 matrix, one column per class; probabilities per class from sigmoids):
:func:`multilabel_metrics` at given decision thresholds, :func:`choose_thresholds` on
validation, and the headline metric of each kind (:func:`headline_metric`).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)

# decision thresholds tried on validation for multi-label models
THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
# a class with fewer validation texts than this keeps the global threshold: an own threshold
# fitted to a handful of texts is noise
MIN_THRESHOLD_SUPPORT = 5


def per_class(label_names, precision, recall, f1, support) -> dict[str, dict[str, float]]:
    """scikit-learn's per-class arrays as ``{name: {precision, recall, f1, support}}``."""
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_names)
    }


def headline_metric(multilabel: bool) -> str:
    """The one number a run is judged and its best epoch chosen by: accuracy for one class
    per text, macro-F1 for several (subset accuracy is too strict to rank models by)."""
    return "macro_f1" if multilabel else "accuracy"


def still_improving(metrics: dict) -> bool:
    """Whether a run kept its last evaluation, at the end of all its ``epochs``: validation was
    still rising when the epoch cap (not early stopping) ended training, so more epochs may give
    a better model. From ``metrics.json``'s ``best_epoch`` and ``epochs``; ``False`` for a probe
    (no epochs trained) or a run whose best epoch is unknown."""
    best, epochs = metrics.get("best_epoch"), metrics.get("epochs")
    if best is None or epochs is None or metrics.get("loss") == "probe":
        return False
    return float(best) >= float(epochs) - 0.005  # best_epoch is rounded to 2 decimals


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
        "per_class": per_class(label_names, precision, recall, f1, support),
        "confusion_matrix": confusion_matrix(labels, preds, labels=ids).tolist(),
    }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _f1_per_threshold(gold: np.ndarray, probs: np.ndarray, average: str | None):
    return [
        f1_score(gold, (probs >= t).astype(int), average=average, zero_division=0)
        for t in THRESHOLD_GRID
    ]


def _best_threshold(scores) -> int:
    """Index in :data:`THRESHOLD_GRID` of the best score; of a run of equal best scores the
    middle one (the plateau's centre is the threshold least likely to be a fluke)."""
    scores = np.asarray(scores)
    best = np.flatnonzero(scores == scores.max())
    return int(best[len(best) // 2])


def choose_thresholds(gold, probs, label_names: list[str]) -> dict:
    """Decision thresholds of a multi-label model, chosen on validation from
    :data:`THRESHOLD_GRID`: ``global``, the one threshold with the best macro-F1, and
    ``per_label``, each class's threshold with its best F1 (the global one for a class with
    fewer than :data:`MIN_THRESHOLD_SUPPORT` validation texts). Of equal scores the middle
    threshold is taken. ``per_label`` is what predictions use (``use``)."""
    gold = np.asarray(gold, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    macro = _f1_per_threshold(gold, probs, "macro")
    best_global = THRESHOLD_GRID[_best_threshold(macro)]
    per_class = np.array(_f1_per_threshold(gold, probs, None))  # (thresholds, classes)
    support = gold.sum(axis=0)
    per_label = {
        name: (
            THRESHOLD_GRID[_best_threshold(per_class[:, c])]
            if support[c] >= MIN_THRESHOLD_SUPPORT
            else best_global
        )
        for c, name in enumerate(label_names)
    }
    return {
        "global": best_global,
        "per_label": per_label,
        "use": "per_label",
        "chosen_on": "validation",
        "min_support": MIN_THRESHOLD_SUPPORT,
    }


def multilabel_metrics(gold, probs, label_names: list[str], thresholds) -> dict:
    """``gold`` (N, C) 0/1, ``probs`` (N, C) per-class probabilities, ``thresholds`` one
    number or (C,): a class is predicted where its probability reaches its threshold.

    ``accuracy`` is scikit-learn's for multi-label data, the subset accuracy (every class of
    a text right), also given as ``subset_accuracy``; ``label_confusion`` is a (C, C) count
    matrix whose row ``i`` holds the texts labelled ``i``: on the diagonal those predicted
    ``i``, at ``j`` those predicted ``j`` although not labelled ``j`` (the multi-label
    analogue of a confusion matrix); ``label_cooccurrence`` counts texts labelled both."""
    gold = np.asarray(gold, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    preds = (probs >= np.asarray(thresholds, dtype=np.float64)).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, preds, average=None, zero_division=0
    )
    wrong = preds * (1 - gold)
    confusion = gold.T @ wrong
    np.fill_diagonal(confusion, (gold * preds).sum(axis=0))

    def average(kind: str) -> float:
        return float(f1_score(gold, preds, average=kind, zero_division=0))

    return {
        "accuracy": float(accuracy_score(gold, preds)),
        "subset_accuracy": float(accuracy_score(gold, preds)),
        "macro_f1": average("macro"),
        "micro_f1": average("micro"),
        "weighted_f1": average("weighted"),
        "hamming_loss": float(hamming_loss(gold, preds)),
        "mean_labels": float(gold.sum(axis=1).mean()) if len(gold) else 0.0,
        "mean_predicted_labels": float(preds.sum(axis=1).mean()) if len(preds) else 0.0,
        "num_examples": int(len(gold)),
        "per_class": per_class(label_names, precision, recall, f1, support),
        "label_confusion": confusion.tolist(),
        "label_cooccurrence": (gold.T @ gold).tolist(),
    }


def trainer_metrics(eval_prediction) -> dict:
    """The few numbers the Trainer logs each evaluation (and picks the best one by, see
    :func:`headline_metric`). Multi-label gold (a 0/1 matrix): F1 and subset accuracy at the
    one threshold of :data:`THRESHOLD_GRID` with the best macro-F1, as the saved model
    will be thresholded, so that an early epoch is not judged at an arbitrary 0.5."""
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    labels = np.asarray(labels)
    if labels.ndim == 2:
        gold = labels.astype(int)
        probs = _sigmoid(np.asarray(logits, dtype=np.float64))
        macro = _f1_per_threshold(gold, probs, "macro")
        best = _best_threshold(macro)
        preds = (probs >= THRESHOLD_GRID[best]).astype(int)
        return {
            "macro_f1": float(macro[best]),
            "micro_f1": float(f1_score(gold, preds, average="micro", zero_division=0)),
            "accuracy": float(accuracy_score(gold, preds)),
            "threshold": THRESHOLD_GRID[best],
        }
    preds = np.asarray(logits).argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, preds, average="weighted", zero_division=0)),
    }
