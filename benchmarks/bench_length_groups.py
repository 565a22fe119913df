"""Training and evaluation steps with and without length groups (`--length-groups on|off`).

    python benchmarks/bench_length_groups.py [--data-dir ../shared/data] [--steps 12]

For each dataset found (ED-32, GoEmotions, SST-5; the demo texts otherwise): the same random
batches of the default recipe (10 training texts + their synonym views, 20 rows) go through a
training step (forward, backward, AdamW) of two copies of the default model, one encoding the
whole padded batch, one encoding it in length groups (`lcl.modeling.length_groups`); then
evaluation batches of 64 validation texts, in the order the Trainer reads them, without
gradients. The two settings take turns batch by batch, so a slow spell of this shared machine
hits both alike. Printed: median seconds per step, the ratio off/on, and the share of the
encoder's token positions that are real tokens in each setting. Run it on one thread
(`OMP_NUM_THREADS=1`) to see what a background study lane gains.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lcl.data import add_views, load_dataset
from lcl.modeling import LCLModel, length_groups, load_tokenizer
from lcl.trainer import PairedViewCollator
from lcl.training_args import TrainConfig

# dataset name -> its folder in the data directory
DATASETS = {
    "empathetic_dialogues": "empathetic_dialogues",
    "goemotions": "goemotions",
    "sst5": "sst",
}


def real_share(mask: torch.Tensor, grouped: bool) -> float:
    """Real tokens / token positions the encoder computes for this batch."""
    groups = length_groups(mask) if grouped else None
    if groups is None:
        return float(mask.sum()) / mask.numel()
    return float(mask.sum()) / sum(len(rows) * length for rows, length in groups)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def medians_in_turns(step, settings: tuple[str, ...], data: list) -> dict[str, float]:
    """Median seconds of ``step(setting, batch)`` per setting, the settings taking turns on
    each batch so that the machine's drift (other processes, clocks) hits them alike."""
    times: dict[str, list[float]] = {s: [] for s in settings}
    for batch in data:
        for setting in settings:
            times[setting].append(timed(step, setting, batch))
    return {s: statistics.median(t) for s, t in times.items()}


def sample_batches(name: str, data_dir: str | None, steps: int, tokenizer):
    """``steps`` random training batches of the default recipe (10 texts + their synonym
    views) and evaluation batches of 64 validation texts, collated as the Trainer does;
    returns ``(label names, training batches, evaluation batches)``."""
    ds = load_dataset(name, data_dir=data_dir)
    labels = ds["train"].features["label"].names
    rng = np.random.default_rng(0)
    pick = rng.choice(len(ds["train"]), size=10 * steps, replace=False).tolist()
    train = add_views(ds["train"].select(pick), method="synonym", seed=0)
    collate = PairedViewCollator(tokenizer)
    batches = [collate(list(train.select(range(i, i + 10)))) for i in range(0, 10 * steps, 10)]
    val = ds["validation"].select(range(min(64 * steps, len(ds["validation"]))))
    evals = [
        collate(list(val.select(range(i, min(i + 64, len(val)))))) for i in range(0, len(val), 64)
    ]
    return labels, batches, evals


def bench(name: str, data_dir: str | None, steps: int, tokenizer) -> None:
    labels, batches, evals = sample_batches(name, data_dir, steps, tokenizer)
    models, optimisers = {}, {}
    for setting in ("off", "on"):
        torch.manual_seed(0)
        models[setting] = LCLModel.from_config(
            TrainConfig(length_groups=setting, dataset=name), labels
        )
        optimisers[setting] = torch.optim.AdamW(models[setting].parameters(), lr=1e-5)

    def train_step(setting, batch):
        model, opt = models[setting], optimisers[setting]
        model.train()
        model(**batch)["loss"].backward()
        opt.step()
        opt.zero_grad()

    def eval_step(setting, batch):
        model = models[setting].eval()
        with torch.no_grad():
            model(**{k: v for k, v in batch.items() if k != "labels"})

    train_step("off", batches[0])  # first calls pay for allocation
    train_step("on", batches[0])
    for kind, step, data in (("train", train_step, batches), ("eval", eval_step, evals)):
        medians = medians_in_turns(step, ("off", "on"), data)
        off, on = medians["off"], medians["on"]
        share = {
            s: statistics.mean(real_share(b["attention_mask"], s == "on") for b in data)
            for s in ("off", "on")
        }
        rows = data[0]["input_ids"].shape[0]
        print(
            f"{name:22s} {kind:5s} {rows:3d} rows x{len(data):3d}  off {off:6.3f} s  "
            f"on {on:6.3f} s  off/on {off / on:4.2f}  real tokens off {share['off']:.2f} "
            f"on {share['on']:.2f}"
        )


def run_benchmark(bench_fn, description: str, header: str = "") -> None:
    """The command line shared by the training-step benchmarks: ``--data-dir`` and ``--steps``,
    a header line, then ``bench_fn(name, data_dir, steps, tokenizer)`` for each dataset found
    (the demo texts when none is)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", default=os.environ.get("LCL_DATA_DIR", "../shared/data"))
    parser.add_argument("--steps", type=int, default=12, help="training batches per dataset")
    args = parser.parse_args()
    found = [d for d, folder in DATASETS.items() if (Path(args.data_dir) / folder).is_dir()]
    tokenizer = load_tokenizer("minilm")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}{header}"
    )
    for name in found or ["demo"]:
        bench_fn(name, args.data_dir if found else None, args.steps, tokenizer)


if __name__ == "__main__":
    run_benchmark(bench, __doc__.splitlines()[0])
