"""ContrastiveMemory: exactness, FIFO order, warm-up rule, checkpoints."""

import pytest
import torch
import torch.nn.functional as F

from lcl.losses import ContrastiveMemory, LabelAwareContrastiveLoss, SupConLoss
from lcl.losses.functional import weighted_contrastive_loss

C = 4


def reference(f, y, logits, tau, mem_z, mem_y):
    """Loop form with candidates = batch (minus the anchor) followed by the memory."""
    z = F.normalize(f.double(), dim=1)
    cz = torch.cat([z, mem_z.double()])
    cy = torch.cat([y, mem_y])
    w = None if logits is None else torch.softmax(logits.double(), dim=1)
    losses = []
    for i in range(len(y)):
        others = [j for j in range(len(cy)) if j != i]
        pos = [p for p in others if cy[p] == y[i]]
        if not pos:
            continue
        wt = (lambda j: 1.0) if w is None else (lambda j: w[i, cy[j]])  # noqa: B023 (used here)
        s = {j: z[i] @ cz[j] / tau for j in others}
        log_den = torch.log(sum(wt(a) * torch.exp(s[a]) for a in others))
        losses.append(-sum(wt(p) * (s[p] - log_den) for p in pos) / len(pos))
    return torch.stack(losses).mean()


def batch(seed, n=8, d=5):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=gen)
    return torch.randn(n, d, generator=gen), y, torch.randn(n, C, generator=gen)


def call(mem, f, y, logits):
    return mem(f, y) if isinstance(mem.loss, SupConLoss) else mem(f, y, logits)


LOSSES = [lambda: LabelAwareContrastiveLoss(0.3), lambda: SupConLoss(0.3)]


@pytest.mark.parametrize("make", LOSSES)
def test_memory_size_zero_is_the_plain_loss(make):
    plain, mem = make(), ContrastiveMemory(make(), memory_size=0)
    for seed in range(3):
        f, y, logits = batch(seed)
        outs = []
        for fn in (plain, mem):
            fr, lr = f.clone().requires_grad_(), logits.clone().requires_grad_()
            v = fn(fr, y) if isinstance(plain, SupConLoss) else fn(fr, y, lr)
            v.backward()
            outs.append((v, fr.grad, lr.grad))
        assert torch.equal(outs[0][0], outs[1][0])
        assert torch.equal(outs[0][1], outs[1][1])
        if not isinstance(plain, SupConLoss):
            assert torch.equal(outs[0][2], outs[1][2])


@pytest.mark.parametrize("make", LOSSES)
def test_queue_of_the_batch_itself_reproduces_the_batch_loss(make):
    f, y, logits = batch(11)
    y[:2] = torch.tensor([0, 0])  # at least one positive pair
    mem = ContrastiveMemory(make(), memory_size=len(y))
    call(mem, f, y, logits)  # enqueues detached copies of this batch
    mem_z, mem_y = mem.memory()
    fr, lr = f.clone().requires_grad_(), logits.clone().requires_grad_()
    log_w = None if isinstance(mem.loss, SupConLoss) else F.log_softmax(lr, dim=1)
    # anchors against the queue only, each anchor's own stored copy masked
    from_queue = weighted_contrastive_loss(
        F.normalize(fr, dim=1), y, mem_z, mem_y, 0.3, log_w, self_index=torch.arange(len(y))
    )
    plain = make()
    fp = f.clone().requires_grad_()
    alone = plain(fp, y) if isinstance(plain, SupConLoss) else plain(fp, y, logits)
    torch.testing.assert_close(from_queue, alone)
    # Same value, different gradient: queued candidates are constants, so only the
    # anchor side of each similarity is differentiated.
    (g_queue,) = torch.autograd.grad(from_queue, fr)
    (g_alone,) = torch.autograd.grad(alone, fp)
    assert not torch.allclose(g_queue, g_alone, atol=1e-4)


@pytest.mark.parametrize("make", LOSSES)
def test_active_memory_matches_reference(make):
    mem = ContrastiveMemory(make(), memory_size=12)
    history = []
    for step in range(4):
        f, y, logits = batch(20 + step)
        expected = None
        if mem.is_active():
            mz, my = mem.memory()
            weights = None if isinstance(mem.loss, SupConLoss) else logits
            expected = reference(f, y, weights, 0.3, mz, my)
            assert len(my) == 12
        value = call(mem, f, y, logits)
        if expected is not None:
            torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-6)
            plain = call(ContrastiveMemory(make(), 0), f, y, logits)
            assert not torch.allclose(value, plain)  # the memory really took part
        history.append(expected is not None)
    assert history == [False, False, True, True]  # full after 2 batches of 8


