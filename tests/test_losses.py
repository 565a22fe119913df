"""LabelAwareContrastiveLoss / SupConLoss against a slow reference written from the formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from lcl.losses import LabelAwareContrastiveLoss, SupConLoss
from lcl.losses.functional import per_anchor_contrastive_loss, weighted_contrastive_loss


def reference_loss(
    features, labels, weight_logits, tau, cand_features=None, cand_labels=None, self_index=None
):
    """l_i straight from the formula with Python loops, in float64.

    Candidates default to the batch itself with anchor i's own column at i; weight_logits
    None means all weights 1 (SupCon).
    """
    features = features.double()
    z = features / features.norm(dim=1, keepdim=True)
    if cand_features is None:
        cz, cy = z, labels
        self_index = list(range(len(labels))) if self_index is None else self_index
    else:
        cand_features = cand_features.double()
        cz = cand_features / cand_features.norm(dim=1, keepdim=True)
        cy = cand_labels
        self_index = [-1] * len(labels) if self_index is None else self_index
    w = None if weight_logits is None else torch.softmax(weight_logits.double(), dim=1)
    total, count = 0.0, 0
    for i in range(len(labels)):

        def weight(j):
            return 1.0 if w is None else w[i, int(cy[j])]  # noqa: B023 (used in this iteration)

        others = [j for j in range(len(cy)) if j != self_index[i]]
        positives = [p for p in others if int(cy[p]) == int(labels[i])]
        if not positives:
            continue
        s = {j: torch.dot(z[i], cz[j]) / tau for j in others}
        denom = sum(weight(a) * torch.exp(s[a]) for a in others)
        li = -sum(weight(p) * (s[p] - torch.log(denom)) for p in positives) / len(positives)
        total = total + li
        count += 1
    if count == 0:  # zero, but connected to the inputs like the loss under test
        return 0.0 * features.sum() + (0.0 if weight_logits is None else 0.0 * weight_logits.sum())
    return total / count


def random_batch(gen, n, d, c, repeat_views=False):
    if repeat_views:  # two views per text: rows i and i + n/2 share a label
        n = max(2, n - n % 2)
        y = torch.randint(0, c, (n // 2,), generator=gen).repeat(2)
    else:
        y = torch.randint(0, c, (n,), generator=gen)
    f = torch.randn(n, d, generator=gen, dtype=torch.float64)
    logits = 2 * torch.randn(n, c, generator=gen, dtype=torch.float64)
    return f, y, logits


def grads(loss_fn, *inputs):
    inputs = [x.clone().requires_grad_() if x.is_floating_point() else x for x in inputs]
    value = loss_fn(*inputs)
    diff = [x for x in inputs if x.requires_grad]
    return value.detach(), torch.autograd.grad(value, diff)


@pytest.mark.parametrize("seed", range(25))
def test_lcl_matches_reference_value_and_gradient(seed):
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 13, (1,), generator=gen))
    c = int(torch.randint(2, 6, (1,), generator=gen))
    f, y, logits = random_batch(gen, n, 5, c, repeat_views=seed % 3 == 0)
    tau = [0.05, 0.3, 1.0][seed % 3]
    ours, g_ours = grads(LabelAwareContrastiveLoss(tau), f, y, logits)
    ref, g_ref = grads(lambda a, b, l: reference_loss(a, b, l, tau), f, y, logits)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("seed", range(15))
def test_supcon_matches_reference_value_and_gradient(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    n = int(torch.randint(2, 13, (1,), generator=gen))
    f, y, _ = random_batch(gen, n, 4, 3, repeat_views=seed % 2 == 0)
    ours, g_ours = grads(SupConLoss(0.2), f, y)
    ref, g_ref = grads(lambda a, b: reference_loss(a, b, None, 0.2), f, y)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_ours[0], g_ref[0], rtol=1e-9, atol=1e-11)


def test_batch_with_anchors_without_positives_only_averages_valid_anchors():
    # labels 2 and 3 are singletons: anchors 4 and 5 have no positive.
    gen = torch.Generator().manual_seed(7)
    f = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 2, 3])
    logits = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    per_anchor, has_pos = per_anchor_contrastive_loss(
        F.normalize(f, dim=1),
        y,
        F.normalize(f, dim=1),
        y,
        0.3,
        F.log_softmax(logits, dim=1),
        torch.arange(6),
    )
    assert has_pos.tolist() == [True] * 4 + [False] * 2
    assert per_anchor[4] == 0 and per_anchor[5] == 0
    value = LabelAwareContrastiveLoss(0.3)(f, y, logits)
    torch.testing.assert_close(value, per_anchor[:4].mean())
    torch.testing.assert_close(value, reference_loss(f, y, logits, 0.3))
    # the singletons still act as (weighted) negatives in the others' denominators
    assert not torch.allclose(value, LabelAwareContrastiveLoss(0.3)(f[:4], y[:4], logits[:4]))


def test_anchors_and_candidates_apart_match_reference():
    gen = torch.Generator().manual_seed(3)
    fa, ya, la = random_batch(gen, 5, 4, 3)
    fc, yc, _ = random_batch(gen, 9, 4, 3)
    fc[:5], yc[:5] = fa, ya  # anchors are candidates 0..4, plus 4 extra candidates
    idx = torch.tensor([0, 1, 2, 3, 4])
    za, zc = F.normalize(fa, dim=1), F.normalize(fc, dim=1)
    ours = weighted_contrastive_loss(za, ya, zc, yc, 0.5, F.log_softmax(la, dim=1), idx)
    ref = reference_loss(fa, ya, la, 0.5, fc, yc, idx.tolist())
    torch.testing.assert_close(ours, ref)
    # no self column at all (-1): the anchor's own copy among the candidates would count.
    ours = weighted_contrastive_loss(
        za, ya, zc[5:], yc[5:], 0.5, F.log_softmax(la, dim=1), torch.full((5,), -1)
    )
    torch.testing.assert_close(ours, reference_loss(fa, ya, la, 0.5, fc[5:], yc[5:]))


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(0)
    f, y, logits = random_batch(gen, 8, 4, 3)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2])
    f.requires_grad_()
    logits.requires_grad_()
    loss = LabelAwareContrastiveLoss(0.5)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, y, b), (f, logits))
    assert torch.autograd.gradcheck(lambda a: SupConLoss(0.5)(a, y), (f,))


@pytest.mark.parametrize("seed", range(5))
def test_supcon_equals_pytorch_metric_learning(seed):
    import pytorch_metric_learning.losses as pml  # test dependency: the outside oracle

    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (16,), generator=gen).repeat(
        2
    )  # two views: every anchor has a positive
    f = torch.randn(32, 16, generator=gen, requires_grad=True)
    ours = SupConLoss(temperature=0.3)(f, y)
    (g_ours,) = torch.autograd.grad(ours, f)
    theirs = pml.SupConLoss(temperature=0.3)(f, y)
    (g_theirs,) = torch.autograd.grad(theirs, f)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-4, atol=1e-6)


def test_lcl_with_uniform_weights_is_supcon_with_a_constant_factor():
    # softmax of equal logits is 1/C everywhere: the log term shifts by log C, the
    # weight outside the log scales by 1/C.
    gen = torch.Generator().manual_seed(1)
    f, y, _ = random_batch(gen, 10, 4, 5, repeat_views=True)
    c = 5
    lcl = LabelAwareContrastiveLoss(0.3)(f, y, torch.zeros(10, c, dtype=torch.float64))
    scl = SupConLoss(0.3)(f, y)
    torch.testing.assert_close(lcl, (scl - math.log(c)) / c)


def test_normalisation_is_idempotent_and_scale_invariant():
    gen = torch.Generator().manual_seed(2)
    f, y, logits = random_batch(gen, 10, 6, 3, repeat_views=True)
    loss = LabelAwareContrastiveLoss(0.3)
    a = loss(f, y, logits)
    torch.testing.assert_close(loss(F.normalize(f, dim=1), y, logits), a)
    torch.testing.assert_close(loss(7.5 * f, y, logits), a)


def _finite_loss_and_grads(loss_fn, f, y, logits=None):
    f = f.clone().requires_grad_()
    inputs = (f, y) if logits is None else (f, y, logits.clone().requires_grad_())
    value = loss_fn(*inputs)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(value), value
    assert torch.isfinite(f.grad).all()
    if logits is not None:
        assert torch.isfinite(inputs[2].grad).all()
    return value, inputs


@pytest.mark.parametrize(
    "loss_fn", [LabelAwareContrastiveLoss(0.3), LabelAwareContrastiveLoss(0.01)]
)
def test_extreme_logits_are_finite(loss_fn):
    gen = torch.Generator().manual_seed(4)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    f = torch.randn(8, 16, generator=gen)
    logits = 1e4 * torch.sign(torch.randn(8, 5, generator=gen))
    value, _ = _finite_loss_and_grads(loss_fn, f, y, logits)
    # weights of ~exp(-2e4) underflow to 0 in float32 but must stay harmless.
    logits = torch.full((8, 5), -1e4)
    logits[:, 4] = 1e4  # all weight on an absent class: every W is ~0
    value, _ = _finite_loss_and_grads(loss_fn, f, y, logits)
    assert value.abs() < 1e-6


def test_identical_features_one_class_and_single_sample():
    lcl, scl = LabelAwareContrastiveLoss(0.3), SupConLoss(0.3)
    f = torch.ones(6, 4)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = torch.randn(6, 3)
    _finite_loss_and_grads(lcl, f, y, logits)
    v, _ = _finite_loss_and_grads(scl, f, y)
    torch.testing.assert_close(v, torch.tensor(math.log(5.0)))  # all similarities equal
    y1 = torch.zeros(6, dtype=torch.long)  # one class: no negatives
    _finite_loss_and_grads(lcl, torch.randn(6, 4), y1, logits)
    v, _ = _finite_loss_and_grads(scl, torch.randn(6, 4), y1)
    assert v > 0  # the positives-only denominator still exceeds each positive
    v, (f1, _, l1) = _finite_loss_and_grads(
        lcl, torch.randn(1, 4), torch.tensor([0]), torch.randn(1, 3)
    )
    assert v == 0 and (f1.grad == 0).all() and (l1.grad == 0).all()
    f0 = torch.ones(1, 4, requires_grad=True)
    v = scl(f0, torch.tensor([1]))
    v.backward()
    assert v == 0 and (f0.grad == 0).all()


def test_no_positives_gives_graph_connected_zero():
    f = torch.randn(4, 3, requires_grad=True)
    logits = torch.randn(4, 4, requires_grad=True)
    y = torch.arange(4)
    v = LabelAwareContrastiveLoss(0.3)(f, y, logits)
    assert v.item() == 0.0 and v.requires_grad
    v.backward()
    assert (f.grad == 0).all() and (logits.grad == 0).all()
    v = SupConLoss(0.3)(f, y)
    assert v.item() == 0.0 and v.requires_grad


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    gen = torch.Generator().manual_seed(5)
    y = torch.randint(0, 3, (8,), generator=gen).repeat(2)
    f32 = torch.randn(16, 32, generator=gen)
    l32 = 3 * torch.randn(16, 3, generator=gen)
    f, logits = f32.to(dtype), l32.to(dtype)
    value, (fh, _, lh) = _finite_loss_and_grads(LabelAwareContrastiveLoss(0.1), f, y, logits)
    assert fh.grad.dtype == dtype
    # computed in float32 from the rounded inputs: same as float32 on those inputs
    exact = LabelAwareContrastiveLoss(0.1)(f.float(), y, logits.float())
    torch.testing.assert_close(value, exact)
    v, _ = _finite_loss_and_grads(SupConLoss(0.1), f, y)
    torch.testing.assert_close(v, SupConLoss(0.1)(f.float(), y))
    big = torch.full((16, 3), 6e4, dtype=dtype)  # near float16's max
    big[:, 0] = -6e4
    _finite_loss_and_grads(LabelAwareContrastiveLoss(0.1), f, y, big)


def test_detach_weights():
    gen = torch.Generator().manual_seed(6)
    f, y, logits = random_batch(gen, 10, 4, 3, repeat_views=True)
    for detach, expect_grad in [(False, True), (True, False)]:
        fr, lr = f.clone().requires_grad_(), logits.clone().requires_grad_()
        loss = LabelAwareContrastiveLoss(0.3, detach_weights=detach)(fr, y, lr)
        loss.backward()
        has_grad = lr.grad is not None and lr.grad.abs().sum() > 0
        assert has_grad == expect_grad
        assert fr.grad.abs().sum() > 0
    # same value either way
    torch.testing.assert_close(
        LabelAwareContrastiveLoss(0.3, detach_weights=True)(f, y, logits),
        LabelAwareContrastiveLoss(0.3)(f, y, logits),
    )


def test_input_validation():
    f, y = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError):
        LabelAwareContrastiveLoss(0.3)(f, y, torch.randn(3, 2))
    with pytest.raises(ValueError):
        LabelAwareContrastiveLoss(0.3)(f, y, None)
    with pytest.raises(ValueError):
        SupConLoss(0.3)(f, y[:3])
    with pytest.raises(ValueError):
        SupConLoss(0.3)(f[0], y)
    with pytest.raises(ValueError):
        SupConLoss(0.0)
