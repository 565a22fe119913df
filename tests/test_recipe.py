"""The recipe pieces: presets, the pooled head, the probe and its use as the heads' start."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from lcl.modeling import (
    LCLModel,
    load_classifier,
    load_tokenizer,
    resolve_model_name,
    resolve_pooling,
    save_classifier,
)
from lcl.pooled_model import ARCHITECTURE, PooledEncoderForSequenceClassification
from lcl.probe import checkpoint_pooling, fit_probe
from lcl.training_args import PRESETS, ConfigError, TrainConfig

LABELS = ["afraid", "anxious", "terrified"]
TEXTS = [
    "A dog chased me down the street",
    "My exam is tomorrow and I can't sleep",
    "I heard a noise downstairs at 3am",
    "The interview is next week",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


# --- presets -------------------------------------------------------------------------------


def test_default_preset_is_the_measured_minilm_recipe():
    c = TrainConfig()
    assert c.preset == "minilm"
    for name, value in PRESETS["minilm"].items():
        assert getattr(c, name) == value, name


def test_the_presets_choose_where_lcl_weights_come_from():
    # the measured recipe weighs with the main model's own softmax (studies/convergence.yaml:
    # level with the weighting network at half its cost); the paper trains a second network
    assert TrainConfig().weighting == "self"
    assert TrainConfig(preset="paper").weighting == "network"
    assert TrainConfig(weighting="network").weighting == "network"


def test_explicit_values_win_over_the_preset():
    c = TrainConfig(preset="paper", learning_rate=1e-4, head="pooled")
    assert (c.learning_rate, c.head, c.epochs, c.pooling) == (1e-4, "pooled", 5, "cls")
    c = TrainConfig(head_learning_rate=None)  # an explicit None is a value, not "unset"
    assert c.head_learning_rate is None


def test_config_yaml_records_the_preset_and_round_trips(tmp_path):
    c = TrainConfig(preset="paper", epochs=2)
    saved = yaml.safe_load(c.to_yaml())
    assert saved["preset"] == "paper" and saved["learning_rate"] == 2e-5
    assert TrainConfig.from_dict(saved) == c


def test_bad_preset_and_probe_init_without_pooled_head_are_refused():
    with pytest.raises(ConfigError, match="--preset"):
        TrainConfig(preset="fast")
    with pytest.raises(ConfigError, match="--head-init probe needs --head pooled"):
        TrainConfig(head="native", head_init="probe")


# --- pooling and the pooled head -----------------------------------------------------------


def test_embedded_encoder_declares_mean_pooling():
    assert checkpoint_pooling(resolve_model_name("minilm")) == "mean"
    assert resolve_pooling("auto", "minilm") == "mean"
    assert resolve_pooling("cls", "minilm") == "cls"


def test_pooled_head_reads_the_normalised_mean_feature(tokenizer):
    torch.manual_seed(0)
    model = load_classifier("minilm", LABELS, head="pooled", pooling="mean").eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
        hidden = out.hidden_states[-1]
        mask = enc["attention_mask"].unsqueeze(-1).float()
        feats = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        expected = feats @ model.classifier.weight.T + model.classifier.bias
    assert torch.allclose(out.logits, expected, atol=1e-5)
    assert model.config.id2label == dict(enumerate(LABELS))


def test_pooled_model_saves_loads_and_runs_in_a_remote_code_pipeline(tokenizer, tmp_path):
    from transformers import pipeline

    torch.manual_seed(0)
    model = load_classifier("minilm", LABELS, head="pooled", pooling="mean").eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 3.0)  # a head far from its start
    save_classifier(model, tokenizer, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["architectures"] == [ARCHITECTURE]
    assert config["lcl_pooling"] == "mean"
    assert (tmp_path / "model" / "modeling_lcl_pooled.py").exists()

    loaded = load_classifier(str(tmp_path / "model")).eval()
    assert isinstance(loaded, PooledEncoderForSequenceClassification)
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = torch.softmax(model(**enc).logits, -1)
        assert torch.allclose(loaded(**enc).logits, model(**enc).logits, atol=1e-5)
    clf = pipeline(
        "text-classification", model=str(tmp_path / "model"), trust_remote_code=True, top_k=None
    )
    for row, probs in zip(clf(TEXTS), want):
        got = {r["label"]: r["score"] for r in row}
        assert [got[n] for n in LABELS] == pytest.approx(probs.tolist(), abs=1e-5)


# --- the probe -----------------------------------------------------------------------------


def _blobs(n_per_class, centers, seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + 0.8 * rng.standard_normal((n_per_class, len(c))) for c in centers])
    y = np.repeat(np.arange(len(centers)), n_per_class)
    return x.astype(np.float32), y


def test_probe_fit_is_the_chosen_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    centers = np.eye(4)[:3] * 2.0
    x, y = _blobs(40, centers, 0)
    vx, vy = _blobs(20, centers, 1)
    fit = fit_probe(x, y, vx, vy, num_classes=3)
    assert [s["C"] for s in fit.search] == sorted(s["C"] for s in fit.search)
    best = max(s["val_accuracy"] for s in fit.search)
    assert fit.val_accuracy == best
    assert fit.C == min(s["C"] for s in fit.search if s["val_accuracy"] == best)
    ref = LogisticRegression(C=fit.C, max_iter=2000, random_state=0).fit(x, y)
    logits = vx @ fit.weight.T + fit.bias
    assert np.allclose(
        torch.softmax(torch.from_numpy(logits), -1).numpy(), ref.predict_proba(vx), atol=1e-5
    )


def test_probe_fit_handles_two_classes_and_a_class_absent_from_train():
    from sklearn.linear_model import LogisticRegression

    centers = np.eye(3)[:2] * 2.0
    x, y = _blobs(30, centers, 0)
    vx, vy = _blobs(10, centers, 1)
    fit = fit_probe(x, y, vx, vy, num_classes=3)  # class 2 never seen
    logits = vx @ fit.weight.T + fit.bias
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    ref = LogisticRegression(C=fit.C, max_iter=2000, random_state=0).fit(x, y)
    assert np.allclose(probs[:, :2], ref.predict_proba(vx), atol=1e-5)
    assert (probs[:, 2] < 1e-6).all()


def test_head_init_probe_sets_both_heads(tokenizer):
    import datasets

    from lcl.trainer import init_heads_from_probe

    feature = datasets.ClassLabel(names=LABELS)
    texts = TEXTS * 3
    labels = [0, 1, 2, 1] * 3
    split = datasets.Dataset.from_dict(
        {"text": texts, "label": labels},
        features=datasets.Features({"text": datasets.Value("string"), "label": feature}),
    )
    ds = datasets.DatasetDict(train=split, validation=split, test=split)
    config = TrainConfig(loss="lcl", weighting="network", head="pooled", head_init="probe")
    model = LCLModel.from_config(config, LABELS)
    info = init_heads_from_probe(model, config, ds, len(LABELS))
    main, weighting = model.heads()
    assert torch.equal(main.weight, weighting.weight) and torch.equal(main.bias, weighting.bias)
    assert info["val_accuracy"] > 0.5
    model.eval()
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        preds = model.classifier(**enc).logits.argmax(-1)
    assert (preds.numpy() == np.array(labels)).mean() == pytest.approx(info["val_accuracy"])


def test_probe_features_run_on_the_gpu_when_there_is_one(monkeypatch):
    """The frozen features of the probe and of the heads' probe start take the GPU by default:
    on a GPU machine's CPU they took minutes per cell while the GPU idled."""
    from lcl.probe import encode

    on_cpu = encode("minilm", TEXTS, "mean", cache=False, device="cpu")
    assert on_cpu.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(on_cpu, axis=1), 1.0, atol=1e-5)
    if torch.cuda.is_available():
        assert np.allclose(encode("minilm", TEXTS, "mean", cache=False), on_cpu, atol=1e-3)
    else:  # told there is a GPU, this CPU-only torch fails in moving the encoder there
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        with pytest.raises((AssertionError, RuntimeError), match="(?i)cuda"):
            encode("minilm", TEXTS, "mean", cache=False)


