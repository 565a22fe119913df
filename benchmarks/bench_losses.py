"""Forward+backward time of LabelAwareContrastiveLoss against a loop re-expression of the
published algorithm (W built entry by entry with a double Python loop, the rest in torch).

    python benchmarks/bench_losses.py            # B in {20, 64, 256, 1024}; loop at 1024 estimated
    python benchmarks/bench_losses.py --loop-1024  # also run the loop once at B=1024 (minutes)

Batches hold two views per text (labels repeated), D=384, C=32, float32, on the CPU.
Each configuration is timed in a fresh process and its memory measured in another: the
rise of the peak RSS during one forward+backward (glibc is told to mmap every block over
64 KiB so that freed tensors leave the RSS); approximate. Times are wall-clock on a
shared machine, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lcl.losses import LabelAwareContrastiveLoss  # noqa: E402

D, C, TAU = 384, 32, 0.3


def loop_lcl(features, labels, weight_logits, tau=TAU):
    """The published algorithm: W filled entry by entry in a double Python loop, each entry
    an in-place copy that autograd records (the published code lets gradient reach the
    weights), then the loss in torch."""
    z = F.normalize(features, dim=1)
    w = torch.softmax(weight_logits, dim=1)
    n = len(labels)
    weights = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            if j != i:
                weights[i][j] = w[i][labels[j]]  # W_ij = w[i, y_j], 0 on the diagonal
    sim = z @ z.T / tau
    sim = sim - sim.max(dim=1, keepdim=True).values.detach()
    not_self = 1.0 - torch.eye(n)
    pos = (labels[:, None] == labels[None, :]).float() * not_self
    log_prob = sim - torch.log((torch.exp(sim) * weights).sum(dim=1, keepdim=True))
    n_pos = pos.sum(dim=1)
    per_anchor = (pos * weights * log_prob).sum(dim=1) / n_pos.clamp(min=1)
    return -per_anchor[n_pos > 0].mean()


def inputs(b, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (b // 2,), generator=gen).repeat(2)
    feats = torch.randn(b, D, generator=gen).requires_grad_()
    logits = torch.randn(b, C, generator=gen).requires_grad_()
    return feats, labels, logits


def _status_kib(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
    return -1


def run(fn, b, repeats, min_time=0.0):
    """Fastest seconds of forward+backward (the least disturbed by other work on a shared
    machine), loss value, and peak RSS rise (MiB) of the first run."""
    feats, labels, logits = inputs(b)
    times, value = [], None
    for r in range(repeats):
        feats.grad = logits.grad = None
        if r == 0:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets the peak RSS
            rss0 = _status_kib("VmRSS")
        t0 = time.perf_counter()
        loss = fn(feats, labels, logits)
        loss.backward()
        times.append(time.perf_counter() - t0)
        if r == 0:
            peak_mib = (_status_kib("VmHWM") - rss0) / 1024
        value = loss.item()
        if sum(times) > min_time and r >= 2 and min_time:
            break
    return min(times), value, peak_mib


def child(impl, b, repeats, what):
    """One configuration in a fresh process: timing ("time") or peak RSS ("mem")."""
    if what == "mem":
        # Every block over 64 KiB gets its own mmap, so freed tensors leave the RSS. This
        # slows allocation down, hence a separate process for timing.
        ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    torch.set_num_threads(1)  # shared machine; also keeps the comparison per core
    fn = LabelAwareContrastiveLoss(temperature=TAU) if impl == "vec" else loop_lcl
    fn(*inputs(8)).backward()  # warm-up: lazy initialisation, first-call kernels
    if what == "mem":
        result = {"peak": run(fn, b, 1)[2]}
    else:
        t, value, _ = run(fn, b, repeats, min_time=0.5 if impl == "vec" else 0.0)
        feats, labels, logits = inputs(b)
        grads = torch.autograd.grad(fn(feats, labels, logits), (feats, logits))
        result = {"t": t, "value": value, "grads": grads}
    torch.save(result, sys.stdout.buffer)


def measure(impl, b, repeats):
    out = {}
    for what in ("time", "mem"):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            impl,
            str(b),
            str(repeats),
            what,
        ]
        out.update(
            torch.load(io.BytesIO(subprocess.run(cmd, check=True, capture_output=True).stdout))
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop-1024", action="store_true", help="run the loop once at B=1024")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), int(args.child[2]), args.child[3])
    print(
        f"torch {torch.__version__}, 1 CPU thread, D={D}, C={C}, tau={TAU}, float32; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        "time = fastest wall-clock forward+backward of the repeats (vectorised: >=0.5 s of them); "
        "peak = peak RSS rise of one call in a fresh process"
    )
    head = (
        f"{'B':>5} | {'vectorised':>11} {'peak MiB':>8} | {'loop':>10} {'reps':>4} "
        f"{'peak MiB':>8} | {'speed-up':>9} | {'|value diff|':>12} {'|grad diff|':>11}"
    )
    print(head)
    print("-" * len(head))
    loop_reps = {20: 5, 64: 3, 256: 2, 1024: 1}
    measured = {}
    for b in (20, 64, 256, 1024):
        vec = measure("vec", b, 1000)
        if b < 1024 or args.loop_1024:
            loop = measure("loop", b, loop_reps[b])
            measured[b] = loop["t"]
            gdiff = max((x - y).abs().max().item() for x, y in zip(vec["grads"], loop["grads"]))
            print(
                f"{b:>5} | {vec['t'] * 1e3:>8.3f} ms {vec['peak']:>8.1f} | {loop['t']:>8.3f} s "
                f"{loop_reps[b]:>4} {loop['peak']:>8.1f} | {loop['t'] / vec['t']:>8.0f}x | "
                f"{abs(vec['value'] - loop['value']):>12.2e} {gdiff:>11.2e}"
            )
        else:
            # extrapolate with the exponent observed between B=64 and B=256
            k = math.log(measured[256] / measured[64]) / math.log(4)
            est = measured[256] * 4**k
            print(
                f"{b:>5} | {vec['t'] * 1e3:>8.3f} ms {vec['peak']:>8.1f} | loop: skipped, est. "
                f"{est:.0f} s (B^{k:.2f} fit to B=64..256; --loop-1024 runs it), ~{est / vec['t']:.0f}x"
            )


if __name__ == "__main__":
    main()
