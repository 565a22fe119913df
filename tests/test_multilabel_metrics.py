"""Multi-label metrics, decision thresholds, the multi-hot collator and the thresholded rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss
from transformers import EvalPrediction

from lcl.export import prediction_rows, threshold_vector
from lcl.metrics import (
    MIN_THRESHOLD_SUPPORT,
    THRESHOLD_GRID,
    choose_thresholds,
    multilabel_metrics,
    trainer_metrics,
)

NAMES = ["a", "b", "c"]


def _data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    gold = (rng.random((n, 3)) < [0.5, 0.3, 0.1]).astype(int)
    probs = np.clip(gold * 0.5 + rng.random((n, 3)) * 0.6, 0, 1)
    return gold, probs


def test_multilabel_metrics_are_scikit_learns():
    gold, probs = _data()
    cut = np.array([0.5, 0.6, 0.4])
    m = multilabel_metrics(gold, probs, NAMES, cut)
    pred = (probs >= cut).astype(int)
    for avg in ("macro", "micro", "weighted"):
        assert m[f"{avg}_f1"] == pytest.approx(f1_score(gold, pred, average=avg, zero_division=0))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(gold, pred))
    assert m["subset_accuracy"] == m["accuracy"] == pytest.approx((pred == gold).all(1).mean())
    assert m["per_class"]["c"]["support"] == gold[:, 2].sum()
    conf = np.array(m["label_confusion"])
    # row a: texts labelled a; diagonal: predicted a; [a, b]: predicted b but not labelled b
    assert conf[0, 0] == ((gold[:, 0] == 1) & (pred[:, 0] == 1)).sum()
    assert conf[0, 1] == ((gold[:, 0] == 1) & (pred[:, 1] == 1) & (gold[:, 1] == 0)).sum()
    assert np.array_equal(m["label_cooccurrence"], gold.T @ gold)


def test_thresholds_are_chosen_on_validation():
    rng = np.random.default_rng(1)
    n = 400
    gold = (rng.random((n, 3)) < 0.4).astype(int)
    # class a is well separated above 0.7, class b above 0.25; class c has too few texts
    probs = np.stack(
        [
            np.where(gold[:, 0] == 1, 0.75 + 0.2 * rng.random(n), 0.6 * rng.random(n)),
            np.where(gold[:, 1] == 1, 0.3 + 0.6 * rng.random(n), 0.2 * rng.random(n)),
            rng.random(n),
        ],
        axis=1,
    )
    gold[:, 2] = 0
    gold[: MIN_THRESHOLD_SUPPORT - 1, 2] = 1
    t = choose_thresholds(gold, probs, NAMES)
    assert 0.6 < t["per_label"]["a"] <= 0.75 and 0.2 < t["per_label"]["b"] <= 0.3
    assert t["per_label"]["c"] == t["global"] and t["use"] == "per_label"
    assert t["global"] in THRESHOLD_GRID
    at = multilabel_metrics(gold, probs, NAMES, threshold_vector(t, NAMES))
    assert at["per_class"]["a"]["f1"] == 1.0 and at["per_class"]["b"]["f1"] == 1.0
    assert at["macro_f1"] >= multilabel_metrics(gold, probs, NAMES, 0.5)["macro_f1"]


def test_threshold_vector_reads_saved_thresholds():
    saved = {"global": 0.3, "per_label": {"a": 0.6, "b": 0.2}, "use": "per_label"}
    assert threshold_vector(saved, NAMES).tolist() == [0.6, 0.2, 0.3]  # c: the global one
    assert threshold_vector({**saved, "use": "global"}, NAMES).tolist() == [0.3] * 3
    assert threshold_vector(None, NAMES).tolist() == [0.5] * 3


def test_trainer_metrics_judge_multilabel_by_macro_f1():
    gold, probs = _data(2)
    logits = np.log(probs.clip(1e-6, 1 - 1e-6) / (1 - probs.clip(1e-6, 1 - 1e-6)))
    m = trainer_metrics(EvalPrediction(predictions=logits, label_ids=gold.astype(np.float32)))
    best = max(
        f1_score(gold, (probs >= t).astype(int), average="macro", zero_division=0)
        for t in THRESHOLD_GRID
    )
    assert m["macro_f1"] == pytest.approx(best, abs=1e-6)
    assert set(m) == {"macro_f1", "micro_f1", "accuracy", "threshold"}


def test_prediction_rows_list_every_label_above_its_threshold():
    probs = np.array([[0.9, 0.35, 0.1], [0.2, 0.1, 0.05]])
    rows = prediction_rows(["x", "y"], probs, NAMES, np.array([0.5, 0.3, 0.5]))
    assert rows[0]["labels"] == ["a", "b"] and rows[0]["scores"] == {"a": 0.9, "b": 0.35}
    assert rows[1]["labels"] == [] and rows[1]["scores"] == {}  # none above: none predicted
    assert prediction_rows(["x"], probs[:1], NAMES)[0]["label"] == "a"  # single-label rows


def test_collator_makes_multi_hot_rows():
    from lcl.modeling import load_tokenizer
    from lcl.trainer import PairedViewCollator

    rows = [
        {"text": "so happy", "view": "so glad", "label": [0, 2]},
        {"text": "angry", "view": "mad", "label": [1]},
    ]
    batch = PairedViewCollator(load_tokenizer("minilm"), num_labels=3)(rows)
    expected = [[1, 0, 1], [0, 1, 0]] * 2  # the views repeat their texts' rows
    assert batch["labels"].tolist() == expected and batch["labels"].dtype.is_floating_point