def test_head_learning_rate_applies_to_the_heads_only(tmp_path):
    from transformers import TrainingArguments

    from lcl.trainer import LCLTrainer

    config = TrainConfig(
        loss="lcl", weighting="network", learning_rate=3e-5, head_learning_rate=2e-3
    )
    model = LCLModel.from_config(config, LABELS)
    trainer = LCLTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), report_to="none", learning_rate=3e-5),
    )
    optimizer = trainer.create_optimizer()
    head_ids = {id(p) for h in model.heads() for p in h.parameters()}
    assert len(head_ids) == 4  # weight and bias of two heads
    seen = 0
    for group in optimizer.param_groups:
        is_head = {id(p) in head_ids for p in group["params"]}
        assert len(is_head) == 1
        assert group["lr"] == (2e-3 if is_head.pop() else 3e-5)
        seen += len(group["params"])
    assert seen == sum(1 for p in model.parameters() if p.requires_grad)


@pytest.mark.slow
def test_probe_cli_writes_a_run_its_model_reproduces(data_dir, tmp_path, capsys):
    from lcl.cli import main

    run = tmp_path / "probe"
    assert (
        main(
            [
                "probe",
                "--dataset",
                "isear",
                "--data-dir",
                str(data_dir),
                "--max-train-samples",
                "300",
                "--max-eval-samples",
                "200",
                "--output-dir",
                str(run),
            ]
        )
        == 0
    )
    for name in (
        "metrics.json",
        "config.yaml",
        "predictions.jsonl",
        "test_embeddings.npy",
        "confusability.json",
        "model/config.json",
    ):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["loss"] == "probe" and metrics["probe"]["pooling"] == "mean"
    assert metrics["probe"]["C"] in [s["C"] for s in metrics["probe"]["search"]]
    assert metrics["test"]["accuracy"] > 1 / 7 + 0.1  # far above chance on 7 classes
    assert yaml.safe_load((run / "config.yaml").read_text())["loss"] == "probe"
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["test"]["num_examples"] == 200
    assert np.load(run / "test_embeddings.npy").shape == (200, 384)
    # the saved model reproduces the probabilities the probe wrote
    from lcl.inference import Classifier

    clf = Classifier(run / "model")
    probs = clf.predict_proba([r["text"] for r in rows[:50]])
    want = np.array([[r["probs"][n] for n in clf.label_names] for r in rows[:50]])
    assert np.allclose(probs, want, atol=1e-4)


