"""The report's sections, in page order: the ONE list that the page body and its navigation read.

A section is a heading, an introduction and a body. A figure section names a figure function
of :mod:`lcl.report.figures` and whether it draws one figure per run or one for all runs; the
builder renders it, writes the PNG and lays it out. Adding a figure is one function in
``figures.py`` and one :class:`Section` entry in :data:`SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lcl.report import figures
from lcl.report.analysis import confusability_source, label_confusion_rates, row_normalise
from lcl.report.html import (
    Image,
    config_table,
    confusion_caption,
    esc,
    grid,
    headline_table,
    table_wrap,
)
from lcl.report.loading import RunData


@dataclass
class Context:
    """What every section may use: the aligned, named runs and the report's options."""

    runs: list[RunData]
    order: list[int]  # shared class order (clustered confusion rows of the first run)
    seed: int
    tsne_max_points: int

    @property
    def multi(self) -> bool:
        return len(self.runs) > 1

    @property
    def multilabel(self) -> bool:
        return self.runs[0].multilabel

    @property
    def names(self) -> list[str]:
        return self.runs[0].label_names

    @property
    def stack(self) -> bool:
        # Side by side only while the class names stay legible at half the page width;
        # otherwise one per row at natural size (also avoids blowing up a single run's figures).
        return not self.multi or len(self.names) > 15


Text = str | Callable[[Context], str]


@dataclass(frozen=True)
class FigureSpec:
    """A figure of a section: ``stem`` names its PNG (``<stem>_<run slug>.png`` per run when
    there are several runs). ``per_run``: ``render(ctx, run)`` for each run, else ``render(ctx)``
    once. ``caption(ctx, run)`` is HTML under each figure; ``alt`` may use ``{label}``."""

    stem: str
    render: Callable[..., bytes]
    alt: str
    per_run: bool = True
    caption: Callable[[Context, RunData], str] | None = None


@dataclass(frozen=True)
class Section:
    """One section of the page and its navigation link: either a ``figure`` or an HTML ``body``.

    ``shown(ctx)`` leaves the section (and its link) out, e.g. training curves of runs that
    trained nothing."""

    sid: str
    nav: str
    title: str
    intro: Text = ""
    figure: FigureSpec | None = None
    body: Callable[[Context], str] | None = None
    shown: Callable[[Context], bool] = lambda ctx: True


def text(value: Text, ctx: Context) -> str:
    return value(ctx) if callable(value) else value


# --------------------------------------------------------------------------- the sections


def _summary_intro(ctx: Context) -> str:
    ref = f" Differences are relative to <b>{esc(ctx.runs[0].label)}</b>." if ctx.multi else ""
    kind = " (multi-label: several per text)" if ctx.multilabel else ""
    return f"{len(ctx.names)} classes{kind}, {len(ctx.runs[0].predictions)} test texts.{ref}"


def _order_intro(ctx: Context) -> str:
    return (
        "Classes are ordered by hierarchical clustering of the confusion rows"
        + (f" of {esc(ctx.runs[0].label)}, shared by all runs" if ctx.multi else "")
        + ", so confusable classes sit together."
    )


def _confusion_caption(ctx: Context, run: RunData) -> str:
    return confusion_caption(row_normalise(run.confusion), ctx.names, lambda v: f"{v:.0%}")


def _label_confusion_caption(ctx: Context, run: RunData) -> str:
    from lcl.report.figures import label_support

    rates = label_confusion_rates(run.confusion, label_support(run))
    return confusion_caption(rates, ctx.names, lambda v: f"{v:.0%}")


def _confusability_caption(ctx: Context, run: RunData) -> str:
    return (
        esc(confusability_source(run.confusability).capitalize())
        + ". "
        + confusion_caption(run.confusability_matrix, ctx.names, lambda v: f"{v:.2f}")
    )


