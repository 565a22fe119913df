"""Tests for lcl.model_card (``lcl card``) and lcl.hub (``lcl push``, against a mocked HfApi).

Run folders are built here in the ``lcl train`` / ``lcl probe`` format around two real, tiny
model folders (the embedded MiniLM with a pooled head and with its own head), so the card's
``pipeline`` example is run as written. Nothing contacts the Hugging Face Hub.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import yaml
from huggingface_hub import HfApi as RealHfApi

from lcl.cli import main
from lcl.metrics import classification_metrics
from lcl.model_card import (
    GENERATED_MARKER,
    RunFolderError,
    base_model,
    confused_pairs,
    dataset_ids,
    write_model_card,
)

LABELS = ["anxious", "apprehensive", "afraid"]
# the largest single entry (0.45, afraid->apprehensive... both directions) vs the symmetrised
# ranking: apprehensive/afraid (0.45 + 0.35) / 2 = 0.40 first, anxious/apprehensive 0.25 next
CONFUSABILITY = [[0.50, 0.45, 0.05], [0.05, 0.50, 0.45], [0.05, 0.35, 0.60]]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A pooled-head and a native-head classifier folder with three labels."""
    from lcl.modeling import load_classifier, load_tokenizer, save_classifier

    root = tmp_path_factory.mktemp("models")
    tokenizer = load_tokenizer("minilm")
    return {
        "pooled": save_classifier(
            load_classifier("minilm", LABELS, head="pooled", pooling="mean"),
            tokenizer,
            root / "pooled",
        ),
        "native": save_classifier(
            load_classifier("minilm", LABELS, head="native"), tokenizer, root / "native"
        ),
    }


def _split(seed: int, n: int) -> dict:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, len(LABELS), n)
    logits = rng.normal(size=(n, len(LABELS))) + 2.0 * np.eye(len(LABELS))[gold]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return classification_metrics(gold, probs, LABELS)


def make_run(
    root: Path,
    model_dirs: dict | None,
    *,
    loss: str = "lcl",
    kind: str = "pooled",
    dataset: str = "empathetic_dialogues:anxious,apprehensive,afraid",
    config: dict | None = None,
) -> Path:
    """A finished run folder as ``lcl train`` (or ``lcl probe``) leaves it."""
    run = root / f"run-{loss}-{kind}"
    run.mkdir(parents=True)
    if model_dirs is not None:
        shutil.copytree(model_dirs[kind], run / "model")
    cfg = {
        "dataset": dataset,
        "preset": "minilm" if kind == "pooled" else "paper",
        "model": "minilm",
        "pooling": "auto",
        "head": kind,
        "head_init": "random",
        "loss": loss,
        "weighting": "network",
        "detach_weights": False,
        "temperature": 0.3,
        "lam": 0.5,
        "memory_size": 0,
        "views": "synonym",
        "batch_size": 10,
        "learning_rate": 5e-5,
        "head_learning_rate": 1e-3,
        "warmup_ratio": 0.1,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "epochs": 2,
        "early_stopping_patience": None,
        "dropout": None,
        "max_length": 128,
        "max_train_samples": None,
        "seed": 0,
        **(config or {}),
    }
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    metrics = {
        "dataset": dataset,
        "loss": loss,
        "seed": 0,
        "label_names": LABELS,
        "best_epoch": None if loss == "probe" else 2,
        "epochs": 2,
        "train_examples": 123,
        "device": "cpu",
        "runtime_seconds": 42.5,
        "train_runtime_seconds": 40.1,
        "validation": _split(1, 60),
        "test": _split(2, 90),
    }
    if loss == "probe":
        metrics["probe"] = {
            "C": 0.25,
            "pooling": "mean",
            "search": [{"C": 0.25, "val_accuracy": 0.61}, {"C": 1.0, "val_accuracy": 0.58}],
        }
    else:
        (run / "history.json").write_text(
            json.dumps(
                [
                    {"loss": 1.2, "step": 10, "epoch": 0.5},
                    {
                        "eval_accuracy": 0.5,
                        "eval_macro_f1": 0.4,
                        "eval_weighted_f1": 0.45,
                        "epoch": 1.0,
                    },
                    {
                        "eval_accuracy": 0.6,
                        "eval_macro_f1": 0.55,
                        "eval_weighted_f1": 0.58,
                        "epoch": 2.0,
                    },
                ]
            )
        )
    (run / "confusability.json").write_text(
        json.dumps(
            {
                "label_names": LABELS,
                "matrix": CONFUSABILITY,
                "source": "main_model" if loss == "probe" else "weighting_network",
                "split": "validation",
            }
        )
    )
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return run


def _body(card_text: str) -> str:
    return card_text.split("\n---\n", 1)[1]


