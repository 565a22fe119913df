"""Training throughput of `lcl train` in 1 and 2 CPU processes on the same global batch.

    python benchmarks/bench_scaling.py                  # global batch 20 texts (40 rows with views)
    python benchmarks/bench_scaling.py --steps 12 --global-batch 32 --loss scl

Each configuration is a real `lcl train` run launched with torchrun (DDP over gloo when there
are 2 processes) on the bundled demo dataset, views by dropout, one epoch of
``warmup + steps`` optimizer steps. Optimizer steps are timed directly by a callback on rank 0
(from the end of one step to the end of the next: data, forward, backward, gradient
all-reduce, clipping, AdamW), after ``warmup`` steps; the evaluation and checkpoint at the
epoch's end are not timed. Samples per second counts texts of the global batch (each also
brings its view).

Configurations: 1 process x 1 thread, 2 processes x 1 thread each (the comparison), and
1 process x 2 threads (what one process does with the same cores).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMES_ENV = "LCL_BENCH_STEP_TIMES"


def _worker(threads: int, argv: list[str]) -> int:
    """Inside torchrun: pin the thread count, time optimizer steps, run `lcl train`."""
    import torch
    from transformers import TrainerCallback

    import lcl.trainer
    from lcl.cli import main

    torch.set_num_threads(threads)
    ends: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    init = lcl.trainer.LCLTrainer.__init__

    def init_with_timer(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(StepTimer())

    lcl.trainer.LCLTrainer.__init__ = init_with_timer
    status = main(argv)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(os.environ[TIMES_ENV]).write_text(
            json.dumps({"ends": ends, "threads": torch.get_num_threads()})
        )
    return status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(nproc: int, threads: int, args, work: Path) -> dict:
    out = work / f"run-{nproc}x{threads}"
    times = work / f"times-{nproc}x{threads}.json"
    per_process = args.global_batch // nproc
    train_args = [
        "train",
        "--dataset",
        "demo",
        "--views",
        "dropout",
        "--loss",
        args.loss,
        "--model",
        args.model,
        "--epochs",
        "1",
        "--batch-size",
        str(per_process),
        "--max-train-samples",
        str(args.global_batch * (args.warmup + args.steps)),
        "--max-eval-samples",
        "8",
        "--logging-steps",
        "100000",
        "--output-dir",
        str(out),
        "--overwrite",
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_port",
        str(_free_port()),
        os.path.abspath(__file__),
        "--worker-threads",
        str(threads),
        "--",
        *train_args,
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        TIMES_ENV: str(times),
    }
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    record = json.loads(times.read_text())
    steps = [b - a for a, b in zip(record["ends"], record["ends"][1:])][args.warmup - 1 :]
    if len(steps) < args.steps:
        sys.exit(f"expected {args.steps} timed steps, got {len(steps)}")
    median = statistics.median(steps)
    return {
        "nproc": nproc,
        "threads": record["threads"],
        "per_process": per_process,
        "step_s": median,
        "spread": (min(steps), max(steps)),
        "samples_per_s": args.global_batch / median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--global-batch", type=int, default=20, help="texts per optimizer step")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    parser.add_argument("--loss", default="lcl", choices=["ce", "scl", "lcl"])
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args()
    if args.global_batch % 2 or args.warmup < 1:
        parser.error("--global-batch must be even and --warmup at least 1")

    with tempfile.TemporaryDirectory(prefix="lcl-bench-scaling-") as tmp:
        work = Path(tmp)
        load_before = os.getloadavg()[0]
        results = [_run(1, 1, args, work), _run(2, 1, args, work), _run(1, 2, args, work)]
        load_after = os.getloadavg()[0]

    base = results[0]["samples_per_s"]
    print(
        f"lcl train, loss {args.loss}, model {args.model}, global batch {args.global_batch} "
        f"texts ({2 * args.global_batch} rows with views), median of {args.steps} steps "
        f"after {args.warmup} warm-up; {os.cpu_count()} CPUs, 1-min load average "
        f"{load_before:.1f} before / {load_after:.1f} after"
    )
    print(
        f"{'processes x threads':>20} {'texts/process':>14} {'s/step':>8} "
        f"{'min-max s':>12} {'texts/s':>8} {'vs 1x1':>7}"
    )
    for r in results:
        lo, hi = r["spread"]
        print(
            f"{r['nproc']:>16} x {r['threads']:<1} {r['per_process']:>14} {r['step_s']:>8.3f} "
            f"{lo:>5.2f}-{hi:<6.2f} {r['samples_per_s']:>8.2f} {r['samples_per_s'] / base:>6.2f}x"
        )
    two = results[1]["samples_per_s"]
    print(
        f"2 processes / 1 process (1 thread each): {two / base:.2f}x; "
        f"2 processes x 1 thread / 1 process x 2 threads: {two / results[2]['samples_per_s']:.2f}x"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker-threads":
        rest = sys.argv[3:]
        sys.exit(_worker(int(sys.argv[2]), rest[1:] if rest[:1] == ["--"] else rest))
    main()
