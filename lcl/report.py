"""HTML report for one or several training runs written by ``lcl train``.

``build_report(run_dirs, output_dir=None)`` reads each run directory and writes
``report.html`` plus the PNG figures it shows into ``output_dir``:

* one run: ``output_dir`` defaults to the run directory itself;
* several runs: it defaults to ``<common parent of the runs>/report``
  (e.g. ``runs/sst5/ce-0`` and ``runs/sst5/lcl-0`` -> ``runs/sst5/report``).

The HTML embeds every figure as a base64 data URI, so it can be moved or mailed
on its own; the PNGs are written beside it for use in slides and papers.

Figures (per-run ones get a ``_<run slug>`` suffix when there are several runs):

* ``confusion_matrix*.png``  row-normalised test confusion matrix, classes in a
  shared hierarchical-clustering order taken from the first run;
* ``per_class_f1.png``       per-class test F1 (and differences vs. the first run);
* ``confusability*.png``     the class-confusability map from ``confusability.json``;
* ``embeddings_tsne*.png``   t-SNE of the test embeddings, coloured by true class;
* ``training_curves.png``    loss parts per step and validation accuracy per epoch.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import inspect
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import yaml
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lcl.io import atomic_write_bytes

__all__ = [
    "REQUIRED_FILES",
    "ReportError",
    "RunData",
    "build_report",
    "cluster_order",
    "load_run",
]

REQUIRED_FILES: tuple[str, ...] = (
    "config.yaml",
    "metrics.json",
    "predictions.jsonl",
    "history.json",
    "confusability.json",
    "test_embeddings.npy",
)

TSNE_MAX_POINTS = 2000
_DPI = 110
_LOSS_PARTS = (
    ("loss", "Total training loss"),
    ("loss_ce", "Cross-entropy loss"),
    ("loss_contrastive", "Contrastive loss"),
    ("loss_weighting_ce", "Weighting-network CE loss"),
)
_RUN_COLOURS = colormaps["tab10"].colors


class ReportError(ValueError):
    """A run directory is missing, incomplete or inconsistent."""


@dataclass
class RunData:
    """Everything the report needs from one run directory."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    label_names: list[str]
    predictions: list[dict[str, Any]]
    history: list[dict[str, Any]]
    confusability: dict[str, Any]
    embeddings: np.ndarray
    label: str = ""
    slug: str = ""
    # Derived, in ``label_names`` order.
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    confusability_matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    true_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


# --------------------------------------------------------------------------- loading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path.name} in {path.parent} is not valid JSON: {exc}") from exc


def _label_index(value: Any, names: Sequence[str], where: str) -> int:
    # Labels are written as names, but accept integer ids too.
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if 0 <= int(value) < len(names):
            return int(value)
    elif isinstance(value, str) and value in names:
        return names.index(value)
    raise ReportError(f"{where}: unknown label {value!r}")


