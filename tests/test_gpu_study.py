"""scripts/gpu_study.sh end to end, on this CPU, in a copy of the repository as a lent machine has.

A lent machine's next call copies the working tree afresh but keeps git-ignored outputs: a cell
finished by the first call keeps its ``model/`` and loses ``metrics.json`` (and the other small
files, which git tracks); a cell stopped at the time limit keeps its checkpoints and loses the
``config.yaml`` without which it is not resumed. The launcher keeps those files in its logs
(``state.tgz``) and restores the missing ones, so the next launch counts the first cell as
finished and resumes the second. One tiny CE cell (40 ISEAR texts, one epoch) is trained for
real; the stopped cell is a copy of its config.yaml beside a checkpoint folder.
"""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SMALL_FILES = ("metrics.json", "config.yaml", "history.json", "confusability.json")


def machine_copy(root: Path, data_dir: Path) -> None:
    """The launcher, the package and a minimal bundle (the embedded encoder, ISEAR) in ``root``."""
    from lcl.modeling import resolve_model_name

    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "gpu_study.sh", root / "scripts")
    (root / "lcl").symlink_to(REPO / "lcl")
    if sys.prefix != sys.base_prefix:  # the interpreter running the tests, with its packages
        (root / ".venv").symlink_to(Path(sys.prefix))
    else:
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / ".venv" / "bin" / "python").symlink_to(sys.executable)
    gpu = root / ".gpu"
    gpu.mkdir()
    (gpu / "encoder-minilm").symlink_to(resolve_model_name("minilm"))
    with tarfile.open(gpu / "payload.tar.xz", "w:xz") as tar:
        tar.add(data_dir / "isear" / "isear.csv", "data/isear/isear.csv")
        cache = root / "cache"
        cache.mkdir()
        tar.add(cache, "cache")


def launch(root: Path, study: Path, *options: str, select=()) -> subprocess.CompletedProcess:
    script = str(root / "scripts" / "gpu_study.sh")
    proc = subprocess.run(
        [
            "bash",
            script,
            *options,
            "runs/tiny",
            "1",
            str(study),
            *(["--", *select] if select else []),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_a_cell_finished_by_one_call_counts_as_finished_in_the_next(data_dir, tmp_path):
    root = tmp_path / "machine"
    machine_copy(root, data_dir)
    study = tmp_path / "tiny.yaml"
    base = {"loss": "ce", "epochs": 1, "max_train_samples": 40, "max_eval_samples": 40}
    spec = {"name": "tiny", "base": base, "datasets": ["isear"], "seeds": [0]}
    study.write_text(yaml.safe_dump({**spec, "variants": {"ce": {}}}))

    first = launch(root, study, "--pack", str(tmp_path / "a.tgz"))
    cell = root / "runs" / "tiny" / "isear" / "ce" / "seed0"
    assert (cell / "model").is_dir(), first.stdout[-2000:]
    saved = {name: (cell / name).read_bytes() for name in SMALL_FILES}
    with tarfile.open(tmp_path / "a.tgz") as tar:
        names = tar.getnames()
    assert {f"runs/tiny/isear/ce/seed0/{name}" for name in SMALL_FILES} <= set(names)
    assert not any(name.endswith("state.tgz") for name in names)  # kept there, not sent back
    assert len(list((root / "runs" / "tiny" / "gpu-logs").glob("*/state.tgz"))) == 1

    # a cell of another variant, stopped with a checkpoint (the launches below do not run it)
    stopped = root / "runs" / "tiny" / "isear" / "stopped" / "seed0"
    (stopped / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (stopped / "config.yaml").write_bytes(saved["config.yaml"])
    study.write_text(yaml.safe_dump({**spec, "variants": {"ce": {}, "stopped": {"lam": 0.3}}}))
    launch(root, study, select=["--variant", "ce"])

    # what a fresh copy of the working tree does to both
    for name in SMALL_FILES:
        (cell / name).unlink()
    (stopped / "config.yaml").unlink()
    third = launch(root, study, select=["--variant", "ce"])
    assert "1 finished, 0 to run" in third.stdout
    assert {name: (cell / name).read_bytes() for name in SMALL_FILES} == saved
    assert (stopped / "config.yaml").read_bytes() == saved["config.yaml"]
