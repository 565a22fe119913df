"""``build_report``: load the runs, render the sections of :data:`SECTIONS`, write the page."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path

from lcl.io import atomic_write_bytes
from lcl.report.analysis import TSNE_MAX_POINTS, cluster_order
from lcl.report.html import nav_link, page, section
from lcl.report.loading import ReportError, align_runs, assign_names, load_run
from lcl.report.sections import SECTIONS, Context, render_body, text


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
    align_runs(runs)
    assign_names(runs)
    out = Path(output_dir) if output_dir is not None else _default_output_dir(paths)
    out.mkdir(parents=True, exist_ok=True)

    ctx = Context(
        runs=runs,
        order=cluster_order(runs[0].confusion),
        seed=seed,
        tsne_max_points=tsne_max_points,
    )
    shown = [sec for sec in SECTIONS if sec.shown(ctx)]
    bodies, images = [], []
    for sec in shown:
        body, imgs = render_body(sec, ctx)
        bodies.append(section(sec.title, text(sec.intro, ctx), body, sec.sid))
        images.extend(imgs)
    for img in images:
        atomic_write_bytes(out / img.filename, img.data)

    datasets = sorted({str(r.config.get("dataset")) for r in runs if r.config.get("dataset")})
    title = "LCL report" + (f": {', '.join(datasets)}" if datasets else "")
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    nav = "".join(nav_link(sec.sid, sec.nav) for sec in shown)
    doc = page(
        title, f"Label-aware contrastive loss · generated {when}", runs, nav, "".join(bodies)
    )
    report = out / "report.html"
    atomic_write_bytes(report, doc.encode("utf-8"))
    return report
