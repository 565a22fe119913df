"""scripts/lane.sh: study selections run one after another, on one thread, with timed checkpoints."""

import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def run_lane(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "lane.sh"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_a_lane_runs_its_groups_in_order_with_timed_checkpoints(tmp_path):
    out = tmp_path / "runs"
    study = tmp_path / "tiny.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "output_dir": str(out),
                "base": {"epochs": 1, "max_train_samples": 20, "max_eval_samples": 20},
                "datasets": ["demo"],
                "seeds": [0],
                "variants": {"probe": {"loss": "probe"}, "ce": {"loss": "ce"}},
            }
        )
    )
    proc = run_lane(
        str(study),
        "--variant",
        "ce",
        "::",
        "--variant",
        "probe",
        env={"LANE_CHECKPOINT_MINUTES": "7"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    starts = [line for line in proc.stdout.splitlines() if line.startswith("=== ")]
    assert [s.split(" lcl study ")[1] for s in starts] == [
        f"{study} --variant ce",
        f"{study} --variant probe",
    ]
    for variant in ("ce", "probe"):
        assert (out / "demo" / variant / "seed0" / "metrics.json").is_file()
    config = yaml.safe_load((out / "demo" / "ce" / "seed0" / "config.yaml").read_text())
    assert config["checkpoint_minutes"] == 7
    # run again: every cell is finished, nothing trains, the lane still ends well
    again = run_lane(str(study), "--variant", "ce")
    assert again.returncode == 0 and "0 to run" in again.stderr


def test_a_lane_without_a_study_file_is_refused(tmp_path):
    proc = run_lane(str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and proc.stderr.startswith("usage: lane.sh")
