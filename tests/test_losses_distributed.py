"""Two processes (gloo, CPU) with DDP must give the single-process full-batch gradients."""

import pytest
import torch
import torch.distributed as dist
from helpers import spawn_ranks
from torch import nn

from lcl.losses import ContrastiveMemory, LabelAwareContrastiveLoss, SupConLoss

WORLD = 2
DIM_IN, DIM_OUT, CLASSES = 8, 6, 7

# name -> (loss kind, labels of the global batch, rows of rank 0, memory size)
CASES = {
    # two views per text, equal shards
    "lcl_views": ("lcl", [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5], 6, 0),
    # uneven shards, cross-shard positives, 5 valid anchors on rank 0 and 1 on rank 1
    "lcl_uneven": ("lcl", [0, 0, 1, 1, 2, 3, 4, 2, 5, 6], 6, 0),
    # rank 1 has no valid anchor at all
    "lcl_empty_shard": ("lcl", [0, 0, 1, 1, 2, 2, 3, 4, 5], 6, 0),
    "lcl_detached": ("lcl_detach", [0, 0, 1, 1, 2, 3, 4, 2, 5, 6], 6, 0),
    "scl_views": ("scl", [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5], 6, 0),
    "scl_uneven": ("scl", [0, 0, 1, 1, 2, 3, 4, 2, 5, 6], 6, 0),
    # memory of 10 items; 3 steps of a 10-sample batch: active on steps 1 and 2
    "lcl_memory": ("lcl", [0, 0, 1, 1, 2, 3, 4, 2, 5, 6], 6, 10),
    "scl_memory": ("scl", [0, 1, 2, 3, 4, 0, 1, 2, 3, 4], 5, 10),
}
STEPS = 3


class Tiny(nn.Module):
    def __init__(self, with_head):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(DIM_IN, DIM_OUT)
        self.head = nn.Linear(DIM_IN, CLASSES) if with_head else None

    def forward(self, x):
        return self.encoder(x), (None if self.head is None else self.head(x))


def make_loss(kind, memory_size):
    if kind == "scl":
        loss = SupConLoss(0.3)
    else:
        loss = LabelAwareContrastiveLoss(0.3, detach_weights=kind == "lcl_detach")
    return ContrastiveMemory(loss, memory_size) if memory_size else loss


def batch(name, step):
    labels = torch.tensor(CASES[name][1])
    gen = torch.Generator().manual_seed(1000 * step + len(name))
    return torch.randn(len(labels), DIM_IN, generator=gen), labels


def run_case(name, model, rows):
    """Per step: loss value and parameter gradients; also the final queue if any."""
    kind, _, _, memory_size = CASES[name]
    loss_fn = make_loss(kind, memory_size)
    out = []
    for step in range(STEPS if memory_size else 1):
        model.zero_grad()
        x, y = batch(name, step)
        feats, logits = model(x[rows])
        loss = loss_fn(feats, y[rows]) if kind == "scl" else loss_fn(feats, y[rows], logits)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        out.append((loss.detach(), grads))
    queue = loss_fn.memory() if memory_size else None
    return out, queue


def _worker(rank, port, path):
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    results = {}
    for name, (kind, labels, rank0_rows, _) in CASES.items():
        # with detached weights the weight head gets no gradient from this loss alone
        ddp = nn.parallel.DistributedDataParallel(
            Tiny(with_head=kind != "scl"), find_unused_parameters=kind == "lcl_detach"
        )
        rows = slice(0, rank0_rows) if rank == 0 else slice(rank0_rows, len(labels))
        steps, queue = run_case(name, ddp, rows)
        results[name] = (
            [(v, {k.removeprefix("module."): g for k, g in gr.items()}) for v, gr in steps],
            queue,
        )
    torch.save(results, f"{path}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    return spawn_ranks(_worker, tmp_path_factory.mktemp("ddp"), WORLD)


@pytest.mark.parametrize("name", list(CASES))
def test_ddp_gradients_equal_full_batch(two_process_results, name):
    kind, labels, rank0_rows, memory_size = CASES[name]
    expected, expected_queue = run_case(name, Tiny(with_head=kind != "scl"), slice(None))
    for step, (value, grads) in enumerate(expected):
        per_rank = [res[name][0][step] for res in two_process_results]
        # documented scaling: the mean of the per-process values is the global loss
        torch.testing.assert_close(sum(v for v, _ in per_rank) / WORLD, value)
        for _, rank_grads in per_rank:
            assert rank_grads.keys() == grads.keys()
            for k in grads:
                torch.testing.assert_close(rank_grads[k], grads[k], rtol=1e-5, atol=1e-5)
    if kind == "lcl_detach":
        assert "head.weight" not in expected[0][1]
    elif kind == "lcl":
        assert expected[0][1]["head.weight"].abs().sum() > 0
    if memory_size:
        for res in two_process_results:  # every process holds the global queue
            for a, b in zip(res[name][1], expected_queue):
                torch.testing.assert_close(a, b)
