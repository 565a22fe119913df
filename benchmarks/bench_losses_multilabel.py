"""Forward+backward time of the multi-label losses next to the single-label ones, measured
side by side in one process (issue 16's target: multi-label LCL within 2x of LCL).

    OMP_NUM_THREADS=1 python benchmarks/bench_losses_multilabel.py [--batch 256] [--repeats 40]

Single-label LCL/SupCon get class ids in [0, C); the multi-label losses get multi-hot rows
with 1 to 3 labels (28 labels, GoEmotions' 27 emotions + neutral). Both batches hold two
views of each text (labels repeated), D=384, float32, one CPU thread. The implementations
are interleaved within every repeat (so load on a shared machine hits them alike); each
time is the median (and the fastest) over repeats, each ratio the median of the per-repeat
ratios (and the ratio of the fastest times).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lcl.losses import (  # noqa: E402
    LabelAwareContrastiveLoss,
    MultiLabelLabelAwareContrastiveLoss,
    MultiLabelSupConLoss,
    SupConLoss,
)

D, TAU = 384, 0.3


def inputs(b, c, multi, seed=0):
    gen = torch.Generator().manual_seed(seed)
    texts = b // 2
    if multi:
        labels = torch.zeros(texts, c, dtype=torch.long)
        counts = torch.randint(1, 4, (texts,), generator=gen)
        for r in range(texts):
            labels[r, torch.randperm(c, generator=gen)[: int(counts[r])]] = 1
        labels = labels.repeat(2, 1)
    else:
        labels = torch.randint(0, c, (texts,), generator=gen).repeat(2)
    feats = torch.randn(b, D, generator=gen).requires_grad_()
    logits = torch.randn(b, c, generator=gen).requires_grad_()
    return feats, labels, logits


def timed(fn, feats, labels, logits):
    feats.grad = None
    if logits is not None:
        logits.grad = None
    t0 = time.perf_counter()
    loss = fn(feats, labels, logits) if logits is not None else fn(feats, labels)
    loss.backward()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--labels", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    b, c = args.batch, args.labels
    single = inputs(b, c, multi=False)
    multi = inputs(b, c, multi=True)
    cases = {  # name -> (loss, inputs, uses weight logits, baseline name)
        "LCL (single-label)": (LabelAwareContrastiveLoss(TAU), single, True, None),
        "ML-LCL mulsupcon": (
            MultiLabelLabelAwareContrastiveLoss(TAU),
            multi,
            True,
            "LCL (single-label)",
        ),
        "ML-LCL jaccard": (
            MultiLabelLabelAwareContrastiveLoss(TAU, "jaccard"),
            multi,
            True,
            "LCL (single-label)",
        ),
        "SupCon (single-label)": (SupConLoss(TAU), single, False, None),
        "ML-SupCon mulsupcon": (MultiLabelSupConLoss(TAU), multi, False, "SupCon (single-label)"),
        "ML-SupCon jaccard": (
            MultiLabelSupConLoss(TAU, "jaccard"),
            multi,
            False,
            "SupCon (single-label)",
        ),
    }
    times = {name: [] for name in cases}
    for r in range(args.repeats + 3):  # the first 3 rounds warm up
        for name, (fn, (f, y, w), weighted, _) in cases.items():
            t = timed(fn, f, y, w if weighted else None)
            if r >= 3:
                times[name].append(t)
    print(
        f"torch {torch.__version__}, 1 CPU thread, B={b}, C={c}, D={D}, tau={TAU}, float32, "
        f"two views; {args.repeats} interleaved repeats; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    head = (
        f"{'loss':<24} {'median fwd+bwd':>15} {'fastest':>10} {'vs single-label':>16} "
        f"{'(fastest)':>10}"
    )
    print(head)
    print("-" * len(head))
    for name, (_, _, _, base) in cases.items():
        med, best = statistics.median(times[name]), min(times[name])
        ratio = ratio_best = ""
        if base is not None:
            ratio = statistics.median(t / u for t, u in zip(times[name], times[base]))
            ratio, ratio_best = f"{ratio:.2f}x", f"{best / min(times[base]):.2f}x"
        print(
            f"{name:<24} {med * 1e3:>12.3f} ms {best * 1e3:>7.3f} ms {ratio:>16} {ratio_best:>10}"
        )


if __name__ == "__main__":
    main()