SECTIONS: list[Section] = [
    Section(
        "summary",
        "Summary",
        "Summary",
        _summary_intro,
        body=lambda ctx: table_wrap(headline_table(ctx.runs)),
    ),
    Section(
        "confusion",
        "Confusion",
        "Confusion matrix (test)",
        _order_intro,
        FigureSpec(
            "confusion_matrix",
            lambda ctx, run: figures.confusion_matrix(run, ctx.order),
            "Confusion matrix of {label}",
            caption=_confusion_caption,
        ),
        shown=lambda ctx: not ctx.multilabel,
    ),
    Section(
        "label-confusion",
        "Label confusion",
        "Label confusion (test)",
        lambda ctx: (
            "Several labels per text: row <i>i</i> is the test texts labelled <i>i</i>; the "
            "diagonal is the share predicted <i>i</i> (recall), cell <i>j</i> the share given "
            "<i>j</i> although not labelled so, at the decision thresholds saved with the "
            "model. " + _order_intro(ctx).replace("confusion rows", "label-confusion rows")
        ),
        FigureSpec(
            "label_confusion",
            lambda ctx, run: figures.label_confusion(run, ctx.order),
            "Label confusion of {label}",
            caption=_label_confusion_caption,
        ),
        shown=lambda ctx: ctx.multilabel,
    ),
    Section(
        "f1",
        "Per-class F1",
        "Per-class F1 (test)",
        lambda ctx: (
            "Bars follow the confusion-matrix class order."
            + (" Right: difference in F1 from the first run (green = better)." if ctx.multi else "")
        ),
        FigureSpec(
            "per_class_f1",
            lambda ctx: figures.per_class_f1(ctx.runs, ctx.order),
            "Per-class F1",
            per_run=False,
        ),
    ),
    Section(
        "confusability",
        "Confusability",
        "Class confusability",
        lambda ctx: (
            f"Mean {'sigmoid' if ctx.multilabel else 'softmax'} over validation texts of each "
            "true class, from the network that supplies the LCL weights (or the main model "
            "when there is none)."
        ),
        FigureSpec(
            "confusability",
            lambda ctx, run: figures.confusability(run, ctx.order),
            "Confusability map of {label}",
            caption=_confusability_caption,
        ),
    ),
    Section(
        "embeddings",
        "Embeddings",
        "Test embeddings (t-SNE)",
        lambda ctx: (
            "L2-normalised contrastive features, coloured by true class"
            + (" (a text's first label)" if ctx.multilabel else "")
            + "; t-SNE with "
            f"random_state={ctx.seed}, at most {ctx.tsne_max_points} points per run."
        ),
        FigureSpec(
            "embeddings_tsne",
            lambda ctx, run: figures.embeddings_tsne(run, ctx.tsne_max_points, ctx.seed),
            "t-SNE of test embeddings of {label}",
        ),
    ),
    Section(
        "training",
        "Training",
        "Training curves",
        lambda ctx: (
            "Loss parts per logged step; validation "
            + ("macro-F1" if ctx.multilabel else "accuracy")
            + " per epoch (★ = best epoch, the checkpoint that was evaluated on test)."
        ),
        FigureSpec(
            "training_curves",
            lambda ctx: figures.training_curves(ctx.runs),
            "Training curves",
            per_run=False,
        ),
        shown=lambda ctx: any(run.history is not None for run in ctx.runs),
    ),
    Section(
        "config",
        "Configuration",
        "Configuration",
        body=lambda ctx: table_wrap(config_table(ctx.runs)),
    ),
]


def render_figures(spec: FigureSpec, ctx: Context) -> list[Image]:
    """The images of one figure section, in run order."""

    def filename(run: RunData | None) -> str:
        return (
            f"{spec.stem}_{run.slug}.png" if (ctx.multi and run is not None) else f"{spec.stem}.png"
        )

    if not spec.per_run:
        return [Image(filename(None), spec.render(ctx), "", spec.alt)]
    return [
        Image(
            filename(run),
            spec.render(ctx, run),
            spec.caption(ctx, run) if spec.caption else "",
            spec.alt.format(label=run.label),
        )
        for run in ctx.runs
    ]


def render_body(sec: Section, ctx: Context) -> tuple[str, list[Image]]:
    """A section's body HTML and the images it shows."""
    if sec.figure is None:
        return (sec.body(ctx) if sec.body else ""), []
    images = render_figures(sec.figure, ctx)
    return grid(images, wide=ctx.stack if sec.figure.per_run else True), images
