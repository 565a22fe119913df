"""Figures: one function per figure, each returning PNG bytes (matplotlib, Agg, no pyplot).

A figure function takes what it draws (runs, the shared class order, ...) and returns the PNG;
the section list in :mod:`lcl.report.sections` decides where it goes on the page.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lcl.report.analysis import (
    confusability_source,
    label_confusion_rates,
    loss_part_keys,
    loss_part_title,
    project_2d,
    row_normalise,
    same_series,
    training_series,
)
from lcl.report.loading import RunData

DPI = 110
RUN_COLOURS = colormaps["tab10"].colors


def run_colour(index: int):
    """The colour of the ``index``-th run, the same in every figure and table."""
    return RUN_COLOURS[index % 10]


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly; no pyplot, so no global backend state.
    return fig


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _class_colours(n: int) -> list:
    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    pool = (
        list(colormaps["tab20"].colors)
        + list(colormaps["tab20b"].colors)
        + list(colormaps["tab20c"].colors)
    )
    if n <= len(pool):
        return pool[:n]
    return [colormaps["hsv"](i / n) for i in range(n)]


def _tick_font(n: int) -> float:
    return 10 if n <= 10 else 9 if n <= 20 else 8 if n <= 35 else 6


def _heatmap(
    ax, matrix: np.ndarray, names: Sequence[str], cmap: str, vmax: float, xlabel: str, ylabel: str
):
    n = len(names)
    im = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest", aspect="equal")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    font = _tick_font(n)
    ax.set_xticklabels(
        names,
        rotation=90 if n > 12 else 50,
        ha="center" if n > 12 else "right",
        rotation_mode="default" if n > 12 else "anchor",
        fontsize=font,
    )
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
                ax.text(
                    j,
                    i,
                    f"{v:.2f}".lstrip("0") if v < 1 else "1",
                    ha="center",
                    va="center",
                    fontsize=8 if n <= 10 else 6.5,
                    color="white" if dark else "#222",
                )
    return im


def _matrix_figsize(n: int) -> tuple[float, float]:
    side = min(max(0.26 * n + 2.8, 5.2), 14.0)
    return side + 1.0, side


def confusion_matrix(run: RunData, order: list[int]) -> bytes:
    """Row-normalised test confusion matrix, classes in ``order``."""
    names = [run.label_names[i] for i in order]
    mat = row_normalise(run.confusion)[np.ix_(order, order)]
    fig = new_figure(*_matrix_figsize(len(names)))
    ax = fig.add_subplot()
    im = _heatmap(ax, mat, names, "Blues", 1.0, "Predicted class", "True class")
    acc = run.metrics["test"].get("accuracy")
    title = f"{run.label}: test confusion (row-normalised)"
    if acc is not None:
        title += f"\naccuracy {float(acc):.1%}"
    ax.set_title(title, fontsize=11)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class")
    return png_bytes(fig)


def label_support(run: RunData) -> list[int]:
    """Test texts carrying each class, in ``run.label_names`` order."""
    per_class = run.metrics["test"]["per_class"]
    return [int(per_class.get(n, {}).get("support", 0)) for n in run.label_names]


def label_confusion(run: RunData, order: list[int]) -> bytes:
    """A multi-label run's test label confusion, classes in ``order``: row ``i`` is the texts
    labelled ``i``; the diagonal the share predicted ``i`` (recall), ``[i, j]`` the share
    wrongly given ``j`` as well or instead."""
    names = [run.label_names[i] for i in order]
    rates = label_confusion_rates(run.confusion, label_support(run))[np.ix_(order, order)]
    fig = new_figure(*_matrix_figsize(len(names)))
    ax = fig.add_subplot()
    im = _heatmap(ax, rates, names, "Blues", 1.0, "Predicted label", "True label")
    f1 = run.metrics["test"].get("macro_f1")
    title = f"{run.label}: test label confusion"
    if f1 is not None:
        title += f"\nmacro-F1 {float(f1):.1%}"
    ax.set_title(title, fontsize=11)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of texts with the true label")
    return png_bytes(fig)


def confusability(run: RunData, order: list[int]) -> bytes:
    """The class-confusability map of ``confusability.json``, classes in ``order``."""
    names = [run.label_names[i] for i in order]
    mat = run.confusability_matrix[np.ix_(order, order)]
    vmax = float(np.nanmax(mat)) if mat.size else 1.0
    fig = new_figure(*_matrix_figsize(len(names)))
    ax = fig.add_subplot()
    im = _heatmap(
        ax,
        mat,
        names,
        "Purples",
        vmax if vmax > 0 else 1.0,
        "Predicted class (mean probability)",
        "True class",
    )
    ax.set_title(
        f"{run.label}: confusability\n{confusability_source(run.confusability)}", fontsize=11
    )
    kind = "sigmoid" if run.multilabel else "softmax"
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"mean {kind} probability")
    return png_bytes(fig)


def per_class_f1(runs: list[RunData], order: list[int]) -> bytes:
    """Per-class test F1 of every run and, for several runs, the difference from the first."""
    names = [runs[0].label_names[i] for i in order]
    n = len(names)
    f1 = np.array(
        [
            [
                float(r.metrics["test"]["per_class"].get(name, {}).get("f1", np.nan))
                for name in names
            ]
            for r in runs
        ]
    )
    k = len(runs)
    height = min(max(0.22 * n * max(1.0, 0.55 * k) + 1.6, 3.5), 22.0)
    fig = new_figure(11.0 if k > 1 else 8.0, height)
    if k > 1:
        ax, ax_diff = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    else:
        ax, ax_diff = fig.add_subplot(), None
    y = np.arange(n)
    bar_h = 0.8 / k
    for r_i, run in enumerate(runs):
        offset = (r_i - (k - 1) / 2) * bar_h
        ax.barh(y + offset, f1[r_i], height=bar_h, color=run_colour(r_i), label=run.label)
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
            ax_diff.barh(
                y + offset,
                diff,
                height=bar_d,
                color=colours,
                edgecolor=run_colour(r_i) if k > 2 else "none",
                linewidth=1.2,
            )
        lim = float(np.nanmax(np.abs(f1[1:] - f1[0]))) if np.isfinite(f1).any() else 0.1
        lim = max(lim * 1.1, 0.05)
        ax_diff.set_xlim(-lim, lim)
        ax_diff.axvline(0, color="#444", linewidth=0.8)
        ax_diff.grid(axis="x", alpha=0.3)
        ax_diff.set_xlabel(f"F1 difference vs. {runs[0].label}")
        others = ", ".join(r.label for r in runs[1:])
        ax_diff.set_title(f"{others}\nminus {runs[0].label}", fontsize=10)
        ax_diff.tick_params(axis="y", length=0)
    return png_bytes(fig)


def embeddings_tsne(run: RunData, max_points: int, seed: int) -> bytes:
    """t-SNE map of the test embeddings (at most ``max_points``), coloured by true class."""
    emb = run.embeddings
    labels = run.true_idx
    rng = np.random.default_rng(seed)
    if len(emb) > max_points:
        keep = np.sort(rng.choice(len(emb), size=max_points, replace=False))
        emb, labels = emb[keep], labels[keep]
    coords = project_2d(emb, seed)
    names = run.label_names
    n = len(names)
    colours = _class_colours(n)
    legend_cols = 1 if n <= 16 else 2 if n <= 40 else 3
    fig = new_figure(7.0 + 1.6 * legend_cols, 6.4)
    ax = fig.add_subplot()
    for c in range(n):
        mask = labels == c
        if not mask.any():
            continue
        ax.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=14 if len(coords) > 500 else 24,
            color=colours[c],
            label=names[c],
            alpha=0.8,
            linewidths=0,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    total = len(run.embeddings)
    shown = f"{len(coords)} of {total}" if len(coords) < total else f"{len(coords)}"
    ax.set_title(f"{run.label}: t-SNE of test embeddings ({shown} points)", fontsize=11)
    ax.legend(
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        fontsize=_tick_font(n),
        ncols=legend_cols,
        frameon=False,
        markerscale=1.3,
        handletextpad=0.3,
        columnspacing=0.8,
    )
    return png_bytes(fig)


def training_curves(runs: list[RunData]) -> bytes:
    """One panel per logged loss part (every ``loss*`` key of history.json) and one of
    validation accuracy (macro-F1 for multi-label runs) per epoch (★ = best epoch); runs
    without history draw nothing."""
    metric = runs[0].metrics.get("headline_metric", "accuracy")
    series = [training_series(r.history, metric) for r in runs]
    panels: list[tuple[str, str]] = []
    for key in loss_part_keys([s[0] for s in series]):
        if key == "loss_ce" and all(
            same_series(s[0].get("loss"), s[0]["loss_ce"]) for s in series if key in s[0]
        ):
            continue  # plain CE runs only: the CE part is the total loss, skip the duplicate panel
        panels.append((key, loss_part_title(key)))
    panels.append(("val", "Validation macro-F1" if metric == "macro_f1" else "Validation accuracy"))
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure(4.2 * ncols, 3.3 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (key, title) in zip(axes, panels):
        for r_i, (run, (losses, (vx, vy))) in enumerate(zip(runs, series)):
            colour = run_colour(r_i)
            if key == "val":
                if vx:
                    ax.plot(vx, vy, marker="o", markersize=4, color=colour, label=run.label)
                    best = run.metrics.get("best_epoch")
                    if best is not None:
                        hits = [i for i, e in enumerate(vx) if round(e) == int(best)]
                        if hits:
                            ax.plot(
                                vx[hits[-1]],
                                vy[hits[-1]],
                                marker="*",
                                markersize=13,
                                color=colour,
                                markeredgecolor="black",
                                linestyle="none",
                            )
            elif key in losses:
                xs, ys = losses[key]
                ax.plot(xs, ys, color=colour, linewidth=1.3, label=run.label)
        ax.set_title(title, fontsize=10.5)
        ax.set_xlabel("epoch" if key == "val" else "step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if not ax.has_data():
            ax.text(
                0.5,
                0.5,
                "not logged",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="#888",
            )
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[len(panels) - 1].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside upper center",
            ncols=min(len(runs), 4),
            fontsize=9,
            frameon=False,
        )
    return png_bytes(fig)