def _python_example(card_text: str) -> str:
    return re.search(r"```python\n(.*?)```", card_text, re.DOTALL).group(1)


# ------------------------------------------------------------------------------ the card


def test_card_metadata_parses_and_states_metrics_exactly(tmp_path, model_dirs):
    from huggingface_hub import ModelCard, ModelCardData, metadata_eval_result

    run = make_run(tmp_path, model_dirs)
    path = write_model_card(run)
    assert path == run / "model" / "README.md"
    metrics = json.loads((run / "metrics.json").read_text())
    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification"
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.datasets == ["facebook/empathetic_dialogues"]
    assert {"text-classification", "contrastive-learning", "label-aware-contrastive-loss"} <= set(
        data.tags
    )
    # model-index: one result per metric, values equal to metrics.json bit for bit
    got = {(r.metric_type, (r.metric_args or {}).get("average")): r for r in data.eval_results}
    test = metrics["test"]
    assert got[("accuracy", None)].metric_value == test["accuracy"]
    assert got[("f1", "macro")].metric_value == test["macro_f1"]
    assert got[("f1", "weighted")].metric_value == test["weighted_f1"]
    for r in data.eval_results:
        assert (r.task_type, r.dataset_split) == ("text-classification", "test")
        assert r.dataset_type == "facebook/empathetic_dialogues"
        assert r.dataset_name == metrics["dataset"]
    # the raw YAML too (not only what huggingface_hub makes of it)
    meta = yaml.safe_load(card.content.split("---\n")[1])
    accuracy = meta["model-index"][0]["results"][0]["metrics"][0]
    assert accuracy == {"type": "accuracy", "value": test["accuracy"], "name": "Accuracy"}
    # the same entry as huggingface_hub's own helper makes it
    ref = metadata_eval_result(
        model_pretty_name=data.model_name,
        task_pretty_name="Text Classification",
        task_id="text-classification",
        metrics_pretty_name="Accuracy",
        metrics_id="accuracy",
        metrics_value=test["accuracy"],
        dataset_pretty_name=metrics["dataset"],
        dataset_id="facebook/empathetic_dialogues",
        dataset_split="test",
    )
    assert ref["model-index"][0]["results"][0]["metrics"][0]["value"] == accuracy["value"]
    assert (
        ref["model-index"][0]["results"][0]["dataset"]
        == meta["model-index"][0]["results"][0]["dataset"]
    )
    # ModelCardData round trip
    again = ModelCardData(**data.to_dict())
    assert again.to_dict() == data.to_dict()
    assert [r.metric_value for r in again.eval_results] == [
        test["accuracy"],
        test["macro_f1"],
        test["weighted_f1"],
    ]


def test_card_body_tables_pairs_hyper_parameters_citation(tmp_path, model_dirs):
    from markdown_it import MarkdownIt

    run = make_run(tmp_path, model_dirs)
    text = write_model_card(run).read_text()
    body = _body(text)
    assert body.lstrip().startswith(GENERATED_MARKER)
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert (
        f"| test | 90 | {test['accuracy']:.4f} | {test['macro_f1']:.4f} | "
        f"{test['weighted_f1']:.4f} |" in body
    )
    for name, c in test["per_class"].items():
        assert (
            f"| `{name}` | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | "
            f"{c['support']} |" in body
        )
    # most confused pairs: symmetrised, ranked, both directions and the test confusions
    assert "**symmetrised**" in body
    cm = test["confusion_matrix"]
    rows = re.findall(
        r"^\| `(\w+)` \| `(\w+)` \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \| "
        r"(\d+) \|$",
        body,
        re.MULTILINE,
    )
    assert [r[:3] for r in rows] == [
        ("apprehensive", "afraid", "0.400"),
        ("anxious", "apprehensive", "0.250"),
        ("anxious", "afraid", "0.050"),
    ]
    assert rows[0][3:] == ("0.450", "0.350", str(cm[1][2]), str(cm[2][1]))
    # objective and hyper-parameters from config.yaml
    assert "Label-aware Contrastive Loss" in body and "λ = 0.5" in body and "τ = 0.3" in body
    for row in (
        "| preset | `minilm` |",
        "| temperature τ | `0.3` |",
        "| λ (CE share) | `0.5` |",
        "| learning rate | `5e-05` |",
        "| head learning rate | `0.001` |",
        "| epochs | `2` |",
        "| best epoch (model kept) | `2` (the last: validation still rising, more epochs may help) |",
        "| pooling | `auto` (mean) |",
        "| head | `pooled` |",
        "| training texts | 123 |",
        "| device | cpu |",
        "| run time | 42 s (40 s training) |",
    ):
        assert row in body, row
    assert "## Citation" in body and "@inproceedings{suresh-ong-2021-negatives" in body
    assert "10.18653/v1/2021.emnlp-main.359" in body
    # renders as Markdown: the tables are tables, the citation and example are code
    html = MarkdownIt("commonmark").enable("table").render(body)
    assert html.count("<table>") == 6  # results, per class, pairs, hyper-parameters, epochs, data
    assert '<code class="language-python">' in html and "language-bibtex" in html
    assert all(
        len(line) <= 100 for line in _python_example(text).splitlines() if "model=" not in line
    )