def test_fifo_wraps_and_keeps_last_items():
    mem = ContrastiveMemory(SupConLoss(0.3), memory_size=5)
    seen_z, seen_y = [], []
    for step, n in enumerate([3, 3, 1, 4, 7, 2]):
        gen = torch.Generator().manual_seed(step)
        f, y = torch.randn(n, 3, generator=gen), torch.randint(0, 3, (n,), generator=gen)
        mem(f, y)
        seen_z.append(F.normalize(f, dim=1))
        seen_y.append(y)
        all_z, all_y = torch.cat(seen_z), torch.cat(seen_y)
        mz, my = mem.memory()
        assert int(mem.fill) == min(len(all_y), 5)
        torch.testing.assert_close(mz, all_z[-5:])
        assert torch.equal(my, all_y[-5:])
    assert int(mem.step) == 6


def test_warmup_rule():
    f, y, logits = batch(30, n=4)

    def active_steps(start_step, calls=4):
        mem = ContrastiveMemory(LabelAwareContrastiveLoss(0.3), 6, start_step=start_step)
        steps = []
        for step in range(calls):
            plain = LabelAwareContrastiveLoss(0.3)(f, y, logits)
            value = mem(f, y, logits)
            assert mem.is_active() == (
                int(mem.fill) == 6 or (start_step is not None and int(mem.step) >= start_step)
            )
            if not torch.equal(value, plain):
                steps.append(step)
        return steps

    assert active_steps(None) == [2, 3]  # fill after calls: 4, 6 -> full from step 2
    assert active_steps(0) == [1, 2, 3]  # empty at step 0, partial queue used at step 1
    assert active_steps(1) == [1, 2, 3]
    assert active_steps(2) == [2, 3]
    assert active_steps(10) == [2, 3]  # full beats start_step


def test_eval_mode_reads_but_does_not_update():
    mem = ContrastiveMemory(SupConLoss(0.3), memory_size=4)
    f, y, _ = batch(40, n=4)
    mem(f, y)
    state = {k: v.clone() for k, v in mem.state_dict().items()}
    mem.eval()
    with_memory = mem(f, y)
    assert not torch.equal(with_memory, SupConLoss(0.3)(f, y))
    for k, v in mem.state_dict().items():
        assert torch.equal(v, state[k])


def test_state_dict_resume_and_reset():
    def run(mem, seeds):
        return [call(mem, *batch(s)) for s in seeds]

    a = ContrastiveMemory(LabelAwareContrastiveLoss(0.3), memory_size=10)
    run(a, [1, 2, 3])
    ckpt = {k: v.clone() for k, v in a.state_dict().items()}
    assert set(ckpt) == {"queue", "queue_labels", "ptr", "fill", "step"}
    b = ContrastiveMemory(LabelAwareContrastiveLoss(0.3), memory_size=10)  # lazily sized
    b.load_state_dict(ckpt)
    for va, vb in zip(run(a, [4, 5]), run(b, [4, 5])):
        assert torch.equal(va, vb)
    b.reset()
    assert int(b.fill) == 0 and int(b.step) == 0 and int(b.ptr) == 0 and not b.is_active()
    f, y, logits = batch(6)
    assert torch.equal(b(f, y, logits), LabelAwareContrastiveLoss(0.3)(f, y, logits))


def test_half_precision_and_gradients_with_memory():
    mem = ContrastiveMemory(LabelAwareContrastiveLoss(0.1), memory_size=8, start_step=0)
    for seed in range(3):
        f, y, logits = batch(50 + seed)
        f = f.bfloat16().requires_grad_()
        logits = logits.bfloat16().requires_grad_()
        value = mem(f, y, logits)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert torch.isfinite(f.grad.float()).all() and torch.isfinite(logits.grad.float()).all()
    assert mem.queue.dtype == torch.float32


def test_wrong_inputs():
    with pytest.raises(ValueError):
        ContrastiveMemory(SupConLoss(0.3), memory_size=4)(*batch(0))  # SupCon takes no weights
    with pytest.raises(TypeError):
        ContrastiveMemory(torch.nn.MSELoss(), memory_size=4)
    mem = ContrastiveMemory(SupConLoss(0.3), memory_size=4)
    f, y, _ = batch(0)
    mem(f, y)
    with pytest.raises(ValueError):
        mem(torch.randn(8, 7), y)  # feature width changed
