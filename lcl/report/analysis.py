"""Analysis: the numbers the figures and captions show (no plotting, no HTML)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

TSNE_MAX_POINTS = 2000

# Titles of the loss parts the built-in objectives log; any other ``loss_<name>`` key of
# history.json gets a title made from its name (``loss_foo_bar`` -> "Foo bar loss").
LOSS_PART_TITLES = {
    "loss": "Total training loss",
    "loss_ce": "Cross-entropy loss",
    "loss_contrastive": "Contrastive loss",
    "loss_weighting_ce": "Weighting-network CE loss",
}

Series = tuple[list[float], list[float]]


def row_normalise(matrix: np.ndarray) -> np.ndarray:
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix, dtype=float), where=sums > 0)


def cluster_order(confusion: np.ndarray) -> list[int]:
    """Class order that puts mutually confused classes next to each other.

    Average-linkage clustering of the rows of the row-normalised confusion
    matrix, leaves in optimal order (so neighbours within a cluster are similar).
    """
    from scipy.cluster.hierarchy import leaves_list, linkage

    rows = row_normalise(np.asarray(confusion, dtype=float))
    if rows.shape[0] < 3:
        return list(range(rows.shape[0]))
    tree = linkage(rows, method="average", metric="euclidean", optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)]


def top_confusions(
    matrix: np.ndarray, names: Sequence[str], k: int = 3
) -> list[tuple[str, str, float]]:
    """The ``k`` largest off-diagonal entries as (true class, predicted class, value)."""
    off = matrix.copy()
    np.fill_diagonal(off, -np.inf)
    flat = np.argsort(off, axis=None)[::-1]
    out = []
    for pos in flat[:k]:
        i, j = np.unravel_index(pos, off.shape)
        if off[i, j] <= 0:
            break
        out.append((names[i], names[j], float(off[i, j])))
    return out


def loss_part_title(key: str) -> str:
    if key in LOSS_PART_TITLES:
        return LOSS_PART_TITLES[key]
    words = key.removeprefix("loss_").replace("_", " ").strip()
    return f"{words[:1].upper()}{words[1:]} loss" if words else key


def is_loss_part(key: str, value: Any) -> bool:
    """A logged training-loss value: ``loss`` or ``loss_<part>``, a number."""
    return (
        (key == "loss" or key.startswith("loss_"))
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    )


def label_confusion_rates(confusion: np.ndarray, support: Sequence[int]) -> np.ndarray:
    """A multi-label run's label confusion (counts; row ``i`` the texts labelled ``i``) as
    shares of those ``support[i]`` texts: the diagonal is each class's recall, ``[i, j]`` the
    share of the texts of ``i`` wrongly given ``j``."""
    totals = np.asarray(support, dtype=float)[:, None]
    matrix = np.asarray(confusion, dtype=float)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def training_series(
    history: list[dict[str, Any]] | None, metric: str = "accuracy"
) -> tuple[dict[str, Series], Series]:
    """Loss parts per logged step (every ``loss*`` key of the log) and the validation
    ``metric`` (the run's headline: accuracy, or macro-F1 for multi-label) per epoch; empty for
    a run without history."""
    key_eval = f"eval_{metric}"
    losses: dict[str, Series] = {}
    val_x: list[float] = []
    val_y: list[float] = []
    for entry in history or []:
        if not isinstance(entry, dict) or "train_runtime" in entry:
            continue
        if key_eval in entry:
            val_x.append(float(entry.get("epoch", len(val_x) + 1)))
            val_y.append(float(entry[key_eval]))
            continue
        if any(k.startswith("eval_") for k in entry):
            continue
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            if is_loss_part(key, value):
                xs, ys = losses.setdefault(key, ([], []))
                xs.append(float(step))
                ys.append(float(value))
    return losses, (val_x, val_y)


def loss_part_keys(all_losses: Sequence[dict[str, Series]]) -> list[str]:
    """The loss parts of any run: the built-in ones in their usual order, then the others in
    the order they first appear."""
    keys: list[str] = [k for k in LOSS_PART_TITLES if any(k in s for s in all_losses)]
    for losses in all_losses:
        keys.extend(k for k in losses if k not in keys)
    return keys


def same_series(a: Series | None, b: Series) -> bool:
    return a is not None and len(a[1]) == len(b[1]) and bool(np.allclose(a[1], b[1]))


def confusability_source(conf: dict[str, Any]) -> str:
    """Where a confusability map comes from, in words."""
    source = str(conf.get("source", "unknown source"))
    pretty = {"weighting_network": "weighting network", "main_model": "main model"}.get(
        source, source
    )
    split = conf.get("split", "validation")
    return f"source: {pretty}, {split} split"


def project_2d(emb: np.ndarray, seed: int) -> np.ndarray:
    """2-D coordinates of the embeddings: t-SNE, or PCA when there are too few points."""
    n = len(emb)
    if n == 0:
        return np.zeros((0, 2))
    if n < 5 or emb.shape[1] < 2:
        # Too few points for t-SNE's perplexity; a plain PCA projection will do.
        centred = emb - emb.mean(axis=0)
        if emb.shape[1] >= 2 and n >= 2:
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            return centred @ vt[:2].T
        return np.column_stack([centred[:, 0], np.zeros(n)])
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, (n - 1) / 3.0))
    # 750 iterations look converged for a picture at ~60% of the default's cost;
    # the keyword was renamed in scikit-learn 1.5.
    iters = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    # Embeddings are L2-normalised, so euclidean ranks neighbours like cosine.
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        random_state=seed,
        **{iters: 750},
    )
    # One thread: on a busy or small machine OpenMP oversubscription made t-SNE
    # 3-15x slower (measured), and at <=2000 points one core is quick enough.
    with threadpool_limits(limits=1):
        return tsne.fit_transform(emb.astype(np.float32))
