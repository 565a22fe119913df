"""MultiLabelSupConLoss / MultiLabelLabelAwareContrastiveLoss against a slow reference written
from the formula, their reduction to the single-label losses, edge cases, and gathering."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import spawn_ranks

from lcl.losses import (
    LabelAwareContrastiveLoss,
    MultiLabelLabelAwareContrastiveLoss,
    MultiLabelSupConLoss,
    SupConLoss,
)
from lcl.losses.multilabel_functional import per_anchor_multilabel_loss

POSITIVES = ["mulsupcon", "jaccard"]
ACTIVATIONS = ["sigmoid", "softmax"]


def reference_loss(
    features,
    y,
    weight_logits,
    tau,
    positives="mulsupcon",
    activation="sigmoid",
    cand_features=None,
    cand_y=None,
    self_index=None,
):
    """The loss straight from the docstring formulas with Python loops, in float64.

    Candidates default to the batch itself (anchor i's own column at i); ``weight_logits``
    None means every weight 1 (SupCon). Rows without labels are neither anchors nor
    candidates.
    """
    features = features.double()
    z = features / features.norm(dim=1, keepdim=True)
    if cand_features is None:
        cz, cy = z, y
        self_index = list(range(len(y))) if self_index is None else self_index
    else:
        cand_features = cand_features.double()
        cz = cand_features / cand_features.norm(dim=1, keepdim=True)
        cy = cand_y
        self_index = [-1] * len(y) if self_index is None else self_index
    num_classes = y.shape[1]

    def label_set(row):
        return {c for c in range(num_classes) if float(row[c]) == 1.0}

    anchor_sets = [label_set(r) for r in y]
    cand_sets = [label_set(r) for r in cy]
    total, count = 0.0, 0
    for i in range(len(y)):
        if weight_logits is None:
            p = None
        elif activation == "sigmoid":
            p = [torch.sigmoid(weight_logits[i, c].double()) for c in range(num_classes)]
        else:
            p = torch.softmax(weight_logits[i].double(), dim=0)

        def weight(a, p=p):
            if p is None:
                return 1.0
            return sum(p[c] for c in cand_sets[a]) / len(cand_sets[a])

        others = [a for a in range(len(cy)) if a != self_index[i] and cand_sets[a]]
        s = {a: torch.dot(z[i], cz[a]) / tau for a in others}
        if not others:
            continue
        log_denom = torch.log(sum(weight(a) * torch.exp(s[a]) for a in others))
        if positives == "mulsupcon":
            for c in sorted(anchor_sets[i]):
                pos = [a for a in others if c in cand_sets[a]]
                if pos:
                    total = total - sum(weight(a) * (s[a] - log_denom) for a in pos) / len(pos)
                    count += 1
        else:
            jac = {
                a: len(anchor_sets[i] & cand_sets[a]) / len(anchor_sets[i] | cand_sets[a])
                for a in others
            }
            norm = sum(jac.values())
            if norm > 0:
                total = total - sum(
                    jac[a] / norm * weight(a) * (s[a] - log_denom) for a in others if jac[a] > 0
                )
                count += 1
    if count == 0:  # zero, but connected to the inputs like the loss under test
        zero = 0.0 * features.sum()
        return zero if weight_logits is None else zero + 0.0 * weight_logits.sum()
    return total / count


def multi_hot_batch(gen, n, d, c, repeat_views=False, empty_rows=0, max_labels=3):
    """Random multi-hot labels with 1..max_labels labels per row (the last ``empty_rows``
    rows without any), features and weighting logits in float64."""
    rows = n // 2 if repeat_views else n
    y = torch.zeros(rows, c, dtype=torch.long)
    for r in range(rows):
        k = int(torch.randint(1, min(max_labels, c) + 1, (1,), generator=gen))
        y[r, torch.randperm(c, generator=gen)[:k]] = 1
    if repeat_views:
        y = y.repeat(2, 1)
    if empty_rows:
        y[-empty_rows:] = 0
    f = torch.randn(len(y), d, generator=gen, dtype=torch.float64)
    logits = 2 * torch.randn(len(y), c, generator=gen, dtype=torch.float64)
    return f, y, logits


def grads(loss_fn, *inputs):
    inputs = [x.clone().requires_grad_() if x.is_floating_point() else x for x in inputs]
    value = loss_fn(*inputs)
    diff = [x for x in inputs if x.requires_grad]
    return value.detach(), torch.autograd.grad(value, diff)


def assert_same(a, b, rtol=1e-10, atol=1e-12):
    (va, ga), (vb, gb) = a, b
    torch.testing.assert_close(va, vb, rtol=rtol, atol=atol)
    assert len(ga) == len(gb)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=rtol * 10, atol=atol * 10)


# ---------------------------------------------------------------- the slow reference (e)


@pytest.mark.parametrize("positives", POSITIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("seed", range(10))
def test_lcl_matches_reference_value_and_gradient(seed, activation, positives):
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 13, (1,), generator=gen))
    c = int(torch.randint(2, 7, (1,), generator=gen))
    f, y, logits = multi_hot_batch(
        gen, n, 5, c, repeat_views=seed % 3 == 0, empty_rows=seed % 4 == 1
    )
    tau = [0.05, 0.3, 1.0][seed % 3]
    loss = MultiLabelLabelAwareContrastiveLoss(tau, positives, activation)
    ours = grads(loss, f, y, logits)
    ref = grads(lambda a, b, w: reference_loss(a, b, w, tau, positives, activation), f, y, logits)
    assert ours[0].dtype == torch.float64
    assert_same(ours, ref)


@pytest.mark.parametrize("positives", POSITIVES)
@pytest.mark.parametrize("seed", range(10))
def test_supcon_matches_reference_value_and_gradient(seed, positives):
    gen = torch.Generator().manual_seed(100 + seed)
    n = int(torch.randint(2, 13, (1,), generator=gen))
    f, y, _ = multi_hot_batch(gen, n, 4, 4, repeat_views=seed % 2 == 0, empty_rows=seed % 3 == 2)
    ours = grads(MultiLabelSupConLoss(0.2, positives), f, y)
    ref = grads(lambda a, b: reference_loss(a, b, None, 0.2, positives), f, y)
    assert_same(ours, ref)


@pytest.mark.parametrize("positives", POSITIVES)
def test_anchors_and_candidates_apart_match_reference(positives):
    # the layout of a memory queue: candidates = the batch followed by stored samples
    gen = torch.Generator().manual_seed(3)
    fa, ya, la = multi_hot_batch(gen, 5, 4, 4)
    fc, yc, _ = multi_hot_batch(gen, 9, 4, 4, empty_rows=1)
    fc[:5], yc[:5] = fa, ya
    za, zc = F.normalize(fa, dim=1), F.normalize(fc, dim=1)
    for idx in (torch.arange(5), torch.full((5,), -1)):
        for log_p in (None, F.logsigmoid(la)):
            loss, count = per_anchor_multilabel_loss(
                za, ya.double(), zc, yc.double(), 0.5, log_p, idx, positives
            )
            ref = reference_loss(
                fa,
                ya,
                None if log_p is None else la,
                0.5,
                positives,
                cand_features=fc,
                cand_y=yc,
                self_index=idx.tolist(),
            )
            torch.testing.assert_close(loss.sum() / count.sum(), ref)
    # through the module's memory hook
    memory = (zc[5:], yc[5:])
    value = MultiLabelLabelAwareContrastiveLoss(0.5, positives)._loss_and_batch(
        fa, ya, la, *memory
    )[0]
    ref = reference_loss(
        fa, ya, la, 0.5, positives, cand_features=fc, cand_y=yc, self_index=list(range(5))
    )
    torch.testing.assert_close(value, ref)


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(0)
    f, _, logits = multi_hot_batch(gen, 7, 4, 3)
    y = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]])
    f.requires_grad_()
    logits.requires_grad_()
    for positives in POSITIVES:
        for activation in ACTIVATIONS:
            loss = MultiLabelLabelAwareContrastiveLoss(0.5, positives, activation)
            assert torch.autograd.gradcheck(lambda a, b, fn=loss: fn(a, y, b), (f, logits))
        scl = MultiLabelSupConLoss(0.5, positives)
        assert torch.autograd.gradcheck(lambda a, fn=scl: fn(a, y), (f,))


# ------------------------------------------------------- reduction to single label (a)


@pytest.mark.parametrize("positives", POSITIVES)
@pytest.mark.parametrize("seed", range(8))
def test_one_hot_reduces_exactly_to_single_label_losses(seed, positives):
    gen = torch.Generator().manual_seed(200 + seed)
    n = int(torch.randint(1, 17, (1,), generator=gen))
    c = int(torch.randint(2, 6, (1,), generator=gen))
    y = torch.randint(0, c, (n,), generator=gen)
    if seed % 2 == 0:
        y = y.repeat(2)
    f = torch.randn(len(y), 6, generator=gen, dtype=torch.float64)
    logits = 3 * torch.randn(len(y), c, generator=gen, dtype=torch.float64)
    one_hot = F.one_hot(y, c)
    tau = [0.05, 0.3][seed % 2]
    single = grads(LabelAwareContrastiveLoss(tau), f, y, logits)
    multi = grads(
        MultiLabelLabelAwareContrastiveLoss(tau, positives, "softmax"), f, one_hot, logits
    )
    assert_same(multi, single, rtol=1e-12, atol=1e-14)
    assert_same(
        grads(MultiLabelSupConLoss(tau, positives), f, one_hot),
        grads(SupConLoss(tau), f, y),
        rtol=1e-12,
        atol=1e-14,
    )
    # float32 too, to float32 rounding
    assert_same(
        grads(
            MultiLabelLabelAwareContrastiveLoss(tau, positives, "softmax"),
            f.float(),
            one_hot,
            logits.float(),
        ),
        grads(LabelAwareContrastiveLoss(tau), f.float(), y, logits.float()),
        rtol=2e-5,
        atol=1e-6,
    )


def test_one_hot_sigmoid_mode_uses_sigmoid_of_the_own_class():
    # on one-hot labels W_ia = sigmoid(w_i)[y_a]: LCL whose log weights are logsigmoid
    gen = torch.Generator().manual_seed(9)
    y = torch.randint(0, 4, (6,), generator=gen).repeat(2)
    f = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    logits = torch.randn(12, 4, generator=gen, dtype=torch.float64)
    value = MultiLabelLabelAwareContrastiveLoss(0.3)(f, F.one_hot(y, 4), logits)
    z = F.normalize(f, dim=1)
    w = torch.sigmoid(logits)[:, y]  # W_ia
    s = z @ z.T / 0.3
    eye = torch.eye(12, dtype=torch.bool)
    log_denom = torch.logsumexp((s + w.log()).masked_fill(eye, -math.inf), dim=1)
    pos = (y[:, None] == y[None, :]) & ~eye
    per = -(pos * w * (s - log_denom[:, None])).sum(1) / pos.sum(1)
    torch.testing.assert_close(value, per.mean())


@pytest.mark.parametrize("positives", POSITIVES)
def test_uniform_sigmoid_weights_scale_supcon(positives):
    # every W_ia = p: the log term shifts by log p, the weight outside the log scales by p
    gen = torch.Generator().manual_seed(11)
    f, y, _ = multi_hot_batch(gen, 12, 5, 4, repeat_views=True)
    for logit in (0.0, -2.0, 3.0):
        p = torch.sigmoid(torch.tensor(logit, dtype=torch.float64))
        lcl = MultiLabelLabelAwareContrastiveLoss(0.3, positives)(
            f, y, torch.full((12, 4), logit, dtype=torch.float64)
        )
        scl = MultiLabelSupConLoss(0.3, positives)(f, y)
        torch.testing.assert_close(lcl, p * (scl + p.log()))


# --------------------------------------------------------------------- vectorised (b)


class _CountOps(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("positives", POSITIVES)
def test_vectorised_op_count_does_not_grow_with_batch_or_labels(positives):
    # a Python loop over anchors or labels would dispatch more ops on the larger batch
    counts = []
    for n, c in [(6, 3), (64, 28)]:
        gen = torch.Generator().manual_seed(n)
        f, y, logits = multi_hot_batch(gen, n, 8, c, repeat_views=True, empty_rows=1)
        for loss_fn, inputs in [
            (MultiLabelLabelAwareContrastiveLoss(0.3, positives), (f, y, logits)),
            (MultiLabelSupConLoss(0.3, positives), (f, y)),
        ]:
            inputs = [x.float().requires_grad_() if x.is_floating_point() else x for x in inputs]
            with _CountOps() as mode:
                loss_fn(*inputs).backward()
            counts.append(mode.count)
    assert counts[:2] == counts[2:], counts


# ----------------------------------------------------------------- batch compositions (c)


def _finite_loss_and_grads(loss_fn, f, y, logits=None, dtype=torch.float32):
    f = f.clone().requires_grad_()
    inputs = (f, y) if logits is None else (f, y, logits.clone().requires_grad_())
    value = loss_fn(*inputs)
    assert value.dtype == dtype
    value.backward()
    assert torch.isfinite(value), value
    assert torch.isfinite(f.grad).all()
    if logits is not None:
        assert torch.isfinite(inputs[2].grad).all()
    return value, inputs


def _all_losses(tau=0.3):
    out = []
    for positives in POSITIVES:
        out.append(MultiLabelSupConLoss(tau, positives))
        for activation in ACTIVATIONS:
            out.append(MultiLabelLabelAwareContrastiveLoss(tau, positives, activation))
    return out


def _call(loss_fn, f, y, logits, **kw):
    if isinstance(loss_fn, MultiLabelSupConLoss):
        return _finite_loss_and_grads(loss_fn, f, y, **kw)
    return _finite_loss_and_grads(loss_fn, f, y, logits, **kw)


@pytest.mark.parametrize("loss_fn", _all_losses(), ids=repr)
def test_anchor_without_positive_is_left_out_of_the_mean(loss_fn):
    # row 4's label 3 and row 5's labels appear nowhere else
    gen = torch.Generator().manual_seed(7)
    y = torch.tensor(
        [
            [1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 1, 0, 0, 0],
            [0, 1, 1, 0, 0],
            [0, 0, 1, 1, 0],
            [0, 0, 0, 0, 1],
        ]
    )
    f = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    logits = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    value, _ = _call(loss_fn, f, y, logits, dtype=torch.float64)
    lcl = isinstance(loss_fn, MultiLabelLabelAwareContrastiveLoss)
    ref = reference_loss(
        f,
        y,
        logits if lcl else None,
        0.3,
        loss_fn.positives,
        getattr(loss_fn, "weight_activation", "sigmoid"),
    )
    torch.testing.assert_close(value, ref)
    # no positive anywhere: a zero that belongs to the graph, zero gradients
    one_each = torch.eye(6, 5, dtype=torch.long)  # and row 5 without labels
    value, inputs = _call(loss_fn, f, one_each, logits, dtype=torch.float64)
    assert value.item() == 0.0 and value.requires_grad
    assert all((x.grad == 0).all() for x in inputs if x.is_floating_point())


@pytest.mark.parametrize("loss_fn", _all_losses(), ids=repr)
def test_rows_without_labels_are_left_out(loss_fn):
    gen = torch.Generator().manual_seed(8)
    f, y, logits = multi_hot_batch(gen, 10, 4, 4, repeat_views=True)
    y[[2, 7]] = 0
    keep = torch.tensor([i not in (2, 7) for i in range(10)])
    full, (ff, *_) = _call(loss_fn, f, y, logits, dtype=torch.float64)
    part, _ = _call(loss_fn, f[keep], y[keep], logits[keep], dtype=torch.float64)
    torch.testing.assert_close(full, part)
    assert (ff.grad[~keep] == 0).all()  # not even a candidate
    # a batch of unlabelled rows only
    value, (ff, *_) = _call(loss_fn, f, torch.zeros_like(y), logits, dtype=torch.float64)
    assert value.item() == 0.0 and (ff.grad == 0).all()


@pytest.mark.parametrize("loss_fn", _all_losses(), ids=repr)
def test_same_labels_everywhere_single_sample_and_identical_features(loss_fn):
    gen = torch.Generator().manual_seed(4)
    f = torch.randn(6, 4, generator=gen)
    logits = torch.randn(6, 3, generator=gen)
    for y in (torch.ones(6, 3, dtype=torch.long), torch.tensor([[1, 1, 0]] * 6)):
        v, _ = _call(loss_fn, f, y, logits)  # no negatives
        if isinstance(loss_fn, MultiLabelSupConLoss):
            assert v > 0  # the positives-only denominator still exceeds each positive
    y = torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]])
    v, _ = _call(loss_fn, torch.ones(6, 4), y, logits)  # all similarities equal
    if isinstance(loss_fn, MultiLabelSupConLoss):
        torch.testing.assert_close(v, torch.tensor(math.log(5.0)))
    v, inputs = _call(loss_fn, torch.randn(1, 4), torch.tensor([[1, 0, 1]]), torch.randn(1, 3))
    assert v == 0 and all((x.grad == 0).all() for x in inputs if x.is_floating_point())


@pytest.mark.parametrize("tau", [0.3, 0.01])
@pytest.mark.parametrize("positives", POSITIVES)
def test_extreme_logits_are_finite(tau, positives):
    gen = torch.Generator().manual_seed(4)
    f, y, _ = multi_hot_batch(gen, 8, 16, 5, repeat_views=True)
    f = f.float()
    for activation in ACTIVATIONS:
        loss_fn = MultiLabelLabelAwareContrastiveLoss(tau, positives, activation)
        logits = 1e4 * torch.sign(torch.randn(8, 5, generator=gen))
        _call(loss_fn, f, y, logits)
        logits = torch.full((8, 5), -1e4)  # every sigmoid probability underflows
        v, _ = _call(loss_fn, f, y, logits)
        if activation == "sigmoid":
            assert v.abs() < 1e-6
        big = torch.full((8, 5), 6e4, dtype=torch.float16)  # near float16's max
        big[:, 0] = -6e4
        _call(loss_fn, f.half(), y, big)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("loss_fn", _all_losses(0.1), ids=repr)
def test_half_precision_inputs_are_computed_in_float32(loss_fn, dtype):
    gen = torch.Generator().manual_seed(5)
    f32, y, l32 = multi_hot_batch(gen, 16, 32, 6, repeat_views=True)
    f, logits = f32.to(dtype), (1.5 * l32).to(dtype)
    value, inputs = _call(loss_fn, f, y, logits)
    assert inputs[0].grad.dtype == dtype
    lcl = isinstance(loss_fn, MultiLabelLabelAwareContrastiveLoss)
    exact = loss_fn(f.float(), y, logits.float()) if lcl else loss_fn(f.float(), y)
    torch.testing.assert_close(value, exact)


@pytest.mark.parametrize(
    "loss_fn",
    [SupConLoss(0.1), LabelAwareContrastiveLoss(0.1), *_all_losses(0.1)],
    ids=repr,
)
def test_bf16_autocast_around_the_loss_changes_nothing(loss_fn):
    # a Trainer with --precision bf16 runs the model's forward, and so the loss, under
    # autocast; the cores must still compute (and differentiate) in float32
    gen = torch.Generator().manual_seed(9)
    f64, y, l64 = multi_hot_batch(gen, 16, 32, 6, repeat_views=True, max_labels=1)
    if isinstance(loss_fn, (SupConLoss, LabelAwareContrastiveLoss)):
        y = y.argmax(dim=1)  # one label per row: the single-label losses
    weighted = isinstance(loss_fn, (LabelAwareContrastiveLoss, MultiLabelLabelAwareContrastiveLoss))
    results = []
    for enabled in (False, True):
        f, logits = f64.float().requires_grad_(), l64.float().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            value = loss_fn(f, y, logits) if weighted else loss_fn(f, y)
        value.backward()
        results.append((value.detach(), f.grad, logits.grad if weighted else None))
    (v0, g0, w0), (v1, g1, w1) = results
    assert v1.dtype == torch.float32
    torch.testing.assert_close(v1, v0)
    torch.testing.assert_close(g1, g0)
    if weighted:
        torch.testing.assert_close(w1, w0)


def test_label_dtypes_and_scale_invariance():
    gen = torch.Generator().manual_seed(2)
    f, y, logits = multi_hot_batch(gen, 10, 6, 4, repeat_views=True)
    loss = MultiLabelLabelAwareContrastiveLoss(0.3)
    a = loss(f, y, logits)
    for labels in (y.bool(), y.float(), y.to(torch.uint8)):
        torch.testing.assert_close(loss(f, labels, logits), a)
    torch.testing.assert_close(loss(7.5 * f, y, logits), a)


def test_detach_weights():
    gen = torch.Generator().manual_seed(6)
    f, y, logits = multi_hot_batch(gen, 10, 4, 3, repeat_views=True)
    for detach in (False, True):
        fr, lr = f.clone().requires_grad_(), logits.clone().requires_grad_()
        MultiLabelLabelAwareContrastiveLoss(0.3, detach_weights=detach)(fr, y, lr).backward()
        assert (lr.grad is not None and lr.grad.abs().sum() > 0) == (not detach)
        assert fr.grad.abs().sum() > 0


def test_input_validation():
    f, y = torch.randn(4, 3), torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]])
    lcl, scl = MultiLabelLabelAwareContrastiveLoss(0.3), MultiLabelSupConLoss(0.3)
    with pytest.raises(ValueError, match="multi-hot"):
        scl(f, torch.tensor([0, 0, 1, 1]))  # class ids
    with pytest.raises(ValueError, match="0 or 1"):
        scl(f, 2 * y)
    with pytest.raises(ValueError):
        scl(f, y[:3])
    with pytest.raises(ValueError):
        scl(f[0], y)
    with pytest.raises(ValueError):
        lcl(f, y, torch.randn(4, 3))
    with pytest.raises(ValueError):
        lcl(f, y, None)
    with pytest.raises(ValueError):
        MultiLabelSupConLoss(0.0)
    with pytest.raises(ValueError):
        MultiLabelSupConLoss(0.3, positives="any")
    with pytest.raises(ValueError):
        MultiLabelLabelAwareContrastiveLoss(0.3, weight_activation="relu")


# --------------------------------------------------------- gathered across processes (d)

WORLD = 2
# name -> (loss, positives, labels of the global batch, rows of rank 0)
DIST_CASES = {
    # two views, equal shards
    "lcl_views": ("lcl", "mulsupcon", [[0, 1], [2], [3, 4], [0], [1, 5], [2, 6]] * 2, 6),
    # uneven shards, positives across shards, an unlabelled row
    "lcl_uneven": ("lcl", "mulsupcon", [[0, 1], [1], [2], [], [3], [0, 3], [2, 4], [5]], 5),
    "lcl_jaccard": ("lcl", "jaccard", [[0, 1], [1], [2], [], [3], [0, 3], [2, 4], [5]], 3),
    # rank 1 holds no anchor with a positive
    "lcl_empty_shard": ("lcl", "mulsupcon", [[0], [0, 1], [1], [2], [3], [4]], 3),
    "scl_uneven": ("scl", "mulsupcon", [[0, 1], [1], [2], [], [3], [0, 3], [2, 4], [5]], 5),
    "scl_jaccard": ("scl", "jaccard", [[0, 1], [2], [3, 4], [0], [1, 5], [2, 6]] * 2, 7),
}
DIST_CLASSES = 7


def _dist_inputs(name):
    _, _, sets, _ = DIST_CASES[name]
    y = torch.zeros(len(sets), DIST_CLASSES, dtype=torch.long)
    for i, s in enumerate(sets):
        y[i, s] = 1
    gen = torch.Generator().manual_seed(len(name))
    return (
        torch.randn(len(sets), 5, generator=gen),
        y,
        torch.randn(len(sets), DIST_CLASSES, generator=gen),
    )


def _dist_loss(name, f, y, logits):
    kind, positives, _, _ = DIST_CASES[name]
    f, logits = f.clone().requires_grad_(), logits.clone().requires_grad_()
    if kind == "scl":
        value = MultiLabelSupConLoss(0.3, positives)(f, y)
    else:
        value = MultiLabelLabelAwareContrastiveLoss(0.3, positives)(f, y, logits)
    value.backward()
    return value.detach(), f.grad, logits.grad


def _dist_worker(rank, port, path):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    results = {}
    for name, (_, _, sets, rank0_rows) in DIST_CASES.items():
        rows = slice(0, rank0_rows) if rank == 0 else slice(rank0_rows, len(sets))
        f, y, logits = _dist_inputs(name)
        results[name] = _dist_loss(name, f[rows], y[rows], logits[rows])
    torch.save(results, f"{path}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    return spawn_ranks(_dist_worker, tmp_path_factory.mktemp("ddp_multilabel"), WORLD)


@pytest.mark.parametrize("name", list(DIST_CASES))
def test_gathered_loss_equals_single_process_loss(two_process_results, name):
    value, f_grad, l_grad = _dist_loss(name, *_dist_inputs(name))
    per_rank = [res[name] for res in two_process_results]
    # the mean over processes is the full-batch loss ...
    torch.testing.assert_close(sum(v for v, _, _ in per_rank) / WORLD, value)
    # ... and the per-process gradients, averaged as DDP does, are the full-batch ones
    torch.testing.assert_close(
        torch.cat([g for _, g, _ in per_rank]) / WORLD, f_grad, rtol=1e-5, atol=1e-6
    )
    if DIST_CASES[name][0] == "lcl":
        torch.testing.assert_close(
            torch.cat([g for _, _, g in per_rank]) / WORLD, l_grad, rtol=1e-5, atol=1e-6
        )
        assert l_grad.abs().sum() > 0
