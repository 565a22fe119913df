"""`torchrun -m lcl train` with 2 CPU processes (DDP over gloo) must end where one process ends
on the same global batch: same weights, same logged losses, same evaluation.

Tolerance: AdamW moves a weight by about ``lr`` per step whatever its gradient's scale, so
float32 noise from another reduction order (the gradient all-reduce, the gathered contrastive
candidates) turns into a fraction of ``lr`` where a gradient is close to zero: up to ~3% of a
step here, in a few hundred of the 22.7M weights. The attention key biases are the extreme
case: their exact gradient is zero (a shared shift of every key's logit leaves the softmax
unchanged), so their Adam updates are amplified rounding noise and are left out of the
per-weight check. Missing gradient averaging, by contrast, moved a third of the weights by
more than that tolerance, the worst by 4 steps. So: no other weight may differ by more than a
fifth of a step, the difference's norm over all weights must be tiny beside the update's, and
the update must reach at least a whole step, well above the tolerance.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import free_port
from safetensors.torch import load_file

from lcl.modeling import load_classifier

pytestmark = pytest.mark.slow

LABELS = {
    "anger": ["furious", "annoyed", "irritated", "livid"],
    "fear": ["scared", "terrified", "nervous", "worried"],
    "joy": ["delighted", "thrilled", "cheerful", "glad"],
}
THINGS = ["exam", "trip", "storm", "party", "interview", "concert", "flight", "game"]
TRAIN_TEXTS, PER_PROCESS = 24, 4  # 3 steps of 2 x 4 texts (16 rows with their views)
LR = 2e-5
ATOL = 0.2 * LR


def _write_data(root: Path) -> Path:
    names = list(LABELS)
    sizes = {"train": TRAIN_TEXTS, "validation": 9, "test": 6}
    k = 0
    for split, n in sizes.items():
        with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for _ in range(n):
                label = names[k % 3]
                word = LABELS[label][(k // 3) % 4]
                writer.writerow(
                    [f"i was {word} about the {THINGS[k % len(THINGS)]} on day {k}", label]
                )
                k += 1
    return root


def _train(data: Path, out: Path, loss: str, nproc: int, batch_size: int) -> None:
    cmd = [sys.executable]
    if nproc > 1:
        cmd += [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(nproc),
            "--master_port",
            str(free_port()),
        ]
    cmd += [
        "-m",
        "lcl",
        "train",
        "--dataset",
        str(data),
        "--loss",
        loss,
        "--views",
        "dropout",
        "--dropout",
        "0",
        "--epochs",
        "1",
        "--batch-size",
        str(batch_size),
        "--learning-rate",
        str(LR),
        "--logging-steps",
        "1",
        # a timed checkpoint at every step between evaluations: under torchrun every rank must
        # take part in each save (rank 0's clock decides), or the run would hang
        "--checkpoint-minutes",
        "1e-9",
        "--max-eval-samples",
        "7",
        # float32: the equality is to float32 rounding (under bf16 autocast, which `auto` picks
        # on a CPU with native bf16, one batch of 2k rows and two of k round apart more)
        "--precision",
        "fp32",
        "--output-dir",
        str(out),
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(
        OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", LCL_CACHE_DIR=str(out.parent / "cache")
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-4000:]}"


def _history(run: Path, key: str) -> list[dict]:
    return [h for h in json.loads((run / "history.json").read_text()) if key in h]


@pytest.mark.parametrize("loss", ["lcl", "scl"])
def test_two_processes_match_one_process_on_the_global_batch(tmp_path, loss):
    data = _write_data(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    _train(data, one, loss, nproc=1, batch_size=2 * PER_PROCESS)
    _train(data, two, loss, nproc=2, batch_size=PER_PROCESS)

    # rank 0 wrote a complete run; no checkpoints or temporary folders are left behind
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert not (two / "checkpoints").exists()

    a = load_file(one / "model" / "model.safetensors")
    b = load_file(two / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    diff = torch.cat([(a[k] - b[k]).flatten() for k in a])
    worst = max(
        (a[k] - b[k]).abs().max().item() for k in a if not k.endswith("attention.self.key.bias")
    )
    assert worst <= ATOL

    # the encoder starts from the pretrained weights (the head is random, so left out)
    head = yaml.safe_load((one / "config.yaml").read_text())["head"]
    initial = load_classifier("minilm", list(LABELS), head=head, pooling="mean").state_dict()
    encoder = [k for k in a if k in initial and not k.startswith("classifier")]
    assert len(encoder) > 90
    update = torch.cat([(a[k] - initial[k]).flatten() for k in encoder])
    assert update.abs().max().item() >= LR  # 3 decaying Adam steps: about 2 * LR
    assert diff.norm().item() <= 1e-3 * update.norm().item()

    # same steps, and the logged loss parts are the global batch's, not rank 0's shard
    h1, h2 = _history(one, "loss"), _history(two, "loss")
    assert [h["step"] for h in h1] == [h["step"] for h in h2] == [1, 2, 3]
    for x, y in zip(h1, h2):
        for key in ("loss", "loss_ce", "loss_contrastive"):
            assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-5), key

    # the Trainer's evaluation (it picks the best epoch) on 7 texts: 4 + 3 on two ranks
    e1, e2 = _history(one, "eval_accuracy"), _history(two, "eval_accuracy")
    assert len(e1) == len(e2) == 1
    assert e2[0]["eval_accuracy"] == e1[0]["eval_accuracy"]
    # not exact: the Trainer averages rank 1's loss over its 3 texts plus accelerate's padding
    # duplicate (the predictions behind the accuracy are deduplicated)
    assert e2[0]["eval_loss"] == pytest.approx(e1[0]["eval_loss"], rel=2e-3)

    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    assert m2["best_epoch"] == m1["best_epoch"]
    assert m2["train_examples"] == m1["train_examples"] == TRAIN_TEXTS
    for split in ("validation", "test"):
        assert m2[split]["accuracy"] == pytest.approx(m1[split]["accuracy"])
