"""scripts/gpu_mpnet_lease.sh: the prepared GPU call of the base-scale study.

Its training needs a lent GPU and the mpnet bundle, so here it is checked where a mistake would
waste a lease: the refusals (no time limit, no $OUT) and that every launch's selection names
cells of studies/mpnet.yaml (a misspelt dataset or variant would otherwise be found there).
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_mpnet_lease.sh"


def run_script(*args: str, out: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    if out is not None:
        env["OUT"] = out
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env)


def test_refuses_a_missing_time_limit_and_a_missing_out(tmp_path):
    for args in ((), ("soon",), ("0",), ("60", "extra")):
        proc = run_script(*args, out=str(tmp_path))
        assert proc.returncode == 2 and "usage: gpu_mpnet_lease.sh" in proc.stderr
    proc = run_script("60", out=None)
    assert proc.returncode == 2 and "$OUT" in proc.stderr
    proc = run_script("60", out=str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_every_launch_selects_cells_of_the_mpnet_study(tmp_path):
    launches = [
        shlex.split(line)[1:]  # NAME WORKERS SELECT...
        for line in SCRIPT.read_text(encoding="utf-8").splitlines()
        if line.startswith("launch ")
    ]
    assert len(launches) == 4
    for _, workers, *select in launches:
        proc = subprocess.run(
            [sys.executable, "-m", "lcl", "study", "studies/mpnet.yaml", "--dry-run"]
            + ["--output-dir", str(tmp_path / "runs"), *select],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr
        todo = [
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if line.strip().startswith("todo")
        ]
        # one worker per selected cell: a worker with a second cell would not end inside a call
        assert len(todo) == int(workers), (select, proc.stdout, proc.stderr)
    assert sum(int(workers) for _, workers, *_ in launches) == 8
