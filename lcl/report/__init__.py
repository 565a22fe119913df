"""HTML report for one or several training runs written by ``lcl train`` (``lcl report``).

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
* ``training_curves.png``    every logged loss part per step and validation accuracy per
  epoch (left out when no run has a ``history.json``, e.g. probes).

The package has four layers, each a module: :mod:`~lcl.report.loading` (run folder ->
:class:`RunData`), :mod:`~lcl.report.analysis` (numbers), :mod:`~lcl.report.figures`
(matplotlib) and :mod:`~lcl.report.html` (page and CSS); :mod:`~lcl.report.sections` holds the
one ordered list of sections that the page body and its navigation both read, and
:mod:`~lcl.report.build` puts them together.
"""

from lcl.report.analysis import cluster_order
from lcl.report.build import build_report
from lcl.report.loading import REQUIRED_FILES, ReportError, RunData, load_run
from lcl.report.loading import align_runs as _align  # noqa: F401  (its name before the package)

__all__ = [
    "REQUIRED_FILES",
    "ReportError",
    "RunData",
    "build_report",
    "cluster_order",
    "load_run",
]
