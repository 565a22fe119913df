"""End to end on real data: `lcl train` on 300 ISEAR texts, then reload, evaluate and predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from lcl.cli import main

pytestmark = pytest.mark.slow


def test_train_writes_every_output(trained_run):
    run, metrics = trained_run
    for name in (
        "metrics.json",
        "config.yaml",
        "predictions.jsonl",
        "history.json",
        "confusability.json",
        "test_embeddings.npy",
        "model/config.json",
        "model/README.md",
    ):
        assert (run / name).exists(), name
    assert not (run / "checkpoints").exists()  # removed after a finished run
    from huggingface_hub import ModelCard

    card = ModelCard.load(run / "model" / "README.md")  # the model card states the run's numbers
    results = card.data.eval_results
    accuracy = next(r.metric_value for r in results if r.metric_type == "accuracy")
    assert accuracy == metrics["test"]["accuracy"]
    correct = metrics["test_correct"]  # one 0/1 per test text: paired tests from metrics.json
    assert len(correct) == metrics["test"]["num_examples"]
    assert correct.count("1") / len(correct) == pytest.approx(metrics["test"]["accuracy"])
    assert list((run / "tensorboard").iterdir())
    names = metrics["label_names"]
    assert len(names) == 7 and "guilt" in names
    assert metrics["best_epoch"] == 1 and metrics["train_examples"] == 300
    assert metrics["device"] == "cpu" or metrics["device"].startswith("cuda (")
    for split in ("validation", "test"):
        m = metrics[split]
        assert 0.0 <= m["accuracy"] <= 1.0 and set(m["per_class"]) == set(names)
        assert np.asarray(m["confusion_matrix"]).sum() == m["num_examples"]
    assert yaml.safe_load((run / "config.yaml").read_text())["loss"] == "lcl"
    preds = [json.loads(l) for l in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == metrics["test"]["num_examples"]
    # the test texts' fingerprint: paired tests of committed cells (no predictions) check it
    from lcl.compare import texts_fingerprint

    assert metrics["test_texts_sha256"] == texts_fingerprint([p["text"] for p in preds])
    assert all(p["label"] in names and p["pred"] in names for p in preds)
    assert abs(sum(preds[0]["probs"].values()) - 1) < 1e-3
    emb = np.load(run / "test_embeddings.npy")
    assert emb.shape[0] == len(preds) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    conf = json.loads((run / "confusability.json").read_text())
    assert conf["source"] == "weighting_network"
    assert np.allclose(np.asarray(conf["matrix"]).sum(1), 1, atol=1e-4)
    history = json.loads((run / "history.json").read_text())
    assert any("loss_contrastive" in h and "loss_weighting_ce" in h for h in history)
    assert any("eval_accuracy" in h for h in history)


def test_saved_model_loads_in_a_plain_pipeline(trained_run):
    from transformers import pipeline

    run, metrics = trained_run
    # the default recipe's pooled head ships its code in the folder (auto_map)
    clf = pipeline("text-classification", model=str(run / "model"), trust_remote_code=True)
    out = clf(["I felt terrible after lying to my friend", "When I passed my exam"])
    assert all(o["label"] in metrics["label_names"] for o in out)


def test_evaluate_reproduces_the_runs_test_metrics(trained_run, data_dir, capsys):
    run, metrics = trained_run
    out_file = run.parent / "eval.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(run / "model"),
                "--dataset",
                "isear",
                "--data-dir",
                str(data_dir),
                "--output",
                str(out_file),
            ]
        )
        == 0
    )
    evaluated = json.loads(out_file.read_text())
    # same model, same test split (the run used the whole test split)
    assert evaluated["num_examples"] == metrics["test"]["num_examples"]
    assert evaluated["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)
    assert json.loads(capsys.readouterr().out)["accuracy"] == evaluated["accuracy"]


def test_predict_cli(trained_run, tmp_path, capsys):
    run, metrics = trained_run
    inputs = tmp_path / "texts.txt"
    inputs.write_text("I was ashamed of what I said\nA snake crossed my path\n")
    assert (
        main(["predict", "--model", str(run / "model"), "My friend died", "--input", str(inputs)])
        == 0
    )
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == [
        "My friend died",
        "I was ashamed of what I said",
        "A snake crossed my path",
    ]
    assert all(r["label"] in metrics["label_names"] and 0 < r["score"] <= 1 for r in rows)


def test_finished_run_is_not_overwritten(trained_run, data_dir, capsys):
    run, _ = trained_run
    before = (run / "metrics.json").read_bytes()
    assert (
        main(["train", "--dataset", "isear", "--data-dir", str(data_dir), "--output-dir", str(run)])
        == 2
    )
    assert "already holds a finished run" in capsys.readouterr().err
    assert (run / "metrics.json").read_bytes() == before


def test_report_of_the_real_run(trained_run, tmp_path, capsys):
    from helpers import check_report, check_screenshot, find_chromium, render_screenshot

    run, metrics = trained_run
    assert main(["report", str(run), "--output-dir", str(tmp_path / "report")]) == 0
    html = tmp_path / "report" / "report.html"
    check_report(html, n_runs=1)
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium binary found (scripts/setup.sh --test installs it)")
    shot = render_screenshot(html, tmp_path / "shot.png", tmp_path / "profile")
    check_screenshot(shot)


def test_killed_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A run killed after its first epoch's checkpoint picks up there when started again."""
    from lcl import TrainConfig
    from lcl.trainer import LCLTrainer, train

    config = TrainConfig(
        dataset="demo",
        loss="lcl",
        weighting="self",
        views="dropout",
        epochs=2,
        max_train_samples=40,
        max_eval_samples=20,
        logging_steps=1,
        output_dir=str(tmp_path / "run"),
    )
    original = LCLTrainer._save_checkpoint

    def save_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise KeyboardInterrupt  # as if killed right after the epoch-1 checkpoint

    monkeypatch.setattr(LCLTrainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert list((tmp_path / "run" / "checkpoints").glob("checkpoint-*"))

    monkeypatch.setattr(LCLTrainer, "_save_checkpoint", original)
    calls = []
    step = LCLTrainer.training_step
    monkeypatch.setattr(
        LCLTrainer, "training_step", lambda self, *a, **k: calls.append(1) or step(self, *a, **k)
    )
    result = train(config)
    assert len(calls) == 4  # only epoch 2's four steps ran; epoch 1 came from the checkpoint
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    steps = [h["step"] for h in history if "loss" in h]
    assert steps == list(range(1, 9))  # one history across the two starts
    assert len([h for h in history if "eval_accuracy" in h]) == 2
    assert result.metrics["best_epoch"] in (1, 2)
    # the run times are the second process's: metrics.json says which steps they cover
    assert result.metrics["resumed_from_step"] == 4
    assert result.metrics["train_steps_timed"] == 4


def test_timed_checkpoint_resumes_mid_epoch_with_the_same_result(tmp_path, monkeypatch):
    """--checkpoint-minutes: a run killed between evaluations resumes from the timed checkpoint,
    runs only the steps left, and ends where an uninterrupted run of the same seed ends."""
    from lcl import TrainConfig
    from lcl.trainer import LCLTrainer, train

    def config(name):
        return TrainConfig(
            dataset="demo",
            loss="lcl",
            weighting="self",
            views="dropout",
            epochs=1,
            max_train_samples=80,  # 8 steps of 10 texts, one evaluation at the end
            max_eval_samples=20,
            logging_steps=1,
            checkpoint_minutes=1e-9,  # due at every step: a checkpoint after each one
            output_dir=str(tmp_path / name),
        )

    whole = train(config("whole")).metrics
    original = LCLTrainer._save_checkpoint
    saved = []

    def save_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        saved.append(self.state.global_step)
        if self.state.global_step == 3:
            raise KeyboardInterrupt  # killed after the step-3 checkpoint, mid-epoch

    monkeypatch.setattr(LCLTrainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config("killed"))
    assert saved == [1, 2, 3]  # timed checkpoints, no evaluation yet
    monkeypatch.setattr(LCLTrainer, "_save_checkpoint", original)
    calls = []
    step = LCLTrainer.training_step
    monkeypatch.setattr(
        LCLTrainer, "training_step", lambda self, *a, **k: calls.append(1) or step(self, *a, **k)
    )
    resumed = train(config("killed")).metrics
    assert len(calls) == 5  # steps 4..8 only
    assert resumed["test"]["accuracy"] == whole["test"]["accuracy"]
    assert resumed["test_correct"] == whole["test_correct"]
    # the test entropy is continuous: equal only if the weights are (the same steps, batches
    # and random draws after the resume)
    assert resumed["test"]["mean_entropy"] == pytest.approx(whole["test"]["mean_entropy"], rel=1e-6)


def test_memory_option_trains_and_survives_checkpoints(tmp_path):
    """--memory-size: the queue fills, takes part, and its buffers go through the epoch
    checkpoints and the best-epoch reload."""
    from lcl import TrainConfig
    from lcl.trainer import LCLTrainer, train

    seen = {}
    original = LCLTrainer.compute_loss

    def spy(self, model, inputs, *args, **kwargs):
        memory = model.contrastive
        seen.setdefault("active", []).append(memory.is_active())
        return original(self, model, inputs, *args, **kwargs)

    LCLTrainer.compute_loss = spy
    try:
        result = train(
            TrainConfig(
                dataset="demo",
                loss="lcl",
                weighting="self",
                views="dropout",
                epochs=2,
                max_train_samples=40,
                max_eval_samples=20,
                memory_size=40,
                keep_checkpoints=True,
                output_dir=str(tmp_path / "run"),
            )
        )
    finally:
        LCLTrainer.compute_loss = original
    # 20 rows a step: the queue is full after two steps and takes part from the third on
    assert seen["active"][:3] == [False, False, True] and all(seen["active"][2:8])
    from safetensors.torch import load_file

    # the kept checkpoint is the best epoch's (and the last one's, where they differ)
    checkpoint = max(
        (tmp_path / "run" / "checkpoints").glob("checkpoint-*"),
        key=lambda p: int(p.name.split("-")[1]),
    )
    state = load_file(checkpoint / "model.safetensors")
    assert state["contrastive.queue"].shape == (40, 384)
    assert int(state["contrastive.fill"]) == 40
    assert int(state["contrastive.step"]) == int(checkpoint.name.split("-")[1]) in (4, 8)
    assert result.metrics["best_epoch"] in (1, 2)
