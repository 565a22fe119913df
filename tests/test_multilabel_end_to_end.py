"""Multi-label end to end: a tiny jsonl of texts with one or two of four emotions, trained for a
few steps with the embedded MiniLM from the CLI (`--loss lcl` and `--loss ce`), then `lcl probe`,
`predict`, `evaluate` and `report` on it, and the saved model in a plain `transformers.pipeline`."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch

from lcl.cli import main

pytestmark = pytest.mark.slow

PHRASES = {
    "joy": ["we laughed all day", "what a wonderful party", "I am so happy today"],
    "anger": ["this makes me furious", "I yelled at the driver", "they cheated us again"],
    "fear": [
        "the noise at night scared me",
        "I was terrified of the dog",
        "the storm frightened me",
    ],
    "sadness": ["I miss my grandmother", "we lost the house", "I cried after the funeral"],
}
NAMES = sorted(PHRASES)


def _rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        labels = rng.sample(NAMES, 2 if i % 3 == 0 else 1)
        text = " and ".join(rng.choice(PHRASES[label]) for label in labels) + f" ({i})"
        rows.append({"text": text, "label": labels})
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ml-data")
    rng = random.Random(0)
    for split, n in (("train", 40), ("validation", 16), ("test", 16)):
        rows = _rows(n, rng)
        (folder / f"{split}.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8"
        )
    return folder


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


TINY = ["--epochs", "1", "--batch-size", "8", "--logging-steps", "1", "--report-to", "none"]


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("ml-runs")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        for loss in ("lcl", "ce"):
            run = root / loss
            argv = ["train", "--dataset", f"jsonl:{data}", "--loss", loss, *TINY]
            if loss == "lcl":  # the paper's weighting network (its sigmoids are the weights)
                argv += ["--weighting", "network"]
            assert main([*argv, "--output-dir", str(run)]) == 0
            out[loss] = run
        run = root / "probe"
        assert main(["probe", "--dataset", f"jsonl:{data}", "--output-dir", str(run)]) == 0
        out["probe"] = run
        run = root / "single"  # the same texts with their first label only: single-label
        single = tmp_path_factory.mktemp("single-data") / "train.jsonl"
        rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
        single.write_text("\n".join(json.dumps({**r, "label": r["label"][0]}) for r in rows))
        assert main(["probe", "--dataset", f"jsonl:{single}", "--output-dir", str(run)]) == 0
        out["single"] = run
    return out


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("kind", ["lcl", "ce", "probe"])
def test_run_writes_multilabel_outputs(runs, kind):
    run = runs[kind]
    metrics = _metrics(run)
    assert metrics["multilabel"] is True and metrics["headline_metric"] == "macro_f1"
    assert metrics["label_names"] == NAMES
    test = metrics["test"]
    for key in ("macro_f1", "micro_f1", "weighted_f1", "subset_accuracy", "hamming_loss"):
        assert 0.0 <= test[key] <= 1.0, key
    assert set(test["per_class"]) == set(NAMES)
    assert sum(c["support"] for c in test["per_class"].values()) == sum(
        np.diag(test["label_cooccurrence"])
    )
    assert len(metrics["test_correct"]) == test["num_examples"] == 16
    assert metrics["test_correct"].count("1") / 16 == pytest.approx(test["subset_accuracy"])
    thresholds = metrics["thresholds"]
    assert set(thresholds["per_label"]) == set(NAMES) and 0 < thresholds["global"] < 1
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["lcl_thresholds"] == thresholds  # saved with the model
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert all(set(p["labels"]) <= set(NAMES) and set(p["pred"]) <= set(NAMES) for p in preds)
    # probabilities are independent sigmoids, not a distribution over the labels
    assert any(abs(sum(p["probs"].values()) - 1) > 0.05 for p in preds)
    cut = {n: thresholds["per_label"][n] for n in NAMES}
    for p in preds:
        assert set(p["pred"]) == {n for n, v in p["probs"].items() if v >= cut[n] - 1e-6}


def test_lcl_run_logged_the_multilabel_losses(runs):
    history = json.loads((runs["lcl"] / "history.json").read_text())
    assert any("loss_contrastive" in h and "loss_weighting_ce" in h for h in history)
    assert any("eval_macro_f1" in h for h in history)  # model selection by macro-F1
    from lcl.report.analysis import training_series

    assert training_series(history, "macro_f1")[1][1]  # the report's validation curve
    assert _metrics(runs["lcl"])["best_epoch"] == 1
    conf = json.loads((runs["lcl"] / "confusability.json").read_text())
    assert conf["source"] == "weighting_network"
    assert np.asarray(conf["matrix"]).shape == (4, 4)


def test_probe_is_one_vs_rest(runs):
    probe = _metrics(runs["probe"])["probe"]
    assert probe["model"] == "one-vs-rest logistic regression"
    assert all("val_macro_f1" in s for s in probe["search"])


@pytest.mark.parametrize("kind", ["lcl", "probe"])
def test_plain_pipeline_gives_sigmoid_scores(runs, kind):
    from transformers import pipeline

    run = runs[kind]
    clf = pipeline(
        "text-classification", model=str(run / "model"), trust_remote_code=True, top_k=None
    )
    text = "we laughed all day and the storm frightened me"
    out = clf([text])[0]
    assert {o["label"] for o in out} == set(NAMES)
    scores = {o["label"]: o["score"] for o in out}
    assert abs(sum(scores.values()) - 1) > 0.05  # sigmoid per label, not softmax
    from lcl.inference import Classifier

    ours = Classifier(run / "model").predict_proba([text])[0]
    assert np.allclose([scores[n] for n in NAMES], ours, atol=1e-5)


def test_predict_prints_every_label_above_its_threshold(runs, capsys):
    model = runs["lcl"] / "model"
    texts = ["we laughed all day and the storm frightened me", "I miss my grandmother"]
    assert main(["predict", "--model", str(model), *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == texts
    thresholds = json.loads((model / "config.json").read_text())["lcl_thresholds"]["per_label"]
    from lcl.inference import Classifier

    probs = Classifier(model).predict_proba(texts)
    for row, p in zip(rows, probs):
        expected = {n for n, v in zip(NAMES, p) if v >= thresholds[n]}
        assert set(row["labels"]) == expected == set(row["scores"])


def test_evaluate_reproduces_the_test_metrics(runs, data, tmp_path, capsys):
    run = runs["lcl"]
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--model", str(run / "model"), "--dataset", f"jsonl:{data}"]
    assert main([*argv, "--output", str(out)]) == 0
    evaluated = json.loads(out.read_text())
    test = _metrics(run)["test"]
    for key in ("macro_f1", "micro_f1", "subset_accuracy", "hamming_loss"):
        assert evaluated[key] == pytest.approx(test[key], abs=1e-9), key
    assert json.loads(capsys.readouterr().out)["macro_f1"] == evaluated["macro_f1"]


def test_evaluate_refuses_single_label_data_for_a_multilabel_model(runs, tmp_path, capsys):
    path = tmp_path / "single.jsonl"
    path.write_text(
        "\n".join(json.dumps({"text": f"t {i}", "label": NAMES[i % 4]}) for i in range(40)) + "\n"
    )
    argv = ["evaluate", "--model", str(runs["ce"] / "model"), "--dataset", f"jsonl:{path}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "multi-label" in err and "single-label" in err and "Traceback" not in err


def test_report_shows_label_confusion_and_per_label_f1(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(runs["ce"]), str(runs["lcl"]), "--output-dir", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "Label confusion (test)" in html and "Per-class F1 (test)" in html
    assert "validation macro-F1 per epoch" in html
    assert "Confusion matrix (test)" not in html  # the single-label view is replaced
    assert "Test macro-F1" in html and "Test Hamming loss" in html
    pngs = {p.name for p in out.glob("*.png")}
    assert sorted(p for p in pngs if p.startswith("label_confusion_")) == [
        "label_confusion_ce-seed-0.png",
        "label_confusion_lcl-seed-0.png",
    ]
    assert not any(p.startswith("confusion_matrix") for p in pngs)
    embedded = set(re.findall(r"data-file='([^']+)'", html))
    assert embedded == pngs
    # a single-label run cannot share a report with them
    single = runs["single"]
    assert main(["report", str(runs["ce"]), str(single), "--output-dir", str(out)]) == 2
    assert "multi-label" in capsys.readouterr().err


def test_memory_is_refused_on_multilabel_data(data, tmp_path, capsys):
    argv = ["train", "--dataset", f"jsonl:{data}", "--memory-size", "16", *TINY]
    assert main([*argv, "--output-dir", str(tmp_path / "run")]) == 2
    assert "--memory-size" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_multilabel_objectives_use_the_multilabel_losses():
    from lcl.losses import MultiLabelLabelAwareContrastiveLoss, MultiLabelSupConLoss
    from lcl.objectives import build_objective
    from lcl.training_args import TrainConfig

    lcl = build_objective(TrainConfig(loss="lcl"), multilabel=True)
    assert isinstance(lcl.contrastive, MultiLabelLabelAwareContrastiveLoss)
    assert lcl.contrastive.weight_activation == "sigmoid"
    scl = build_objective(TrainConfig(loss="scl"), multilabel=True)
    assert isinstance(scl.contrastive, MultiLabelSupConLoss)
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    labels = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    ce = build_objective(TrainConfig(loss="ce"), multilabel=True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert torch.allclose(ce.loss_parts(logits, labels)["loss"], expected)


def test_onnx_export_keeps_sigmoids_and_thresholds(runs, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from lcl.export import OnnxClassifier
    from lcl.inference import Classifier

    out = tmp_path / "onnx"
    assert main(["export", str(runs["lcl"]), "--onnx", "--output", str(out)]) == 0
    texts = ["we laughed all day and the storm frightened me", "we lost the house"]
    onnx, torch_clf = OnnxClassifier(out), Classifier(runs["lcl"] / "model")
    assert np.allclose(onnx.predict_proba(texts), torch_clf.predict_proba(texts), atol=1e-4)
    assert np.array_equal(onnx.thresholds, torch_clf.thresholds)
    capsys.readouterr()
    assert main(["predict", "--model", str(out), *texts]) == 0
    onnx_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", "--model", str(runs["lcl"] / "model"), *texts]) == 0
    torch_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["labels"] for r in onnx_rows] == [r["labels"] for r in torch_rows]


def test_native_head_with_supcon_saves_a_plain_multilabel_model(data, tmp_path):
    from transformers import pipeline

    run = tmp_path / "scl-native"
    argv = ["train", "--dataset", f"jsonl:{data}", "--loss", "scl", "--preset", "paper", *TINY]
    assert main([*argv, "--output-dir", str(run)]) == 0
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert "auto_map" not in config  # the architecture's own head: no remote code
    history = json.loads((run / "history.json").read_text())
    assert any("loss_contrastive" in h for h in history)
    out = pipeline("text-classification", model=str(run / "model"), top_k=None)(["we lost"])[0]
    assert {o["label"] for o in out} == set(NAMES)
    assert abs(sum(o["score"] for o in out) - 1) > 0.05  # sigmoids