@pytest.mark.parametrize("kind", ["pooled", "native"])
def test_pipeline_example_runs_as_written(tmp_path, model_dirs, kind):
    run = make_run(tmp_path, model_dirs, kind=kind, loss="lcl" if kind == "pooled" else "ce")
    text = write_model_card(run).read_text()
    code = _python_example(text)
    assert ("trust_remote_code=True" in code) == (kind == "pooled")
    assert f'model="{run / "model"}"' in code
    printed = []
    exec(compile(code, "card-example", "exec"), {"print": printed.append})  # noqa: S102
    best, every = printed
    assert best[0]["label"] in LABELS
    assert sorted(r["label"] for r in every) == sorted(LABELS)


def test_probe_run_card_describes_the_logistic_regression(tmp_path, model_dirs):
    from huggingface_hub import ModelCard

    run = make_run(tmp_path, model_dirs, loss="probe", config={"pooling": "auto"})
    path = write_model_card(run)
    card = ModelCard.load(path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r.metric_value for r in card.data.eval_results] == [
        metrics["test"][k] for k in ("accuracy", "macro_f1", "weighted_f1")
    ]
    body = _body(path.read_text())
    assert "logistic regression" in body and "frozen" in body and "C = 0.25" in body
    assert "| `1.0` | 0.5800 |" in body  # the C search
    assert "best epoch" not in body and "Validation per epoch" not in body
    assert "learning rate" not in body and "temperature" not in body
    assert "| pooling | `auto` (mean) |" in body
    assert "trust_remote_code=True" in body
    assert "the model's own softmax" in body


def test_older_run_without_new_fields(tmp_path, model_dirs):
    """A run from before presets, pooled heads and the device field still gets a card."""
    run = make_run(tmp_path, model_dirs, kind="native", loss="scl")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    for key in ("preset", "head", "head_init", "head_learning_rate", "warmup_ratio"):
        cfg.pop(key)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["device"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "history.json").unlink()
    (run / "confusability.json").unlink()
    assert main(["card", str(run)]) == 0
    body = _body((run / "model" / "README.md").read_text())
    assert "| preset | not recorded (older run) |" in body
    assert "| head | `native` (older run) |" in body
    assert "| device | not recorded |" in body
    assert "SupCon" in body and "Most confused" not in body


