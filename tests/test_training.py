"""Unit tests of the training pipeline's pieces: collator, objectives, metrics, config, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from lcl.cli import main
from lcl.losses import LabelAwareContrastiveLoss, SupConLoss
from lcl.metrics import classification_metrics
from lcl.modeling import LCLModel, load_tokenizer
from lcl.trainer import PairedViewCollator
from lcl.training_args import ConfigError, TrainConfig

LABELS = ["afraid", "anxious", "sad"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


# --- collator ------------------------------------------------------------------------------


def test_collator_pairs_views_with_their_labels(tokenizer):
    rows = [
        {"text": "i was scared", "view": "i was frightened", "label": 0},
        {"text": "a long sad day at the end of summer", "view": "a long sorry day", "label": 2},
        {"text": "the exam worries me", "view": "the examination worries me", "label": 1},
    ]
    batch = PairedViewCollator(tokenizer, max_length=32)(rows)
    assert batch["input_ids"].shape[0] == 6
    assert batch["labels"].tolist() == [0, 2, 1, 0, 2, 1]
    decoded = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert decoded[1] == "a long sad day at the end of summer"
    assert decoded[4] == "a long sorry day"  # view i sits at i + B
    # padded to the longest text of the batch, not to max_length
    assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())


def test_collator_without_views_is_plain(tokenizer):
    batch = PairedViewCollator(tokenizer)([{"text": "hello", "label": 1}])
    assert batch["input_ids"].shape[0] == 1 and batch["labels"].tolist() == [1]


# --- objectives ----------------------------------------------------------------------------


def _batch(tokenizer):
    texts = [
        "i was scared of the dark",
        "my exam is tomorrow and i can't sleep",
        "i lost my dog last week",
        "the storm terrified me",
        "i was afraid of the dark",
        "my test is tomorrow and i cannot sleep",
        "i lost my puppy last week",
        "the storm frightened me",
    ]
    labels = [0, 1, 2, 0] * 2
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return dict(enc), torch.tensor(labels)


def _model(loss, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(loss=loss, **{"preset": "paper", **kw})
    model = LCLModel.from_config(cfg, LABELS)
    model.train()
    for m in model.modules():  # determinism: the test recomputes the parts by hand
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def _cls_feature(net, enc):
    out = net(**enc, output_hidden_states=True)
    return F.normalize(out.hidden_states[-1][:, 0], dim=-1), out.logits


@pytest.mark.parametrize("loss", ["ce", "scl", "lcl"])
def test_objective_wiring(tokenizer, loss):
    enc, labels = _batch(tokenizer)
    model = _model(loss)
    out = model(**enc, labels=labels)
    with torch.no_grad():
        feats, logits = _cls_feature(model.classifier, enc)
        ce = F.cross_entropy(logits, labels)
        if loss == "ce":
            expected = ce
        elif loss == "scl":
            expected = 0.5 * ce + 0.5 * SupConLoss(0.3)(feats, labels)
        else:
            w_logits = model.weighting(**enc).logits
            expected = (
                0.5 * ce
                + 0.5 * LabelAwareContrastiveLoss(0.3)(feats, labels, w_logits)
                + 0.5 * F.cross_entropy(w_logits, labels)
            )
    assert torch.allclose(out["loss"], expected, atol=1e-5)
    assert (
        set(out["loss_parts"])
        == {
            "ce": {"loss_ce"},
            "scl": {"loss_ce", "loss_contrastive"},
            "lcl": {"loss_ce", "loss_contrastive", "loss_weighting_ce"},
        }[loss]
    )


def test_lcl_gradient_reaches_weighting_network_unless_detached(tokenizer):
    enc, labels = _batch(tokenizer)
    for detach in (False, True):
        model = _model("lcl", detach_weights=detach, lam=0.0)  # λ=0: only the contrastive part
        model(**enc, labels=labels)["loss"].backward()
        grad = model.weighting.classifier.weight.grad
        flowing = grad is not None and bool(grad.abs().sum() > 0)
        assert flowing is (not detach)


def test_self_weighting_has_one_encoder_and_detached_weights(tokenizer):
    enc, labels = _batch(tokenizer)
    model = _model("lcl", weighting="self")
    assert model.weighting is None
    out = model(**enc, labels=labels)
    with torch.no_grad():
        feats, logits = _cls_feature(model.classifier, enc)
        expected = 0.5 * F.cross_entropy(logits, labels) + 0.5 * LabelAwareContrastiveLoss(0.3)(
            feats, labels, logits
        )
    assert torch.allclose(out["loss"], expected, atol=1e-5)


def test_eval_mode_computes_only_cross_entropy(tokenizer):
    enc, labels = _batch(tokenizer)
    model = _model("lcl").eval()
    out = model(**enc, labels=labels)
    assert torch.allclose(out["loss"], F.cross_entropy(out["logits"], labels))


# --- length groups -------------------------------------------------------------------------


def _right_padded(lengths, width=None):
    width = width or max(lengths)
    return (torch.arange(width) < torch.tensor(lengths)[:, None]).long()


def _groups_cost(groups, lengths, group_cost):
    return sum(len(rows) * length + group_cost for rows, length in groups)


def _best_cost_by_enumeration(lengths, group_cost):
    """Every split of the length-sorted rows into contiguous groups (the slow reference)."""
    import itertools

    sizes = sorted(lengths)
    n = len(sizes)
    best = None
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        cost = sum((b - a) * sizes[b - 1] + group_cost for a, b in zip(bounds, bounds[1:]))
        best = cost if best is None else min(best, cost)
    return best


def test_length_groups_find_the_cheapest_split():
    from lcl.modeling import length_groups

    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(2, 9))
        lengths = rng.integers(1, 90, size=n).tolist()
        group_cost = int(rng.choice([0, 16, 48, 200]))
        groups = length_groups(_right_padded(lengths), group_cost)
        if groups is None:
            groups = [(torch.arange(n), max(lengths))]
        rows = torch.cat([r for r, _ in groups]).tolist()
        assert sorted(rows) == list(range(n)), trial  # every row once
        for r, length in groups:
            assert length == max(lengths[i] for i in r.tolist())
        assert _groups_cost(groups, lengths, group_cost) == _best_cost_by_enumeration(
            lengths, group_cost
        ), (lengths, group_cost)


def test_length_groups_leave_even_or_left_padded_batches_whole():
    from lcl.modeling import length_groups

    assert length_groups(_right_padded([20] * 16)) is None  # nothing to save
    assert length_groups(_right_padded([5] * 8 + [100] * 8)) is not None
    left = _right_padded([5] * 8 + [100] * 8).flip(1)  # padding on the left
    assert length_groups(left) is None
    assert length_groups(_right_padded([7])) is None


def _mixed_batch(tokenizer):
    short = ["i was scared", "so sad", "i lost my dog", "storm!"]
    long = [
        "when i was a child my parents left me alone at home for a whole weekend and every "
        "noise in the old house made me think that somebody was coming up the stairs",
        "my best friend moved to another country last year and i still miss our long walks "
        "along the river on sunday mornings more than i can say",
        "i had studied for months, and then on the morning of the exam i overslept, missed the "
        "bus and arrived just as they were closing the doors of the hall",
        "the hurricane tore the roof off our neighbours' house and we spent the night in the "
        "basement listening to the wind and the trees falling outside",
    ]
    enc = tokenizer(short + long, padding=True, return_tensors="pt")
    return dict(enc), torch.tensor([0, 2, 2, 0, 0, 2, 1, 0])


@pytest.mark.parametrize("loss, extra", [("lcl", {}), ("scl", {"head": "pooled"})])
def test_length_groups_give_the_whole_batch_outputs_and_gradients(tokenizer, loss, extra):
    from lcl.modeling import length_groups

    enc, labels = _mixed_batch(tokenizer)
    assert length_groups(enc["attention_mask"]) is not None  # the batch is split
    results = {}
    for setting in ("off", "on"):
        model = _model(loss, length_groups=setting, **extra)
        out = model(**enc, labels=labels)
        out["loss"].backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.eval()
        with torch.no_grad():
            logits = model(**enc)["logits"]
        results[setting] = (out, grads, logits)
    (out_off, grads_off, logits_off), (out_on, grads_on, logits_on) = (
        results["off"],
        results["on"],
    )
    assert torch.allclose(logits_on, logits_off, atol=1e-5)
    assert torch.allclose(out_on["logits"], out_off["logits"], atol=1e-5)
    for key in out_off["loss_parts"]:
        assert torch.allclose(out_on["loss_parts"][key], out_off["loss_parts"][key], atol=1e-5)
    assert grads_on.keys() == grads_off.keys() and len(grads_off) > 0
    for name, grad in grads_off.items():
        assert torch.allclose(grads_on[name], grad, atol=1e-5, rtol=1e-4), name


def test_length_groups_auto_is_on_for_a_cpu_batch(tokenizer, monkeypatch):
    import lcl.modeling

    enc, labels = _mixed_batch(tokenizer)
    calls = []
    real = lcl.modeling.length_groups
    monkeypatch.setattr(lcl.modeling, "length_groups", lambda m: calls.append(1) or real(m))
    for setting, expected in (("auto", 1), ("off", 0), ("on", 1)):
        calls.clear()
        _model("ce", length_groups=setting).eval()(**enc)
        assert len(calls) == expected, setting


# --- metrics -------------------------------------------------------------------------------


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=200)
    probs = rng.dirichlet(np.ones(4), size=200)
    names = ["a", "b", "c", "d"]
    m = classification_metrics(labels, probs, names)
    preds = probs.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert m["weighted_f1"] == pytest.approx(f1_score(labels, preds, average="weighted"))
    assert m["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert m["confusion_matrix"] == confusion_matrix(labels, preds).tolist()
    per_class_f1 = f1_score(labels, preds, average=None)
    assert [m["per_class"][n]["f1"] for n in names] == pytest.approx(per_class_f1.tolist())
    entropy = -(probs * np.log(probs)).sum(1).mean()
    assert m["mean_entropy"] == pytest.approx(entropy)


# --- configuration -------------------------------------------------------------------------


def test_paper_preset_is_the_papers():
    c = TrainConfig(preset="paper")
    assert c.head == "native" and c.head_init == "random" and c.warmup_ratio == 0.0
    assert (
        c.temperature,
        c.lam,
        c.batch_size,
        c.learning_rate,
        c.weight_decay,
        c.max_grad_norm,
        c.epochs,
        c.loss,
        c.weighting,
        c.pooling,
    ) == (0.3, 0.5, 10, 2e-5, 0.01, 1.0, 5, "lcl", "network", "cls")


def test_yaml_values_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss: scl\nepochs: 2\ntemperature: 0.1\nmax-train-samples: 50\n")
    c = TrainConfig.from_yaml(path, epochs=3)
    assert (c.loss, c.epochs, c.temperature, c.max_train_samples) == ("scl", 3, 0.1, 50)
    round_trip = TrainConfig.from_dict(__import__("yaml").safe_load(c.to_yaml()))
    assert round_trip == c


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"loss": "mse"}, "--loss"),
        ({"temperature": 0}, "--temperature"),
        ({"lam": 1.5}, "--lam"),
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": -1}, "--batch-size"),
        ({"length_groups": "sometimes"}, "--length-groups"),
        ({"colour": "red"}, "unknown configuration key"),
    ],
)
def test_bad_configuration_is_rejected(bad, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(bad)


# --- CLI errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "no-such-dataset"], "no-such-dataset"),
        (["train", "--dataset", "csv:does/not/exist.csv"], "exist.csv"),
        (["train", "--temperature", "-1"], "--temperature"),
        (["train", "--model", "./no/such/model", "--dataset", "demo"], "no/such/model"),
        (["train", "--config", "missing.yaml"], "missing.yaml"),
        (["predict", "--model", "./no/such/model", "hello"], "no/such/model"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = argv + (["--output-dir", str(tmp_path / "out")] if argv[0] == "train" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lcl: error:") and message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_cli_bad_column_names_the_column(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("sentence,label\nhello there,a\ngood bye,b\n")
    assert main(["train", "--dataset", f"csv:{data}", "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "text" in err and "d.csv" in err


def test_cli_help_lists_every_train_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name in TrainConfig.field_names():
        assert "--" + name.replace("_", "-") in out


def test_timed_checkpoint_saves_when_due_and_never_at_an_epoch_end():
    """The clock is looked at on logging steps; a due save is asked for unless the step saves
    anyway (an evaluation) or ends an epoch (whose own checkpoint follows); any save restarts it."""
    from types import SimpleNamespace

    from transformers import TrainerControl, TrainerState

    from lcl.trainer import TimedCheckpoint

    now = [0.0]
    callback = TimedCheckpoint(minutes=1, clock=lambda: now[0])
    args = SimpleNamespace(logging_steps=5, save_strategy="epoch", num_train_epochs=2, device="cpu")
    state = TrainerState(max_steps=40)  # 20 steps an epoch
    callback.on_train_begin(args, state, TrainerControl())

    def step(n, seconds):
        now[0] = seconds
        state.global_step = n
        control = TrainerControl()
        callback.on_step_end(args, state, control)
        if control.should_save:
            callback.on_save(args, state, control)
        return control.should_save

    assert not step(5, 59.0)  # not yet a minute
    assert not step(6, 61.0)  # due, but not a logging step
    assert step(10, 61.0)  # due at the next logging step
    assert not step(15, 100.0)  # the save at step 10 restarted the clock
    assert not step(20, 200.0)  # due, but epoch 1 ends here: its own checkpoint follows
    assert step(25, 200.0)
    control = TrainerControl(should_save=True)  # an evaluation's checkpoint: not asked twice
    now[0], state.global_step = 400.0, 30
    callback.on_step_end(args, state, control)
    assert control.should_save


def test_checkpoint_minutes_takes_none_and_refuses_zero():
    assert TrainConfig(dataset="demo", checkpoint_minutes="none").checkpoint_minutes is None
    assert TrainConfig(dataset="demo").checkpoint_minutes == 30.0
    with pytest.raises(ConfigError, match="--checkpoint-minutes must be positive"):
        TrainConfig(dataset="demo", checkpoint_minutes=0)
    assert main(["train", "--dataset", "demo", "--checkpoint-minutes", "-1"]) == 2
