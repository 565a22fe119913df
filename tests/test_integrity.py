"""Issue 18, "Never lose or mix a run": one test (or more) per case of the issue, named
``test_caseNN_...`` after its number there; ``conftest.py`` prints which of them ran.

Training here is tiny (the bundled demo, 40 texts, batch 10: four steps an epoch, two epochs,
the paper preset with plain cross-entropy); the kill test trains in a subprocess that sends
itself SIGKILL while its second checkpoint is being written.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lcl.cli import main
from lcl.run_dir import (
    CHECKPOINT_MARKER,
    LOCK,
    RunConfigMismatchError,
    RunDir,
    RunLockedError,
    config_differences,
    start_run,
)
from lcl.training_args import ConfigError, TrainConfig

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--dataset",
    "demo",
    "--preset",
    "paper",
    "--loss",
    "ce",
    "--epochs",
    "2",
    "--max-train-samples",
    "40",
    "--max-eval-samples",
    "20",
    "--logging-steps",
    "1",
]


def tiny(out: Path, **overrides) -> TrainConfig:
    values = dict(
        dataset="demo",
        preset="paper",
        loss="ce",
        epochs=2,
        max_train_samples=40,
        max_eval_samples=20,
        logging_steps=1,
        output_dir=str(out),
    )
    values.update(overrides)
    return TrainConfig(**values)


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("lcl: error:") == 1 and "Traceback" not in err, err
    line = err[err.index("lcl: error:") :].split("\n")[0]  # after any progress bar's \r
    for needle in needles:
        assert needle in line, line
    return line


def fake_finished_run(path: Path) -> dict[str, bytes]:
    """A finished run's files (contents do not matter to the run folder's rules)."""
    path.mkdir(parents=True)
    (path / "model").mkdir()
    files = {
        "metrics.json": b'{"old": true}\n',
        "config.yaml": tiny(path, seed=7).to_yaml().encode(),
        "predictions.jsonl": b"{}\n",
        "model/weights.bin": b"old weights",
    }
    for name, data in files.items():
        (path / name).write_bytes(data)
    return files


def same_files(path: Path, files: dict[str, bytes]) -> bool:
    return all((path / n).read_bytes() == data for n, data in files.items())


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Nothing here may reach the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from lcl.trainer import LCLTrainer
    from lcl.cli import main

    save_rng = LCLTrainer._save_rng_state

    def die_while_saving(self, output_dir):
        # the weights and optimizer of checkpoint-8 are written, its trainer state is not
        if self.state.global_step >= 8:
            os.kill(os.getpid(), signal.SIGKILL)
        return save_rng(self, output_dir)

    LCLTrainer._save_rng_state = die_while_saving
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    """A run killed with SIGKILL while writing its second checkpoint (epoch 2)."""
    run = tmp_path_factory.mktemp("killed") / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, "train", *TINY, "--output-dir", str(run)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


# --- 1. --overwrite keeps the old run until the new one has loaded ----------------------------


@pytest.mark.parametrize("bad", ["data", "model"])
def test_case01_overwrite_keeps_old_run_when_new_one_fails(bad, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    files = fake_finished_run(run)
    data = tmp_path / "bad.csv"
    data.write_text('text,label\nhello,a\n"unclosed,b\n')
    if bad == "data":
        argv = ["train", *TINY, "--dataset", f"csv:{data}"]
    else:
        argv = ["train", *TINY, "--model", "no-such-model-xyz"]
    assert main([*argv, "--overwrite", "--output-dir", str(run)]) == 2
    one_line_error(capsys, "bad.csv" if bad == "data" else "no-such-model-xyz")
    assert same_files(run, files)
    assert sorted(p.name for p in run.iterdir()) == [
        "config.yaml",
        "metrics.json",
        "model",
        "predictions.jsonl",
    ]  # no lock, no aside


def test_case01_overwrite_replaces_old_run_once_new_one_loaded(tmp_path, capsys):
    run = tmp_path / "run"
    fake_finished_run(run)
    assert (
        main(
            [
                "probe",
                "--dataset",
                "demo",
                "--preset",
                "paper",
                "--max-train-samples",
                "40",
                "--max-eval-samples",
                "20",
                "--overwrite",
                "--output-dir",
                str(run),
            ]
        )
        == 0
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert "probe" in metrics and "old" not in metrics
    assert not (run / "model" / "weights.bin").exists()
    assert RunDir(run).missing_files(history=False) == []
    assert not (run / ".lcl-replaced").exists() and not (run / LOCK).exists()


# --- 2. a killed run restarted with other settings is refused ---------------------------------


def test_case02_killed_run_with_other_settings_is_refused(killed_run, tmp_path, capsys):
    run = copy_of(killed_run, tmp_path)
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.name != LOCK)
    for flags, field in [
        (["--seed", "1"], "seed"),
        (["--lam", "0.3"], "lam"),
        (["--temperature", "0.1"], "temperature"),
        (["--max-train-samples", "30"], "max_train_samples"),
        (["--learning-rate", "3e-5"], "learning_rate"),
    ]:
        assert main(["train", *TINY, *flags, "--output-dir", str(run)]) == 2
        one_line_error(capsys, "another configuration", field, "--overwrite")
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before  # lock released


def test_case02_only_result_changing_fields_count():
    saved = tiny("a").to_dict()
    same = tiny(
        "b", logging_steps=7, eval_batch_size=8, keep_checkpoints=True, overwrite=True
    ).to_dict()
    assert config_differences(saved, same) == []
    assert config_differences(saved, tiny("a", seed=2, lam=0.2).to_dict()) == ["lam", "seed"]
    # the recipe is compared resolved: the preset's values, not the sentinel
    assert config_differences(saved, tiny("a", preset="minilm").to_dict()) != []
    # a config.yaml of an older version without a field: its default (or skipped)
    older = {k: v for k, v in saved.items() if k not in ("memory_size", "head")}
    assert config_differences(older, tiny("a").to_dict()) == []
    assert config_differences(older, tiny("a", memory_size=8).to_dict()) == ["memory_size"]
    # runs from before --length-groups resume under its default, not under another setting
    before = {k: v for k, v in saved.items() if k != "length_groups"}
    assert config_differences(before, tiny("a").to_dict()) == []
    assert config_differences(before, tiny("a", length_groups="off").to_dict()) == ["length_groups"]


def test_case02_fields_the_objective_does_not_read_never_differ():
    ce = tiny("a", weighting="network").to_dict()
    assert config_differences(ce, tiny("a", weighting="self").to_dict()) == []
    lcl = tiny("a", loss="lcl", weighting="network").to_dict()
    assert config_differences(lcl, tiny("a", loss="lcl", weighting="self").to_dict()) == [
        "weighting"
    ]
    # a change of objective still counts, and with it the weights the new one reads
    assert config_differences(ce, tiny("a", loss="lcl", weighting="self").to_dict()) == [
        "loss",
        "weighting",
    ]


def test_case02_checkpoints_without_config_are_not_resumed(tmp_path):
    run = RunDir(tmp_path / "run")
    ckpt = run.checkpoint_dir / "checkpoint-4"
    ckpt.mkdir(parents=True)
    for name in ("trainer_state.json", "model.safetensors", CHECKPOINT_MARKER):
        (ckpt / name).write_text("{}")
    with pytest.raises(RunConfigMismatchError, match="no config.yaml"):
        start_run(tiny(run.path))


# --- 3. two runs into one folder: the second is refused ---------------------------------------


def test_case03_second_run_into_a_claimed_folder_is_refused(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    with run.claim():
        assert main(["train", *TINY, "--output-dir", str(run.path)]) == 2
        one_line_error(capsys, "in use by another run", f"pid {os.getpid()}", socket.gethostname())
        assert run.lock_owner().pid == os.getpid()  # still ours
        with pytest.raises(RunLockedError):
            run.claim()
    assert not run.lock_path.exists()  # released


def test_case03_lock_of_a_live_process_holds_and_a_dead_ones_is_taken_over(tmp_path, caplog):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.lock_path.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(RunLockedError, match=f"pid {sleeper.pid}"):
            run.claim()
    finally:
        sleeper.kill()
        sleeper.wait()
    with caplog.at_level(logging.WARNING, logger="lcl.run_dir"):
        lock = run.claim()  # the sleeper is dead now: its lock is stale
    assert "taking over the lock" in caplog.text and str(sleeper.pid) in caplog.text
    assert run.lock_owner().pid == os.getpid()
    lock.release()
    # another host's lock cannot be judged: refused, with advice
    run.lock_path.write_text(json.dumps({"pid": dead_pid(), "host": "elsewhere"}))
    with pytest.raises(RunLockedError, match="elsewhere.*delete the lock file"):
        run.claim()


def test_case03_lock_released_and_new_folder_removed_after_an_error(tmp_path, capsys):
    run = tmp_path / "new-run"
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nonly,a\n")
    assert main(["train", *TINY, "--dataset", f"csv:{data}", "--output-dir", str(run)]) == 2
    capsys.readouterr()
    assert not run.exists()  # nothing half-made left behind


def test_case03_only_rank_zero_claims(tmp_path):
    run = RunDir(tmp_path / "run")
    start = start_run(tiny(run.path), is_main=False)
    assert start.lock is None and not run.lock_path.exists()
    start = start_run(tiny(run.path), is_main=True)
    assert run.lock_owner().pid == os.getpid()
    start.close(ok=False)
    assert not run.path.exists()


# --- 4. kill -9 while a checkpoint is saved: the next start resumes the last complete one ------


def test_case04_kill_while_saving_resumes_from_last_complete_checkpoint(
    killed_run, tmp_path, caplog, monkeypatch
):
    run = RunDir(copy_of(killed_run, tmp_path))
    names = [p.name for p in run.checkpoints()]
    assert names == ["checkpoint-4", "checkpoint-8"]
    assert run.is_complete_checkpoint(run.checkpoint_dir / "checkpoint-4")
    assert not run.is_complete_checkpoint(run.checkpoint_dir / "checkpoint-8")
    assert not run.is_finished and run.lock_path.exists()  # the killed owner's lock

    from lcl.trainer import LCLTrainer, train

    calls = []
    step = LCLTrainer.training_step
    monkeypatch.setattr(
        LCLTrainer, "training_step", lambda self, *a, **k: calls.append(1) or step(self, *a, **k)
    )
    with caplog.at_level(logging.WARNING, logger="lcl.run_dir"):
        # logging and evaluation batch sizes do not change results: the run may resume
        result = train(tiny(run.path, logging_steps=2, eval_batch_size=16))
    assert "taking over the lock" in caplog.text
    assert "incomplete checkpoint" in caplog.text and "checkpoint-8" in caplog.text
    assert "resuming from checkpoint-4" in caplog.text
    assert len(calls) == 4  # epoch 2 only
    assert result.metrics["best_epoch"] in (1, 2) and run.is_finished
    assert not run.checkpoint_dir.exists() and not run.lock_path.exists()


# --- 5. a full disk while saving: one line, exit 2, the last good checkpoint usable -----------


def test_case05_disk_full_keeps_last_checkpoint_and_resumes(tmp_path, capsys, monkeypatch):
    from lcl.trainer import LCLTrainer

    run = RunDir(tmp_path / "run")
    save = LCLTrainer._save_optimizer_and_scheduler

    def disk_full(self, output_dir):
        if self.state.global_step >= 8:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(self, output_dir)

    monkeypatch.setattr(LCLTrainer, "_save_optimizer_and_scheduler", disk_full)
    assert main(["train", *TINY, "--output-dir", str(run.path)]) == 2
    one_line_error(capsys, os.strerror(errno.ENOSPC), "checkpoint-4")
    assert [p.name for p in run.checkpoints()] == ["checkpoint-4"]
    assert run.last_checkpoint().name == "checkpoint-4" and not run.lock_path.exists()

    monkeypatch.setattr(LCLTrainer, "_save_optimizer_and_scheduler", save)
    calls = []
    step = LCLTrainer.training_step
    monkeypatch.setattr(
        LCLTrainer, "training_step", lambda self, *a, **k: calls.append(1) or step(self, *a, **k)
    )
    assert main(["train", *TINY, "--output-dir", str(run.path)]) == 0
    assert len(calls) == 4 and run.is_finished  # resumed from checkpoint-4


def test_case05_safetensors_error_is_one_line(tmp_path, capsys, monkeypatch):
    from safetensors import SafetensorError

    from lcl.trainer import LCLTrainer

    def fail(self, *args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(LCLTrainer, "save_model", fail)
    run = RunDir(tmp_path / "run")
    assert main(["train", *TINY, "--epochs", "1", "--output-dir", str(run.path)]) == 2
    one_line_error(capsys, "cannot write checkpoint", "No space left")
    assert run.checkpoints() == [] and not run.lock_path.exists()


# --- 6. NaN and inf are refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "learning_rate",
        "weight_decay",
        "temperature",
        "lam",
        "warmup_ratio",
        "max_grad_norm",
        "head_learning_rate",
        "dropout",
    ],
)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_case06_non_finite_numbers_are_refused(name, value):
    with pytest.raises(ConfigError, match="--" + name.replace("_", "-")):
        TrainConfig(**{name: value})


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--learning-rate", "inf"),
        ("--weight-decay", "nan"),
        ("--seed", "-1"),
        ("--max-length", "0"),
    ],
)
def test_case06_cli_refuses_non_finite_and_out_of_range(flag, value, tmp_path, capsys):
    assert main(["train", *TINY, flag, value, "--output-dir", str(tmp_path / "o")]) == 2
    one_line_error(capsys, flag)
    assert not (tmp_path / "o").exists()


# --- 7. YAML values converted to the field's type; null refused naming the key ----------------


def test_case07_yaml_strings_become_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        'seed: "3"\nlearning_rate: 2e-5\nepochs: "2"\nlam: "0.25"\n'
        'keep_checkpoints: "true"\nhead_learning_rate: null\n'
    )
    c = TrainConfig.from_yaml(path)
    assert (c.seed, c.learning_rate, c.epochs, c.lam) == (3, 2e-5, 2, 0.25)
    assert c.keep_checkpoints is True
    assert isinstance(c.learning_rate, float) and c.head_learning_rate is None


@pytest.mark.parametrize(
    "text, key",
    [
        ("epochs:\n", "epochs"),
        ("output_dir:\n", "output_dir"),
        ("seed: three\n", "seed"),
        ("lam: [1]\n", "lam"),
    ],
)
def test_case07_yaml_null_or_bad_value_names_the_key(text, key, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("dataset: demo\n" + text)
    assert main(["train", "--config", "c.yaml"]) == 2
    one_line_error(capsys, key.replace("_", "-"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # no half-made folder


# --- 8. an empty --output-dir or the current folder with other files --------------------------


def test_case08_empty_output_dir_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--output-dir", ""]) == 2
    one_line_error(capsys, "--output-dir")
    assert list(tmp_path.iterdir()) == []


def test_case08_current_folder_with_other_files_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    for out in (".", str(tmp_path), "./"):
        assert main(["train", *TINY, "--output-dir", out]) == 2
        one_line_error(capsys, "current folder", "notes.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "notes.txt").unlink()
    RunDir(".").check_location(".")  # an empty current folder is a folder of its own


# --- 9-12. label sanity -----------------------------------------------------------------------


def test_case09_one_class_is_refused(tmp_path, capsys):
    from lcl.data import DataError
    from lcl.data.registry import build

    data = tmp_path / "one.csv"
    data.write_text("text,label\n" + "".join(f"text {i},joy\n" for i in range(20)))
    assert (
        main(["train", *TINY, "--dataset", f"csv:{data}", "--output-dir", str(tmp_path / "o")]) == 2
    )
    one_line_error(capsys, "one.csv", "only one class", "at least two")
    with pytest.raises(DataError, match="at least two"):
        build({"train": (["a", "b"], [0, 0])}, ["x", "y"])


@pytest.mark.parametrize(
    "kind, content, line",
    [
        ("csv", "text,label\nfine,a\nalso fine,b\nbad one,NaN\n", 4),
        ("csv", "text,label\nfine,a\nbad one,N/A\nalso fine,b\n", 3),
        ("csv", "text,label\nfine,a\nbad one,null\nalso fine,b\n", 3),
        ("jsonl", '{"text": "fine", "label": "a"}\n{"text": "bad", "label": NaN}\n', 2),
        ("jsonl", '{"text": "fine", "label": "a"}\n{"text": "bad", "label": "nan"}\n', 2),
    ],
)
def test_case10_missing_labels_are_refused_with_file_and_line(
    kind, content, line, tmp_path, capsys
):
    data = tmp_path / f"d.{kind}"
    data.write_text(content)
    assert (
        main(["train", *TINY, "--dataset", f"{kind}:{data}", "--output-dir", str(tmp_path / "o")])
        == 2
    )
    one_line_error(capsys, f"d.{kind}:{line}:", "missing label")


@pytest.mark.parametrize(
    "kind, content",
    [
        ("csv", "text,label,label\nhello,a,b\nbye,b,a\n"),
        ("csv", "text,text,label\nhello,x,a\nbye,y,b\n"),
        ("jsonl", '{"text": "hi", "label": "a", "label": "b"}\n'),
    ],
)
def test_case11_duplicated_column_names_are_refused(kind, content, tmp_path, capsys):
    data = tmp_path / f"d.{kind}"
    data.write_text(content)
    assert (
        main(["train", *TINY, "--dataset", f"{kind}:{data}", "--output-dir", str(tmp_path / "o")])
        == 2
    )
    one_line_error(capsys, f"d.{kind}:1:", "more than once")


def test_case12_integer_labels_are_names_unless_they_are_indices(tmp_path, caplog):
    from lcl.data import load_dataset

    values = [1, 3, 5, 7, 1000]
    rows = [{"text": f"text {i}", "label": values[i % 5]} for i in range(50)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.INFO, logger="lcl.data"):
        ds = load_dataset(f"jsonl:{tmp_path / 'train.jsonl'}")
    assert ds["train"].features["label"].names == ["1", "3", "5", "7", "1000"]
    assert "taken as class names" in caplog.text
    caplog.clear()
    (tmp_path / "idx.csv").write_text(
        "text,label\n" + "".join(f"text {i},{i % 3}\n" for i in range(30))
    )
    with caplog.at_level(logging.INFO, logger="lcl.data"):
        ds = load_dataset(f"csv:{tmp_path / 'idx.csv'}")
    assert ds["train"].features["label"].names == ["0", "1", "2"]
    assert "taken as class indices" in caplog.text
    text, label = ds["train"][0]["text"], ds["train"][0]["label"]
    assert int(text.split()[1]) % 3 == label  # the value is the index


# --- 13. an unknown model fails fast when the Hub cannot be reached ---------------------------


def test_case13_unknown_model_fails_fast_offline(monkeypatch, tmp_path, capsys):
    from lcl import modeling

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(modeling, "_HUB_REACHABLE", {})
    started = time.monotonic()
    with pytest.raises(modeling.ModelLoadError, match="cannot be reached"):
        modeling.load_classifier("no-such-model-xyz", ["a", "b"])
    with pytest.raises(modeling.ModelLoadError, match="cannot be reached"):
        modeling.load_tokenizer("no-such-model-xyz")
    assert time.monotonic() - started < 5
    assert (
        main(["train", *TINY, "--model", "no-such-model-xyz", "--output-dir", str(tmp_path / "o")])
        == 2
    )
    one_line_error(capsys, "no-such-model-xyz", "127.0.0.1:9")


# --- 14. a killed run says what its checkpoints take and how to remove them -------------------


def test_case14_killed_run_names_its_size_and_lcl_clean(killed_run, tmp_path, capsys):
    run = RunDir(copy_of(killed_run, tmp_path))
    assert main(["train", *TINY, "--seed", "1", "--output-dir", str(run.path)]) == 2
    line = one_line_error(capsys, "checkpoints take", " MB", f"lcl clean {run.path}")
    assert "--overwrite" in line
    with run.claim():  # a live owner: clean refuses
        assert main(["clean", str(run.path)]) == 2
        one_line_error(capsys, "in use by another run")
    assert run.checkpoints()
    assert main(["clean", str(run.path)]) == 0
    assert "MB freed" in capsys.readouterr().out
    assert run.state() == "empty" and not run.lock_path.exists()
    # now any configuration may start here
    start = start_run(tiny(run.path, seed=1))
    assert start.resume_from is None
    start.close(ok=True)


def test_case14_clean_and_overwrite_leave_a_folder_without_a_run_alone(tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "precious.bin").write_bytes(b"mine")
    assert main(["clean", str(folder)]) == 2
    one_line_error(capsys, "not a run folder")
    assert main(["train", *TINY, "--overwrite", "--output-dir", str(folder)]) == 2
    one_line_error(capsys, "no run of lcl", "model")
    assert (folder / "model" / "precious.bin").read_bytes() == b"mine"
    assert sorted(p.name for p in folder.iterdir()) == ["model"]


def test_case14_clean_keeps_a_finished_runs_outputs(tmp_path, capsys):
    run = tmp_path / "run"
    files = fake_finished_run(run)
    (run / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-4" / "model.safetensors").write_bytes(b"x" * 2000)
    assert main(["clean", str(run)]) == 0
    assert "2.0 KB freed" in capsys.readouterr().out
    assert same_files(run, files) and not (run / "checkpoints").exists()
