"""Loading: one run folder -> a validated :class:`RunData`; several runs aligned and named.

The file names of a run folder come from :mod:`lcl.run_dir`, their one owner.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lcl import run_dir
from lcl.errors import LCLError
from lcl.objectives import LOSSES, TRAINED_LOSSES

# The run folder written by `lcl train` / `lcl probe` (the report reads these and nothing else).
CONFIG_FILE = run_dir.CONFIG
METRICS_FILE = run_dir.METRICS
PREDICTIONS_FILE = run_dir.PREDICTIONS
HISTORY_FILE = run_dir.HISTORY
CONFUSABILITY_FILE = run_dir.CONFUSABILITY
EMBEDDINGS_FILE = run_dir.EMBEDDINGS

REQUIRED_FILES: tuple[str, ...] = (
    CONFIG_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    HISTORY_FILE,
    CONFUSABILITY_FILE,
    EMBEDDINGS_FILE,
)
# Runs that train nothing (``lcl probe``: metrics.json says ``"loss": "probe"``) have no history.
UNTRAINED_LOSSES = tuple(name for name in LOSSES if name not in TRAINED_LOSSES)


class ReportError(LCLError, ValueError):
    """A run directory is missing, incomplete or inconsistent."""


@dataclass
class RunData:
    """Everything the report needs from one run directory.

    ``history`` is the Trainer's log (a list of entries), or None for a run that trained
    nothing (a probe), which has no ``history.json``.
    """

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    label_names: list[str]
    predictions: list[dict[str, Any]]
    history: list[dict[str, Any]] | None
    confusability: dict[str, Any]
    embeddings: np.ndarray
    label: str = ""
    slug: str = ""
    # several classes per text (metrics.json ``multilabel``): ``confusion`` is then the label
    # confusion (row i: texts labelled i; diagonal: predicted i; j: given j wrongly) and
    # ``true_idx`` each text's first label (to colour the t-SNE map)
    multilabel: bool = False
    # Derived, in ``label_names`` order.
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    confusability_matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    true_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


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


def _trained(path: Path) -> bool:
    """False for a run whose metrics.json says it trained nothing (no history.json expected)."""
    try:
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not (isinstance(metrics, dict) and metrics.get("loss") in UNTRAINED_LOSSES)


def _read_predictions(path: Path) -> list[dict[str, Any]]:
    predictions = []
    with (path / PREDICTIONS_FILE).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                predictions.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ReportError(
                    f"{PREDICTIONS_FILE} in {path}, line {lineno}, is not valid JSON: {exc}"
                ) from exc
    return predictions


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read and validate one run directory; raise :class:`ReportError` if unusable."""
    path = Path(run_dir)
    if not path.exists():
        raise ReportError(f"run directory {path} does not exist")
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory")
    trained = _trained(path)
    missing = [
        name
        for name in REQUIRED_FILES
        if not (path / name).is_file() and (trained or name != HISTORY_FILE)
    ]
    if missing:
        raise ReportError(
            f"run directory {path} is incomplete: missing {', '.join(missing)} "
            "(was `lcl train` interrupted?)"
        )

    try:
        config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ReportError(f"{CONFIG_FILE} in {path} is not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ReportError(f"{CONFIG_FILE} in {path} is not a mapping")

    metrics = _read_json(path / METRICS_FILE)
    for key in ("label_names", "test"):
        if key not in metrics:
            raise ReportError(f"{METRICS_FILE} in {path} has no {key!r} entry")
    multilabel = bool(metrics.get("multilabel"))
    confusion_key = "label_confusion" if multilabel else "confusion_matrix"
    for key in ("per_class", confusion_key):
        if key not in metrics["test"]:
            raise ReportError(f"{METRICS_FILE} in {path} has no test.{key} entry")
    names = [str(n) for n in metrics["label_names"]]
    if not names:
        raise ReportError(f"{METRICS_FILE} in {path} has an empty label_names list")

    predictions = _read_predictions(path)
    where = f"{PREDICTIONS_FILE} in {path}"
    true_idx = np.array(
        [
            _label_index((p.get("labels") or [None])[0], names, where)
            if multilabel
            else _label_index(p.get("label"), names, where)
            for p in predictions
        ],
        dtype=int,
    )

    history = None
    if (path / HISTORY_FILE).is_file():
        history = _read_json(path / HISTORY_FILE)
        if not isinstance(history, list):
            raise ReportError(f"{HISTORY_FILE} in {path} should hold a list of log entries")

    conf = _read_json(path / CONFUSABILITY_FILE)
    if "matrix" not in conf:
        raise ReportError(f"{CONFUSABILITY_FILE} in {path} has no 'matrix' entry")
    conf_names = [str(n) for n in conf.get("label_names", names)]
    if sorted(conf_names) != sorted(names):
        raise ReportError(
            f"{CONFUSABILITY_FILE} in {path} has different label names than {METRICS_FILE}"
        )

    try:
        embeddings = np.load(path / EMBEDDINGS_FILE, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ReportError(f"{EMBEDDINGS_FILE} in {path} cannot be read: {exc}") from exc
    if embeddings.ndim != 2 or embeddings.shape[0] != len(predictions):
        raise ReportError(
            f"{EMBEDDINGS_FILE} in {path} has shape {embeddings.shape}; expected "
            f"({len(predictions)}, D) to match {PREDICTIONS_FILE}"
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
        multilabel=multilabel,
        confusion=_reindex(
            metrics["test"][confusion_key],
            names,
            names,
            f"{path}/{METRICS_FILE} {confusion_key}",
        ),
        confusability_matrix=_reindex(
            conf["matrix"], conf_names, names, f"{path}/{CONFUSABILITY_FILE} matrix"
        ),
        true_idx=true_idx,
    )


def align_runs(runs: list[RunData]) -> None:
    """Put every run's per-class data into the first run's label order."""
    ref = runs[0].label_names
    for run in runs[1:]:
        if run.multilabel != runs[0].multilabel:
            raise ReportError(
                f"{run.path} and {runs[0].path}: one is multi-label, the other not; "
                "only runs on the same dataset can share a report"
            )
        if sorted(run.label_names) != sorted(ref):
            raise ReportError(
                f"{run.path} has different classes than {runs[0].path}; "
                "only runs on the same dataset can share a report"
            )
        if run.label_names == ref:
            continue
        run.confusion = _reindex(run.confusion, run.label_names, ref, "confusion matrix")
        run.confusability_matrix = _reindex(
            run.confusability_matrix, run.label_names, ref, "confusability"
        )
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


def assign_names(runs: list[RunData]) -> None:
    """Give each run a display ``label`` and a file-name ``slug``, unique among ``runs``."""
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
        stem, k = slug, 2
        while slug in slugs:
            slug, k = f"{stem}-{k}", k + 1
        slugs.append(slug)
        run.label, run.slug = lab, slug