def test_per_class_cut_is_seeded_and_keeps_every_class():
    import datasets

    from lcl.trainer import per_class_cut

    labels = [0] * 30 + [1] * 5 + [2] * 12
    split = datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels}
    )
    cut = per_class_cut(split, 10, seed=3)
    counts = np.bincount(cut["label"])
    assert counts.tolist() == [10, 5, 10]
    assert per_class_cut(split, 10, seed=3)["text"] == cut["text"]
    assert per_class_cut(split, 10, seed=4)["text"] != cut["text"]


def test_exported_encoder_keeps_its_pooling(tmp_path):
    from lcl.modeling import export_encoder

    out = export_encoder("minilm", tmp_path / "enc", dtype="float16")
    assert checkpoint_pooling(out) == "mean"
    assert resolve_pooling("auto", str(out)) == "mean"


def test_best_epoch_is_fractional_with_several_evaluations_per_epoch():
    from lcl.trainer import _best_epoch

    history = [
        {"epoch": 0.5, "eval_accuracy": 0.8},
        {"epoch": 1.0, "eval_accuracy": 0.9},
        {"epoch": 1.5, "eval_accuracy": 0.9},
        {"loss": 1.0, "epoch": 1.5},
    ]
    assert _best_epoch(history) == 1
    history[0]["eval_accuracy"] = 0.95
    assert _best_epoch(history) == 0.5
    assert _best_epoch([{"loss": 1.0}]) is None


def test_still_improving_means_the_last_evaluation_was_kept():
    from lcl.metrics import still_improving

    assert still_improving({"loss": "ce", "best_epoch": 4, "epochs": 4})
    assert not still_improving({"loss": "ce", "best_epoch": 2, "epochs": 4})  # early stopping
    assert still_improving({"loss": "lcl", "best_epoch": 0.5, "epochs": 0.5})
    assert not still_improving({"loss": "lcl", "best_epoch": 1.5, "epochs": 2.0})
    assert not still_improving({"loss": "probe", "best_epoch": None, "epochs": 4})
    assert not still_improving({"loss": "ce", "epochs": 4})  # older or unknown


def test_a_run_still_improving_at_the_cap_is_told_so(tmp_path, capsys):
    from lcl.cli import _print_summary

    split = {"accuracy": 0.5, "macro_f1": 0.4, "weighted_f1": 0.45}
    metrics = {
        "dataset": "isear",
        "loss": "ce",
        "seed": 0,
        "best_epoch": 4,
        "epochs": 4,
        "headline_metric": "accuracy",
        "validation": split,
        "test": split,
        "runtime_seconds": 10.0,
    }
    _print_summary(metrics, tmp_path)
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "was highest at the last evaluation (epoch 4 of 4)" in out
    assert "--epochs 8" in out
    _print_summary({**metrics, "best_epoch": 2}, tmp_path)
    assert "last evaluation" not in capsys.readouterr().out


