"""Time to a classifier above the frozen-encoder bar (issue: train to convergence).

    python benchmarks/bench_time_to_bar.py [--dataset empathetic_dialogues] [--epochs 0.5]
        [--evals-per-epoch 2] [--loss lcl --weighting self] [--threads 2]
        [--probe-run RUN_DIR] [--data-dir ../shared/data] [--output-dir DIR]

Two stopwatch runs of the command line, each from a cold cache (a fresh ``LCL_CACHE_DIR``, so
the synonym views and the probe's features are computed inside the time; installing and
setting up are not):

1. the bar: ``lcl probe`` (frozen encoder + logistic regression), unless ``--probe-run`` names a
   finished probe run of the same dataset and seed, whose test accuracy is then the bar;
2. ``lcl train`` with the default recipe (probe-initialised heads) for ``--epochs`` (a fraction
   of an epoch is allowed), the best of ``--evals-per-epoch`` evaluations kept.

It prints each run's wall time, test accuracy and weighted F1, the bar + 2 points and whether the
trained classifier cleared it within 15 minutes. Run it on an otherwise idle machine: another
busy process slows a multi-threaded torch run several times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MINUTES = 15.0
MARGIN = 0.02  # "probe + 2 points"


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lcl", *argv], env=env, check=True)
    return time.perf_counter() - started


def test_scores(run_dir: Path) -> tuple[float, float]:
    test = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["test"]
    return test["accuracy"], test["weighted_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="empathetic_dialogues")
    parser.add_argument("--data-dir", default=os.environ.get("LCL_DATA_DIR", "../shared/data"))
    parser.add_argument("--loss", default="lcl")
    parser.add_argument("--weighting", default="self")
    parser.add_argument("--epochs", default="0.5")
    parser.add_argument("--evals-per-epoch", default="2")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--probe-run", type=Path, help="a finished probe run to take the bar from")
    parser.add_argument("--output-dir", type=Path, help="where the runs go (default: a temp dir)")
    args = parser.parse_args()

    out = args.output_dir or Path(tempfile.mkdtemp(prefix="lcl-time-to-bar-"))
    out.mkdir(parents=True, exist_ok=True)
    data = ["--dataset", args.dataset, "--data-dir", args.data_dir, "--seed", args.seed]
    base_env = {**os.environ, "OMP_NUM_THREADS": args.threads, "MKL_NUM_THREADS": args.threads}

    rows = []
    if args.probe_run:
        probe_dir, probe_seconds = args.probe_run, None
    else:
        probe_dir = out / "probe"
        env = {**base_env, "LCL_CACHE_DIR": tempfile.mkdtemp(prefix="lcl-cache-")}
        probe_seconds = timed(["probe", *data, "--output-dir", str(probe_dir)], env)
    bar, bar_f1 = test_scores(probe_dir)
    rows.append(("probe (the bar)", probe_seconds, bar, bar_f1))

    train_dir = out / "train"
    env = {**base_env, "LCL_CACHE_DIR": tempfile.mkdtemp(prefix="lcl-cache-")}
    argv = [
        "train",
        *data,
        "--loss",
        args.loss,
        "--weighting",
        args.weighting,
        "--epochs",
        args.epochs,
        "--evals-per-epoch",
        args.evals_per_epoch,
        "--output-dir",
        str(train_dir),
    ]
    train_seconds = timed(argv, env)
    acc, f1 = test_scores(train_dir)
    rows.append((f"lcl train ({args.loss}, {args.epochs} epoch)", train_seconds, acc, f1))

    print(f"\n{args.dataset}, seed {args.seed}, {args.threads} threads, cold caches")
    print("| run | wall (min) | test acc | test wF1 |\n|---|---|---|---|")
    for name, seconds, a, w in rows:
        wall = "–" if seconds is None else f"{seconds / 60:.1f}"
        print(f"| {name} | {wall} | {100 * a:.1f} | {100 * w:.1f} |")
    cleared = acc >= bar + MARGIN
    print(
        f"bar + 2 = {100 * (bar + MARGIN):.1f}: the trained classifier "
        f"{'clears' if cleared else 'misses'} it by {100 * (acc - bar - MARGIN):+.1f} points in "
        f"{train_seconds / 60:.1f} min (target: {TARGET_MINUTES:.0f} min; "
        f"{'met' if cleared and train_seconds <= 60 * TARGET_MINUTES else 'not met'})"
    )


if __name__ == "__main__":
    main()
