"""Training and evaluation steps on a CPU in float32 and under bfloat16 autocast.

    OMP_NUM_THREADS=1 python benchmarks/bench_precision.py [--data-dir ../shared/data] [--steps 12]

What `--precision bf16` does on a CPU: the Trainer runs forward (and so backward) under
``torch.autocast("cpu", dtype=torch.bfloat16)``; weights, gradients, the optimiser and the
contrastive losses stay float32. A CPU with native bfloat16 instructions (AVX512-BF16, AMX)
multiplies bf16 matrices faster than fp32 ones; one without them emulates bf16 and is usually
slower. For each dataset found (ED-32, GoEmotions, SST-5; the demo texts otherwise) the same
random batches of the default recipe (length groups on, as `auto` has them on a CPU) go through
a training step (forward, backward, AdamW) of two copies of the default model, one per precision,
then evaluation batches of 64 validation texts without gradients. The two settings take turns
batch by batch, so a slow spell of this shared machine hits both alike. Printed: the CPU's bf16
support, median seconds per step and the ratio fp32/bf16, and, measured before any training
step while the two copies still hold the same weights, the largest difference of their logits
on the first validation batch (relative to the largest logit) and how often their predicted
classes agree.
"""

from __future__ import annotations

from pathlib import Path

import torch
from bench_length_groups import medians_in_turns, run_benchmark, sample_batches

from lcl.modeling import LCLModel
from lcl.training_args import TrainConfig


def bench(name: str, data_dir: str | None, steps: int, tokenizer) -> None:
    labels, batches, evals = sample_batches(name, data_dir, steps, tokenizer)
    models, optimisers = {}, {}
    for setting in ("fp32", "bf16"):
        torch.manual_seed(0)
        models[setting] = LCLModel.from_config(TrainConfig(dataset=name), labels)
        optimisers[setting] = torch.optim.AdamW(models[setting].parameters(), lr=1e-5)

    def forward(setting, batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting == "bf16"):
            return models[setting](**batch)

    def train_step(setting, batch):
        models[setting].train()
        forward(setting, batch)["loss"].backward()
        optimisers[setting].step()
        optimisers[setting].zero_grad()

    def eval_step(setting, batch):
        models[setting].eval()
        with torch.no_grad():
            return forward(setting, {k: v for k, v in batch.items() if k != "labels"})

    logits = {s: eval_step(s, evals[0])["logits"].float() for s in ("fp32", "bf16")}
    gap = float((logits["fp32"] - logits["bf16"]).abs().max() / logits["fp32"].abs().max())
    agree = float((logits["fp32"].argmax(-1) == logits["bf16"].argmax(-1)).float().mean())
    train_step("fp32", batches[0])  # first calls pay for allocation
    train_step("bf16", batches[0])
    for kind, step, data in (("train", train_step, batches), ("eval", eval_step, evals)):
        medians = medians_in_turns(step, ("fp32", "bf16"), data)
        fp32, bf16 = medians["fp32"], medians["bf16"]
        rows = data[0]["input_ids"].shape[0]
        print(
            f"{name:22s} {kind:5s} {rows:3d} rows x{len(data):3d}  fp32 {fp32:6.3f} s  "
            f"bf16 {bf16:6.3f} s  fp32/bf16 {fp32 / bf16:4.2f}"
        )
    print(
        f"{name:22s} same weights, first eval batch: largest |logit fp32 - bf16| "
        f"{gap:.1%} of the largest |logit|, "
        f"same argmax {agree:.1%}"
    )


def cpu_bf16_flags() -> str:
    """The CPU's native bfloat16 instructions named in /proc/cpuinfo (Linux), or 'none found'."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    found = sorted({f for f in flags if f in ("avx512_bf16", "amx_bf16", "avx_ne_convert")})
    return ", ".join(found) or "none found"


if __name__ == "__main__":
    run_benchmark(bench, __doc__.splitlines()[0], f", CPU bf16 instructions: {cpu_bf16_flags()}")