def test_card_for_a_run_without_model_folder(tmp_path, capsys):
    run = make_run(tmp_path, None, kind="native")
    assert main(["card", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lcl: error:") and "no model/ folder" in err and "\n" not in err
    out = tmp_path / "card.md"
    assert main(["card", str(run), "--output", str(out)]) == 0
    assert "trust_remote_code" not in out.read_text()  # native head, from config.yaml
    assert not (run / "model").exists()


def test_unfinished_run_is_a_one_line_error(tmp_path, model_dirs, capsys):
    run = make_run(tmp_path, model_dirs)
    (run / "metrics.json").unlink()
    with pytest.raises(RunFolderError, match="not a finished run"):
        write_model_card(run)
    assert main(["card", str(run)]) == 2
    assert main(["card", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("lcl: error:") for line in err)
    assert not (run / "model" / "README.md").exists()


def test_names_of_base_models_and_datasets(tmp_path):
    assert base_model("minilm") == ("sentence-transformers/all-MiniLM-L6-v2",) * 2
    assert base_model("mpnet") == ("sentence-transformers/all-mpnet-base-v2",) * 2
    assert base_model("bert-base-uncased") == ("bert-base-uncased", "bert-base-uncased")
    assert base_model("org/model") == ("org/model", "org/model")
    local = tmp_path / "encoders" / "minilm-fp16"
    local.mkdir(parents=True)
    assert base_model(str(local)) == (None, "minilm-fp16")
    assert base_model(".gpu/enc") == (None, "enc")
    assert dataset_ids("isear") == {"name": "isear", "type": "isear", "config": None, "hub": None}
    assert dataset_ids("sst5")["hub"] == "SetFit/sst5"
    assert dataset_ids("goemotions")["type"] == "google-research-datasets/go_emotions"
    assert dataset_ids("hf:org/data:cfg") == {
        "name": "hf:org/data:cfg",
        "type": "org/data",
        "config": "cfg",
        "hub": "org/data",
    }
    assert dataset_ids("csv:/home/me/private/tickets.csv")["name"] == "csv:tickets.csv"
    assert dataset_ids("disk:/data/saved")["type"] == "disk:saved"


def test_local_encoder_and_own_files_leave_no_local_path(tmp_path, model_dirs):
    from huggingface_hub import ModelCard

    run = make_run(
        tmp_path,
        model_dirs,
        dataset="csv:/home/me/private/tickets.csv",
        config={"model": "/home/me/encoders/enc-fp16"},
    )
    path = write_model_card(run, repo_id="me/tickets")
    data = ModelCard.load(path).data
    assert data.base_model is None and "base_model" not in path.read_text().split("---")[1]
    assert data.datasets == ["csv:tickets.csv"]
    assert data.eval_results[0].dataset_name == "csv:tickets.csv"
    assert "/home/me" not in path.read_text() and "`enc-fp16`" in path.read_text()


def test_confused_pairs_are_symmetrised():
    pairs = confused_pairs({"label_names": LABELS, "matrix": CONFUSABILITY}, k=2)
    assert [(p["a"], p["b"]) for p in pairs] == [
        ("apprehensive", "afraid"),
        ("anxious", "apprehensive"),
    ]
    assert pairs[0]["score"] == pytest.approx(0.40)
    assert confused_pairs(None) == []


# ------------------------------------------------------------------------------ lcl push


def _bind(method: str, *args, **kwargs) -> None:
    """Fail as the real ``HfApi`` would on an argument it does not take."""
    inspect.signature(getattr(RealHfApi, method)).bind(None, *args, **kwargs)


class FakeHfApi:
    """Records what ``lcl push`` asks of ``huggingface_hub.HfApi`` (checked against the real
    signatures); contacts nothing."""

    calls: ClassVar[list] = []

    def __init__(self, token=None):
        _bind("__init__", token=token)
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        _bind("create_repo", repo_id, **kwargs)
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        _bind("upload_folder", **kwargs)
        folder = Path(kwargs["folder_path"])
        uploaded = sorted(p.name for p in folder.iterdir())
        readme = (folder / "README.md").read_text()
        self.calls.append(("upload_folder", {**kwargs, "files": uploaded, "readme": readme}))

        class Commit:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/abc123"

        return Commit()


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi.calls


def test_push_creates_repo_and_uploads_model_with_card(tmp_path, model_dirs, fake_hub, capsys):
    run = make_run(tmp_path, model_dirs)
    assert not (run / "model" / "README.md").exists()
    assert main(["push", str(run), "me/lcl-test", "--private", "--token", "hf_x"]) == 0
    assert "me/lcl-test/commit/abc123" in capsys.readouterr().out
    names = [c[0] for c in fake_hub]
    assert names == ["init", "create_repo", "upload_folder"]
    create, upload = fake_hub[1][1], fake_hub[2][1]
    assert create == {
        "repo_id": "me/lcl-test",
        "token": "hf_x",
        "private": True,
        "repo_type": "model",
        "exist_ok": True,
    }
    assert upload["repo_id"] == "me/lcl-test" and upload["repo_type"] == "model"
    assert Path(upload["folder_path"]) == run / "model" and upload["token"] == "hf_x"
    assert {"README.md", "config.json", "model.safetensors", "modeling_lcl_pooled.py"} <= set(
        upload["files"]
    )
    # the card names the repository: model-index name and the pipeline example
    assert 'model="me/lcl-test", trust_remote_code=True' in upload["readme"]
    assert "- name: lcl-test" in upload["readme"]


def test_push_regenerates_lcl_card_but_keeps_an_edited_one(tmp_path, model_dirs, fake_hub):
    run = make_run(tmp_path, model_dirs)
    write_model_card(run)  # as at the end of training: local path in the example
    assert main(["push", str(run), "me/first"]) == 0
    assert fake_hub[1][1]["private"] is None  # the account's default visibility
    assert 'model="me/first"' in fake_hub[2][1]["readme"]
    edited = "---\nlicense: mit\n---\n\nMy own words.\n"
    (run / "model" / "README.md").write_text(edited)
    assert main(["push", str(run), "me/second"]) == 0
    assert fake_hub[-1][1]["readme"] == edited


@pytest.mark.parametrize("case", ["no-model", "unfinished", "bad-repo-id"])
def test_push_errors_are_one_line_and_upload_nothing(tmp_path, model_dirs, fake_hub, capsys, case):
    run = make_run(tmp_path, None if case == "no-model" else model_dirs)
    if case == "unfinished":
        (run / "metrics.json").unlink()
    repo = "not a/valid/id" if case == "bad-repo-id" else "me/x"
    assert main(["push", str(run), repo]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lcl: error:")
    assert fake_hub == []