def test_evaluations_per_epoch_set_the_evaluation_and_checkpoint_interval(tmp_path):
    from lcl.trainer import _training_arguments

    args = _training_arguments(TrainConfig(epochs=2, evals_per_epoch=4), tmp_path)
    assert (args.eval_strategy, args.save_strategy) == ("steps", "steps")
    assert args.eval_steps == args.save_steps == pytest.approx(1 / 8)
    args = _training_arguments(TrainConfig(preset="paper"), tmp_path)
    assert args.eval_strategy == "epoch" and args.save_strategy == "epoch"


def test_auto_precision_follows_the_cpus_bf16_support(monkeypatch):
    import lcl.trainer as trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda native=native: native)
        assert trainer.resolve_precision("auto") == expected
        assert trainer.resolve_precision("fp32") == "fp32"  # explicit choices stay as given
        assert trainer.resolve_precision("bf16") == "bf16"
    # the probe of the CPU itself answers without error wherever the tests run
    assert isinstance(trainer.cpu_has_native_bf16(), bool)


def test_precision_and_report_to_reach_the_trainer(tmp_path):
    from lcl.trainer import _training_arguments, reporters, resolve_precision

    args = _training_arguments(
        TrainConfig(precision="bf16", report_to="tensorboard,mlflow"), tmp_path
    )
    assert args.bf16 and not args.fp16
    assert args.report_to == ["mlflow"]  # TensorBoard is attached by hand, into the run folder
    args = _training_arguments(TrainConfig(report_to="none", precision="fp32"), tmp_path)
    assert args.report_to in ("none", [], ["none"]) and not args.bf16
    assert reporters(TrainConfig(report_to="none")) == []
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
            resolve_precision("fp16")
    with pytest.raises(ConfigError, match="--precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ConfigError, match="--report-to"):
        TrainConfig(report_to="none,wandb")


def test_samples_per_class_batches_hold_m_texts_of_each_class(tmp_path):
    import datasets
    from transformers import TrainingArguments

    from lcl.trainer import LCLTrainer

    with pytest.raises(ConfigError, match="divisor of --batch-size"):
        TrainConfig(batch_size=10, samples_per_class=3)
    labels = [c for c in range(6) for _ in range(7)]
    train = datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels}
    )
    config = TrainConfig(loss="ce", batch_size=10, samples_per_class=2)
    model = LCLModel.from_config(config, [str(c) for c in range(6)])
    args = TrainingArguments(
        output_dir=str(tmp_path), report_to="none", per_device_train_batch_size=10
    )
    trainer = LCLTrainer(model=model, args=args, train_dataset=train)
    order = list(trainer._get_train_sampler())
    assert len(order) == len(labels) - len(labels) % 10
    for start in range(0, len(order), 10):
        counts = np.bincount([labels[i] for i in order[start : start + 10]], minlength=6)
        assert sorted(c for c in counts if c) == [2] * 5  # 5 classes, 2 texts each
    few = TrainConfig(loss="ce", batch_size=10, samples_per_class=1)
    trainer.model.train_config = few
    with pytest.raises(ConfigError, match="cannot fill a batch"):
        trainer._get_train_sampler()


def test_fractional_epochs_are_validated_and_reach_the_trainer(tmp_path):
    from lcl.trainer import _training_arguments

    assert TrainConfig(epochs=3.0).epochs == 3 and isinstance(TrainConfig(epochs=3.0).epochs, int)
    with pytest.raises(ConfigError, match="--epochs must be positive"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="whole number of evaluations"):
        TrainConfig(epochs=0.5, evals_per_epoch=1)
    args = _training_arguments(TrainConfig(epochs=0.5, evals_per_epoch=4), tmp_path)
    assert args.num_train_epochs == 0.5 and args.eval_strategy == "steps"
    assert args.eval_steps == pytest.approx(0.5)  # evaluations at a quarter and half epoch
    args = _training_arguments(TrainConfig(epochs=0.5, evals_per_epoch=2), tmp_path)
    assert 0.999 < args.eval_steps < 1  # one evaluation at the end: 1.0 would be every step


def test_half_an_epoch_trains_half_the_steps_and_evaluates_at_its_end(tmp_path):
    from lcl.trainer import train

    result = train(
        TrainConfig(
            dataset="demo",
            loss="ce",
            views="dropout",
            epochs=0.5,
            evals_per_epoch=2,  # one evaluation, at the end
            max_train_samples=80,  # 8 steps of 10 texts per epoch
            max_eval_samples=20,
            logging_steps=1,
            output_dir=str(tmp_path / "run"),
        )
    )
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3, 4]
    assert [h["step"] for h in history if "eval_accuracy" in h] == [4]
    assert result.metrics["best_epoch"] == 0.5