def _reindex(matrix: Any, own: Sequence[str], target: Sequence[str], what: str) -> np.ndarray:
    arr = np.asarray(matrix, dtype=float)
    if arr.shape != (len(own), len(own)):
        raise ReportError(f"{what} has shape {arr.shape}, expected {(len(own), len(own))}")
    idx = [list(own).index(name) for name in target]
    return arr[np.ix_(idx, idx)]


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read and validate one run directory; raise :class:`ReportError` if unusable."""
    path = Path(run_dir)
    if not path.exists():
        raise ReportError(f"run directory {path} does not exist")
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ReportError(
            f"run directory {path} is incomplete: missing {', '.join(missing)} "
            "(was `lcl train` interrupted?)"
        )

    try:
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ReportError(f"config.yaml in {path} is not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ReportError(f"config.yaml in {path} is not a mapping")

    metrics = _read_json(path / "metrics.json")
    for key in ("label_names", "test"):
        if key not in metrics:
            raise ReportError(f"metrics.json in {path} has no {key!r} entry")
    for key in ("per_class", "confusion_matrix"):
        if key not in metrics["test"]:
            raise ReportError(f"metrics.json in {path} has no test.{key} entry")
    names = [str(n) for n in metrics["label_names"]]
    if not names:
        raise ReportError(f"metrics.json in {path} has an empty label_names list")

    predictions = []
    with (path / "predictions.jsonl").open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                predictions.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ReportError(
                    f"predictions.jsonl in {path}, line {lineno}, is not valid JSON: {exc}"
                ) from exc
    true_idx = np.array(
        [_label_index(p.get("label"), names, f"predictions.jsonl in {path}") for p in predictions],
        dtype=int,
    )

    history = _read_json(path / "history.json")
    if not isinstance(history, list):
        raise ReportError(f"history.json in {path} should hold a list of log entries")

    conf = _read_json(path / "confusability.json")
    if "matrix" not in conf:
        raise ReportError(f"confusability.json in {path} has no 'matrix' entry")
    conf_names = [str(n) for n in conf.get("label_names", names)]
    if sorted(conf_names) != sorted(names):
        raise ReportError(f"confusability.json in {path} has different label names than metrics.json")

    try:
        embeddings = np.load(path / "test_embeddings.npy", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ReportError(f"test_embeddings.npy in {path} cannot be read: {exc}") from exc
    if embeddings.ndim != 2 or embeddings.shape[0] != len(predictions):
        raise ReportError(
            f"test_embeddings.npy in {path} has shape {embeddings.shape}; expected "
            f"({len(predictions)}, D) to match predictions.jsonl"
        )

    return RunData(
        path=path,
        config=config,
        metrics=metrics,
        label_names=names,
        predictions=predictions,
        history=history,
        confusability=conf,
        embeddings=np.asarray(embeddings, dtype=np.float64),
        confusion=_reindex(metrics["test"]["confusion_matrix"], names, names, f"{path}/metrics.json confusion_matrix"),
        confusability_matrix=_reindex(conf["matrix"], conf_names, names, f"{path}/confusability.json matrix"),
        true_idx=true_idx,
    )


def _align(runs: list[RunData]) -> None:
    """Put every run's per-class data into the first run's label order."""
    ref = runs[0].label_names
    for run in runs[1:]:
        if sorted(run.label_names) != sorted(ref):
            raise ReportError(
                f"{run.path} has different classes than {runs[0].path}; "
                "only runs on the same dataset can share a report"
            )
        if run.label_names == ref:
            continue
        run.confusion = _reindex(run.confusion, run.label_names, ref, "confusion matrix")
        run.confusability_matrix = _reindex(run.confusability_matrix, run.label_names, ref, "confusability")
        remap = np.array([ref.index(n) for n in run.label_names], dtype=int)
        run.true_idx = remap[run.true_idx]
        run.label_names = list(ref)


# --------------------------------------------------------------------------- naming


def _base_label(run: RunData, show_dataset: bool) -> str:
    cfg = run.config
    loss = cfg.get("loss")
    if not loss:
        return run.path.resolve().name
    parts = [str(loss)]
    if str(loss).lower() == "lcl":
        if cfg.get("weighting") not in (None, "network"):
            parts[0] += f" ({cfg['weighting']})"
        if cfg.get("detach_weights"):
            parts[0] += " detached"
    if show_dataset and cfg.get("dataset"):
        parts.insert(0, str(cfg["dataset"]))
    if cfg.get("seed") is not None:
        parts.append(f"seed {cfg['seed']}")
    return " · ".join(parts)


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


def _assign_names(runs: list[RunData]) -> None:
    datasets = {str(r.config.get("dataset")) for r in runs}
    labels = [_base_label(r, show_dataset=len(datasets) > 1) for r in runs]
    # Duplicates: add the directory name, then a counter if that is not enough.
    base = list(labels)
    for i, run in enumerate(runs):
        name = run.path.resolve().name
        if base.count(base[i]) > 1 and name != base[i]:
            labels[i] = f"{base[i]} [{name}]"
    seen: dict[str, int] = {}
    snapshot = list(labels)
    for i, lab in enumerate(snapshot):
        if snapshot.count(lab) > 1:
            seen[lab] = seen.get(lab, 0) + 1
            labels[i] = f"{lab} #{seen[lab]}"
    slugs: list[str] = []
    for run, lab in zip(runs, labels):
        slug = _slugify(lab)
        base, k = slug, 2
        while slug in slugs:
            slug, k = f"{base}-{k}", k + 1
        slugs.append(slug)
        run.label, run.slug = lab, slug


# --------------------------------------------------------------------------- analysis


def _row_normalise(matrix: np.ndarray) -> np.ndarray:
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix, dtype=float), where=sums > 0)


def cluster_order(confusion: np.ndarray) -> list[int]:
    """Class order that puts mutually confused classes next to each other.

    Average-linkage clustering of the rows of the row-normalised confusion
    matrix, leaves in optimal order (so neighbours within a cluster are similar).
    """
    from scipy.cluster.hierarchy import leaves_list, linkage

    rows = _row_normalise(np.asarray(confusion, dtype=float))
    if rows.shape[0] < 3:
        return list(range(rows.shape[0]))
    tree = linkage(rows, method="average", metric="euclidean", optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)]


def _top_confusions(matrix: np.ndarray, names: Sequence[str], k: int = 3) -> list[tuple[str, str, float]]:
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


def _training_series(history: list[dict[str, Any]]) -> tuple[dict[str, tuple[list, list]], tuple[list, list]]:
    losses: dict[str, tuple[list, list]] = {}
    val_x: list[float] = []
    val_y: list[float] = []
    for entry in history:
        if not isinstance(entry, dict) or "train_runtime" in entry:
            continue
        if "eval_accuracy" in entry:
            val_x.append(float(entry.get("epoch", len(val_x) + 1)))
            val_y.append(float(entry["eval_accuracy"]))
            continue
        if any(k.startswith("eval_") for k in entry):
            continue
        step = entry.get("step")
        for key, _ in _LOSS_PARTS:
            if key in entry and step is not None and entry[key] is not None:
                xs, ys = losses.setdefault(key, ([], []))
                xs.append(float(step))
                ys.append(float(entry[key]))
    return losses, (val_x, val_y)


# --------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly; no pyplot, so no global backend state.
    return fig


def _png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    return buf.getvalue()


def _class_colours(n: int) -> list:
    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    pool = list(colormaps["tab20"].colors) + list(colormaps["tab20b"].colors) + list(colormaps["tab20c"].colors)
    if n <= len(pool):
        return pool[:n]
    return [colormaps["hsv"](i / n) for i in range(n)]


def _tick_font(n: int) -> float:
    return 10 if n <= 10 else 9 if n <= 20 else 8 if n <= 35 else 6


def _heatmap(
    ax,
    matrix: np.ndarray,
    names: Sequence[str],
    cmap: str,
    vmax: float,
    xlabel: str,
    ylabel: str,
):
    n = len(names)
    im = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest", aspect="equal")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    font = _tick_font(n)
    ax.set_xticklabels(names, rotation=90 if n > 12 else 50, ha="center" if n > 12 else "right",
                       rotation_mode="default" if n > 12 else "anchor", fontsize=font)
    ax.set_yticklabels(names, fontsize=font)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(length=0)
    if n <= 15:
        cmap_obj = colormaps[cmap]
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                if v < 0.005:
                    continue
                rgb = cmap_obj(v / vmax if vmax > 0 else 0)[:3]
                dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 0.5
                ax.text(j, i, f"{v:.2f}".lstrip("0") if v < 1 else "1", ha="center", va="center",
                        fontsize=8 if n <= 10 else 6.5, color="white" if dark else "#222")
    return im


def _matrix_figsize(n: int) -> tuple[float, float]:
    side = min(max(0.26 * n + 2.8, 5.2), 14.0)
    return side + 1.0, side


def _fig_confusion(run: RunData, order: list[int]) -> bytes:
    names = [run.label_names[i] for i in order]
    mat = _row_normalise(run.confusion)[np.ix_(order, order)]
    fig = _new_figure(*_matrix_figsize(len(names)))
    ax = fig.add_subplot()
    im = _heatmap(ax, mat, names, "Blues", 1.0, "Predicted class", "True class")
    acc = run.metrics["test"].get("accuracy")
    title = f"{run.label}: test confusion (row-normalised)"
    if acc is not None:
        title += f"\naccuracy {float(acc):.1%}"
    ax.set_title(title, fontsize=11)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class")
    return _png_bytes(fig)


def _fig_confusability(run: RunData, order: list[int]) -> bytes:
    names = [run.label_names[i] for i in order]
    mat = run.confusability_matrix[np.ix_(order, order)]
    vmax = float(np.nanmax(mat)) if mat.size else 1.0
    fig = _new_figure(*_matrix_figsize(len(names)))
    ax = fig.add_subplot()
    im = _heatmap(ax, mat, names, "Purples", vmax if vmax > 0 else 1.0, "Predicted class (mean probability)", "True class")
    ax.set_title(f"{run.label}: confusability\n{_source_title(run.confusability)}", fontsize=11)
    fig.colorbar(im, ax=ax, shrink=0.8, label="mean softmax probability")
    return _png_bytes(fig)


def _source_title(conf: dict[str, Any]) -> str:
    source = str(conf.get("source", "unknown source"))
    pretty = {"weighting_network": "weighting network", "main_model": "main model"}.get(source, source)
    split = conf.get("split", "validation")
    return f"source: {pretty}, {split} split"


def _fig_per_class_f1(runs: list[RunData], order: list[int]) -> bytes:
    names = [runs[0].label_names[i] for i in order]
    n = len(names)
    f1 = np.array(
        [[float(r.metrics["test"]["per_class"].get(name, {}).get("f1", np.nan)) for name in names] for r in runs]
    )
    k = len(runs)
    height = min(max(0.22 * n * max(1.0, 0.55 * k) + 1.6, 3.5), 22.0)
    fig = _new_figure(11.0 if k > 1 else 8.0, height)
    if k > 1:
        ax, ax_diff = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    else:
        ax, ax_diff = fig.add_subplot(), None
    y = np.arange(n)
    bar_h = 0.8 / k
    for r_i, run in enumerate(runs):
        offset = (r_i - (k - 1) / 2) * bar_h
        ax.barh(y + offset, f1[r_i], height=bar_h, color=_RUN_COLOURS[r_i % 10], label=run.label)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=_tick_font(n))
    ax.invert_yaxis()  # first class at the top, like the heatmaps
    ax.set_xlim(0, 1)
    ax.set_xlabel("test F1")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Per-class F1 (classes in confusion-matrix order)", fontsize=11)
    if k > 1:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    if ax_diff is not None:
        bar_d = 0.8 / (k - 1)
        for r_i in range(1, k):
            diff = f1[r_i] - f1[0]
            offset = (r_i - 1 - (k - 2) / 2) * bar_d
            colours = ["#2e9d57" if d >= 0 else "#d0473d" for d in np.nan_to_num(diff)]
            ax_diff.barh(y + offset, diff, height=bar_d, color=colours,
                         edgecolor=_RUN_COLOURS[r_i % 10] if k > 2 else "none", linewidth=1.2)
        lim = float(np.nanmax(np.abs(f1[1:] - f1[0]))) if np.isfinite(f1).any() else 0.1
        lim = max(lim * 1.1, 0.05)
        ax_diff.set_xlim(-lim, lim)
        ax_diff.axvline(0, color="#444", linewidth=0.8)
        ax_diff.grid(axis="x", alpha=0.3)
        ax_diff.set_xlabel(f"F1 difference vs. {runs[0].label}")
        others = ", ".join(r.label for r in runs[1:])
        ax_diff.set_title(f"{others}\nminus {runs[0].label}", fontsize=10)
        ax_diff.tick_params(axis="y", length=0)
    return _png_bytes(fig)


def _fig_tsne(run: RunData, max_points: int, seed: int) -> bytes:
    emb = run.embeddings
    labels = run.true_idx
    rng = np.random.default_rng(seed)
    if len(emb) > max_points:
        keep = np.sort(rng.choice(len(emb), size=max_points, replace=False))
        emb, labels = emb[keep], labels[keep]
    coords = _project_2d(emb, seed)
    names = run.label_names
    n = len(names)
    colours = _class_colours(n)
    legend_cols = 1 if n <= 16 else 2 if n <= 40 else 3
    fig = _new_figure(7.0 + 1.6 * legend_cols, 6.4)
    ax = fig.add_subplot()
    for c in range(n):
        mask = labels == c
        if not mask.any():
            continue
        ax.scatter(coords[mask, 0], coords[mask, 1], s=14 if len(coords) > 500 else 24,
                   color=colours[c], label=names[c], alpha=0.8, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    shown = f"{len(coords)} of {len(run.embeddings)}" if len(coords) < len(run.embeddings) else f"{len(coords)}"
    ax.set_title(f"{run.label}: t-SNE of test embeddings ({shown} points)", fontsize=11)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=_tick_font(n), ncols=legend_cols,
              frameon=False, markerscale=1.3, handletextpad=0.3, columnspacing=0.8)
    return _png_bytes(fig)


def _project_2d(emb: np.ndarray, seed: int) -> np.ndarray:
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
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed, **{iters: 750})
    # One thread: on a busy or small machine OpenMP oversubscription made t-SNE
    # 3-15x slower (measured), and at <=2000 points one core is quick enough.
    with threadpool_limits(limits=1):
        return tsne.fit_transform(emb.astype(np.float32))


def _same_series(a: tuple[list, list] | None, b: tuple[list, list]) -> bool:
    return a is not None and len(a[1]) == len(b[1]) and bool(np.allclose(a[1], b[1]))


def _fig_training(runs: list[RunData]) -> bytes:
    series = [_training_series(r.history) for r in runs]
    panels: list[tuple[str, str]] = []
    for key, title in _LOSS_PARTS:
        present = [s[0][key] for s in series if key in s[0]]
        if not present:
            continue
        if key == "loss_ce" and all(_same_series(s[0].get("loss"), s[0]["loss_ce"]) for s in series if key in s[0]):
            continue  # plain CE runs only: the CE part is the total loss, skip the duplicate panel
        panels.append((key, title))
    panels.append(("val", "Validation accuracy"))
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(4.2 * ncols, 3.3 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (key, title) in zip(axes, panels):
        for r_i, (run, (losses, (vx, vy))) in enumerate(zip(runs, series)):
            colour = _RUN_COLOURS[r_i % 10]
            if key == "val":
                if vx:
                    ax.plot(vx, vy, marker="o", markersize=4, color=colour, label=run.label)
                    best = run.metrics.get("best_epoch")
                    if best is not None:
                        hits = [i for i, e in enumerate(vx) if round(e) == int(best)]
                        if hits:
                            ax.plot(vx[hits[-1]], vy[hits[-1]], marker="*", markersize=13, color=colour,
                                    markeredgecolor="black", linestyle="none")
            elif key in losses:
                xs, ys = losses[key]
                ax.plot(xs, ys, color=colour, linewidth=1.3, label=run.label)
        ax.set_title(title, fontsize=10.5)
        ax.set_xlabel("epoch" if key == "val" else "step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if not ax.has_data():
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="#888")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[len(panels) - 1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncols=min(len(runs), 4), fontsize=9, frameon=False)
    return _png_bytes(fig)


@dataclass
class _Image:
    filename: str
    data: bytes
    caption: str = ""
    alt: str = ""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt_pct(value: Any) -> str:
    try:
        return f"{float(value) * 100:.2f}%"
    except (TypeError, ValueError):
        return "–"


def _fmt_float(value: Any, digits: int = 3) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "–"


def _fmt_runtime(value: Any) -> str:
    try:
        secs = float(value)
    except (TypeError, ValueError):
        return "–"
    if secs < 60:
        return f"{secs:.1f} s"
    mins, secs = divmod(int(round(secs)), 60)
    if mins < 60:
        return f"{mins} min {secs:02d} s"
    hours, mins = divmod(mins, 60)
    return f"{hours} h {mins:02d} min"


def _fmt_delta_pp(a: Any, b: Any) -> str:
    try:
        d = (float(b) - float(a)) * 100
    except (TypeError, ValueError):
        return "–"
    return f"{d:+.2f} pp"


_HEADLINE = (
    ("test", "accuracy", "Test accuracy", "pct"),
    ("test", "macro_f1", "Test macro-F1", "pct"),
    ("test", "weighted_f1", "Test weighted-F1", "pct"),
    ("test", "mean_entropy", "Test mean entropy", "float"),
    ("validation", "accuracy", "Val. accuracy", "pct"),
    ("validation", "weighted_f1", "Val. weighted-F1", "pct"),
)


def _headline_table(runs: list[RunData]) -> str:
    head = "".join(f"<th>{_e(t)}</th>" for _, _, t, _ in _HEADLINE)
    rows = []
    for r_i, run in enumerate(runs):
        cells = []
        for split, key, _, kind in _HEADLINE:
            v = (run.metrics.get(split) or {}).get(key)
            cells.append(f"<td>{_e(_fmt_pct(v) if kind == 'pct' else _fmt_float(v))}</td>")
        swatch = f'<span class="swatch" style="background:{_hex(_RUN_COLOURS[r_i % 10])}"></span>'
        rows.append(
            f"<tr><th scope='row'>{swatch}{_e(run.label)}</th>{''.join(cells)}"
            f"<td>{_e(run.metrics.get('best_epoch', '–'))}</td>"
            f"<td>{_e(_fmt_runtime(run.metrics.get('runtime_seconds')))}</td></tr>"
        )
    for run in runs[1:]:
        cells = []
        for split, key, _, kind in _HEADLINE:
            a = (runs[0].metrics.get(split) or {}).get(key)
            b = (run.metrics.get(split) or {}).get(key)
            text = _fmt_delta_pp(a, b) if kind == "pct" else (
                f"{float(b) - float(a):+.3f}" if a is not None and b is not None else "–")
            cls = ""
            if text.startswith("+") and kind == "pct" and not text.startswith("+0.00"):
                cls = " class='up'"
            elif text.startswith("-") and kind == "pct":
                cls = " class='down'"
            cells.append(f"<td{cls}>{_e(text)}</td>")
        rows.append(
            f"<tr class='delta'><th scope='row'>Δ {_e(run.label)} − {_e(runs[0].label)}</th>"
            f"{''.join(cells)}<td></td><td></td></tr>"
        )
    return (
        "<table class='metrics'><thead><tr><th>Run</th>"
        f"{head}<th>Best epoch</th><th>Runtime</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgb[:3])


def _flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _config_value(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"  # as written in config.yaml
    return str(value)


def _config_table(runs: list[RunData]) -> str:
    flats = [_flatten(r.config) for r in runs]
    keys: list[str] = []
    for flat in flats:
        keys.extend(k for k in flat if k not in keys)
    head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
    rows = []
    for key in keys:
        values = [_config_value(f[key]) if key in f else "–" for f in flats]
        differs = len(runs) > 1 and len(set(values)) > 1
        cls = " class='differs'" if differs else ""
        cells = "".join(f"<td>{_e(v)}</td>" for v in values)
        rows.append(f"<tr{cls}><th scope='row'>{_e(key)}</th>{cells}</tr>")
    note = "<p class='note'>Highlighted rows differ between runs.</p>" if len(runs) > 1 else ""
    return (
        f"{note}<table class='config'><thead><tr><th>Key</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _figure_html(img: _Image) -> str:
    uri = "data:image/png;base64," + base64.b64encode(img.data).decode("ascii")
    caption = f"<div class='cap'>{img.caption}</div>" if img.caption else ""
    return (
        f"<figure><img src='{uri}' alt='{_e(img.alt or img.filename)}' data-file='{_e(img.filename)}'>"
        f"<figcaption>{caption}<a class='file' href='{_e(img.filename)}'>{_e(img.filename)}</a>"
        f"</figcaption></figure>"
    )


def _section(title: str, intro: str, body: str, sid: str) -> str:
    intro_html = f"<p class='intro'>{intro}</p>" if intro else ""
    return f"<section id='{sid}'><h2>{_e(title)}</h2>{intro_html}{body}</section>"


def _grid(images: Iterable[_Image], wide: bool = False) -> str:
    cls = "grid wide" if wide else "grid"
    return f"<div class='{cls}'>{''.join(_figure_html(i) for i in images)}</div>"


def _confusion_caption(matrix: np.ndarray, names: Sequence[str], fmt) -> str:
    top = _top_confusions(matrix, names)
    if not top:
        return "No confusions."
    items = ", ".join(f"{_e(a)} → {_e(b)} ({fmt(v)})" for a, b, v in top)
    return f"Most confused: {items}"


_CSS = """
:root { --fg:#1f2430; --muted:#5b6475; --line:#e3e6ec; --bg:#f5f6f8; --card:#fff; --accent:#2f5bb7; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1f2a44; color:#fff; padding:22px 32px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header .sub { color:#c9d2e6; font-size:14px; }
header .runs { margin-top:8px; display:flex; flex-wrap:wrap; gap:8px; }
header .runs span { background:rgba(255,255,255,.12); border-radius:12px; padding:2px 10px; font-size:13px; }
nav { background:#fff; border-bottom:1px solid var(--line); padding:8px 32px; font-size:14px;
      position:sticky; top:0; z-index:2; }
nav a { color:var(--accent); text-decoration:none; margin-right:18px; }
main { max-width:1400px; margin:0 auto; padding:20px 32px 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:18px 22px;
          margin:0 0 20px; box-shadow:0 1px 2px rgba(0,0,0,.04); }
h2 { margin:0 0 10px; font-size:19px; font-weight:600; }
p.intro, p.note { color:var(--muted); margin:0 0 12px; font-size:14px; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(460px, 1fr)); gap:16px; }
.grid.wide { grid-template-columns:1fr; }
figure { margin:0; }
figure img { width:100%; height:auto; display:block; border:1px solid var(--line); border-radius:4px; }
.grid.wide figure img { width:auto; max-width:100%; margin:0 auto; }
.grid.wide figcaption { text-align:center; }
figcaption { font-size:13px; color:var(--muted); margin-top:6px; }
figcaption .cap { margin-bottom:2px; color:var(--fg); }
figcaption a.file { color:var(--muted); font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
table { border-collapse:collapse; font-size:14px; }
th, td { padding:6px 12px; border-bottom:1px solid var(--line); text-align:right; vertical-align:top; }
thead th { background:#f0f2f6; font-weight:600; }
tbody th, thead th:first-child { text-align:left; font-weight:600; }
table.metrics { width:100%; }
table.metrics td { font-variant-numeric:tabular-nums; }
tr.delta th, tr.delta td { color:var(--muted); font-weight:normal; font-size:13px; background:#fafbfc; }
td.up { color:#1d7d43 !important; } td.down { color:#b3362c !important; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:8px; }
.tablewrap { overflow-x:auto; }
table.config td, table.config th { text-align:left; font-family:ui-monospace, Menlo, Consolas, monospace;
  font-size:13px; padding:3px 12px; word-break:break-word; max-width:420px; }
table.config thead th { font-family:inherit; }
table.config tr.differs { background:#fff6dd; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:0 0 24px; }
"""


def _default_output_dir(run_paths: list[Path]) -> Path:
    if len(run_paths) == 1:
        return run_paths[0]
    parents = [str(p.resolve().parent) for p in run_paths]
    return Path(os.path.commonpath(parents)) / "report"


def build_report(
    run_dirs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_dir: str | os.PathLike[str] | None = None,
    *,
    tsne_max_points: int = TSNE_MAX_POINTS,
    seed: int = 0,
) -> Path:
    """Write ``report.html`` and its PNG figures; return the path of ``report.html``.

    ``run_dirs`` are run directories written by ``lcl train`` (one, or several
    runs of the same dataset to compare side by side; the first is the
    reference for class order and differences). ``output_dir`` defaults to the
    run directory for one run and ``<common parent>/report`` for several.
    Raises :class:`ReportError` for a missing, incomplete or inconsistent run.
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise ReportError("no run directories given")
    runs = [load_run(p) for p in paths]
    _align(runs)
    _assign_names(runs)
    out = Path(output_dir) if output_dir is not None else _default_output_dir(paths)
    out.mkdir(parents=True, exist_ok=True)

    multi = len(runs) > 1
    order = cluster_order(runs[0].confusion)
    names = runs[0].label_names

    def fname(stem: str, run: RunData | None = None) -> str:
        return f"{stem}_{run.slug}.png" if (multi and run is not None) else f"{stem}.png"

    conf_imgs, cfy_imgs, tsne_imgs = [], [], []
    for run in runs:
        conf_imgs.append(_Image(
            fname("confusion_matrix", run), _fig_confusion(run, order),
            _confusion_caption(_row_normalise(run.confusion), names, lambda v: f"{v:.0%}"),
            f"Confusion matrix of {run.label}"))
        cfy_imgs.append(_Image(
            fname("confusability", run), _fig_confusability(run, order),
            _e(_source_title(run.confusability).capitalize()) + ". "
            + _confusion_caption(run.confusability_matrix, names, lambda v: f"{v:.2f}"),
            f"Confusability map of {run.label}"))
        tsne_imgs.append(_Image(
            fname("embeddings_tsne", run), _fig_tsne(run, tsne_max_points, seed), "",
            f"t-SNE of test embeddings of {run.label}"))
    f1_img = _Image(fname("per_class_f1"), _fig_per_class_f1(runs, order), "", "Per-class F1")
    curve_img = _Image(fname("training_curves"), _fig_training(runs), "", "Training curves")

    images = [*conf_imgs, f1_img, *cfy_imgs, *tsne_imgs, curve_img]
    for img in images:
        atomic_write_bytes(out / img.filename, img.data)

    datasets = sorted({str(r.config.get("dataset")) for r in runs if r.config.get("dataset")})
    title = "LCL report" + (f": {', '.join(datasets)}" if datasets else "")
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    n_test = len(runs[0].predictions)
    # Side by side only while the class names stay legible at half the page width;
    # otherwise one per row at natural size (also avoids blowing up a single run's figures).
    stack = not multi or len(names) > 15
    ref_note = f" Differences are relative to <b>{_e(runs[0].label)}</b>." if multi else ""
    order_note = ("Classes are ordered by hierarchical clustering of the confusion rows"
                  + (f" of {_e(runs[0].label)}, shared by all runs" if multi else "")
                  + ", so confusable classes sit together.")

    sections = [
        _section("Summary", f"{len(names)} classes, {n_test} test texts.{ref_note}",
                 f"<div class='tablewrap'>{_headline_table(runs)}</div>", "summary"),
        _section("Confusion matrix (test)", order_note, _grid(conf_imgs, wide=stack), "confusion"),
        _section("Per-class F1 (test)", "Bars follow the confusion-matrix class order."
                 + (" Right: difference in F1 from the first run (green = better)." if multi else ""),
                 _grid([f1_img], wide=True), "f1"),
        _section("Class confusability", "Mean softmax over validation texts of each true class, from the "
                 "network that supplies the LCL weights (or the main model when there is none).",
                 _grid(cfy_imgs, wide=stack), "confusability"),
        _section("Test embeddings (t-SNE)", f"L2-normalised contrastive features, coloured by true class; "
                 f"t-SNE with random_state={seed}, at most {tsne_max_points} points per run.",
                 _grid(tsne_imgs, wide=stack), "embeddings"),
        _section("Training curves", "Loss parts per logged step; validation accuracy per epoch "
                 "(★ = best epoch, the checkpoint that was evaluated on test).",
                 _grid([curve_img], wide=True), "training"),
        _section("Configuration", "", f"<div class='tablewrap'>{_config_table(runs)}</div>", "config"),
    ]
    nav = "".join(
        f"<a href='#{sid}'>{_e(t)}</a>"
        for sid, t in (("summary", "Summary"), ("confusion", "Confusion"), ("f1", "Per-class F1"),
                       ("confusability", "Confusability"), ("embeddings", "Embeddings"),
                       ("training", "Training"), ("config", "Configuration"))
    )
    run_tags = "".join(f"<span title='{_e(r.path)}'>{_e(r.label)}</span>" for r in runs)
    doc = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>"
        f"<div class='sub'>Label-aware contrastive loss · generated {_e(when)}</div>"
        f"<div class='runs'>{run_tags}</div></header>"
        f"<nav>{nav}</nav><main>{''.join(sections)}</main>"
        f"<footer>Run directories: {_e(', '.join(str(r.path) for r in runs))}</footer>"
        "</body></html>\n"
    )
    report = out / "report.html"
    atomic_write_bytes(report, doc.encode("utf-8"))
    return report
