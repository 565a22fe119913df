"""What each objective costs per training step, and batched vs one-at-a-time evaluation.

    python benchmarks/bench_cost.py [--data-dir ../shared/data] [--steps 8]

Training: the same 10 Empathetic Dialogues texts + their 10 synonym views (or demo texts
when no data directory is found) go through forward, backward and an AdamW step for
`ce`, `scl`, `lcl` (two encoders) and `lcl` with `weighting: self`. The objectives take turns
step by step, so a slow spell of this shared machine hits all of them alike; the table
gives the median seconds per step and the ratio to `ce`.

Evaluation: texts per second of the saved-model path (`lcl.inference.run_classifier`,
length-sorted batches of 64) against one text per forward pass, as the published code does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from lcl.data import add_views, load_dataset
from lcl.inference import run_classifier
from lcl.modeling import LCLModel, load_tokenizer
from lcl.trainer import PairedViewCollator
from lcl.training_args import TrainConfig

VARIANTS = {
    "ce": {"loss": "ce"},
    "scl": {"loss": "scl"},
    "lcl": {"loss": "lcl"},
    "lcl-self": {"loss": "lcl", "weighting": "self"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("LCL_DATA_DIR", "../shared/data"))
    parser.add_argument("--steps", type=int, default=8, help="timed steps per objective")
    parser.add_argument("--eval-texts", type=int, default=256)
    args = parser.parse_args()

    torch.manual_seed(0)
    found = (Path(args.data_dir) / "empathetic_dialogues").is_dir()
    name = "empathetic_dialogues" if found else "demo"
    ds = load_dataset(name, data_dir=args.data_dir if found else None)
    train = add_views(ds["train"].shuffle(seed=0).select(range(10)), method="synonym", seed=0)
    labels = ds["train"].features["label"].names
    tokenizer = load_tokenizer("minilm")
    batch = PairedViewCollator(tokenizer)(list(train))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, dataset {name}, "
        f"batch {batch['input_ids'].shape[0]} rows x {batch['input_ids'].shape[1]} tokens, "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    runs = {}
    for variant, options in VARIANTS.items():
        model = LCLModel.from_config(TrainConfig(**options), labels).train()
        optim = torch.optim.AdamW(model.parameters(), lr=2e-5)
        runs[variant] = (model, optim)

    def step(model, optim):
        optim.zero_grad()
        model(**batch)["loss"].backward()
        optim.step()

    for model, optim in runs.values():  # warm-up
        step(model, optim)
    times = {v: [] for v in runs}
    for _ in range(args.steps):
        for variant, (model, optim) in runs.items():
            start = time.perf_counter()
            step(model, optim)
            times[variant].append(time.perf_counter() - start)
    base = statistics.median(times["ce"])
    print(
        f"\n{'objective':<10} {'s/step':>8} {'x ce':>6}   (median of {args.steps} interleaved steps)"
    )
    for variant, ts in times.items():
        med = statistics.median(ts)
        print(f"{variant:<10} {med:>8.3f} {med / base:>6.2f}")

    texts = list(ds["test"].shuffle(seed=0).select(range(args.eval_texts))["text"])
    classifier = runs["ce"][0].classifier.eval()
    run_classifier(classifier, tokenizer, texts[:8])  # warm-up
    start = time.perf_counter()
    run_classifier(classifier, tokenizer, texts, batch_size=64)
    batched = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    with torch.no_grad():
        for text in texts:
            classifier(**tokenizer(text, return_tensors="pt"))
    single = len(texts) / (time.perf_counter() - start)
    print(
        f"\nevaluation of {len(texts)} test texts: batched {batched:.0f} texts/s, "
        f"one at a time {single:.0f} texts/s, ratio {batched / single:.1f}x"
    )


if __name__ == "__main__":
    main()
