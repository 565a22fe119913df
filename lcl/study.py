"""``lcl study``: a resumable grid of datasets x variants x seeds over the same ``train`` as ``lcl train``.

A study is a small YAML file (see ``studies/``)::

    name: ed-subsets
    output_dir: studies/runs/ed-subsets
    base: {epochs: 3}                      # TrainConfig fields shared by every cell
    datasets: [empathetic_dialogues:4easy, empathetic_dialogues:4hard-a]
    seeds: [0, 1, 2]
    variants:                              # name -> TrainConfig fields
      ce: {loss: ce}
      lcl: {loss: lcl}

Each cell runs in ``OUTPUT_DIR/<dataset>/<variant>/seed<k>``, or where the variant's own
``output_dir`` template (``{dataset}``, ``{variant}``, ``{seed}``) says: two studies then share
the cells they have in common instead of training them twice. A cell whose ``metrics.json``
exists is finished and skipped; a killed cell resumes from its last checkpoint. Cells run seed
by seed, so a study stopped early still covers every dataset and variant. After every cell
``results.csv`` and ``results.md`` (mean (std) per dataset and variant) are rewritten. Each row
names the encoder its run used (``model``, from the run's ``config.yaml``); when a study's
finished cells used more than one (e.g. cells finished on a GPU with another encoder),
``results.md`` has one table per encoder, and the paired tests stay within one.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcl.errors import LCLError
from lcl.io import atomic_write_text
from lcl.objectives import unread_fields
from lcl.run_dir import RunDir, RunFolderError, check_resumable, format_bytes
from lcl.training_args import ConfigError, TrainConfig, encoder_name, read_yaml_mapping

RESULT_COLUMNS = [
    "dataset",
    "variant",
    "seed",
    "model",
    "loss",
    "weighting",
    "detach_weights",
    "memory_size",
    "epochs",
    "best_epoch",
    "train_examples",
    "device",
    "precision",
    "val_accuracy",
    "accuracy",
    "weighted_f1",
    "macro_f1",
    "mean_entropy",
    "headline_metric",
    "train_steps",
    "seconds_per_step",
    "runtime_seconds",
    "run_dir",
]


@dataclass
class Cell:
    dataset: str
    variant: str
    seed: int
    config: TrainConfig

    @property
    def run_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def run(self) -> RunDir:
        return RunDir(self.config.output_dir)

    @property
    def finished(self) -> bool:
        return self.run.is_finished


@dataclass
class Study:
    name: str
    output_dir: Path
    cells: list[Cell]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def load_study(
    path: str | Path,
    output_dir: str | Path | None = None,
    checkpoint_minutes: float | None = None,
) -> Study:
    """The study file's cells. ``checkpoint_minutes`` sets every cell's timed resume
    checkpoints (a lane that may be killed), over the file's value: it changes no result, and a
    cell begun without it resumes with it."""
    spec = read_yaml_mapping(path)
    unknown = set(spec) - {
        "name",
        "output_dir",
        "base",
        "datasets",
        "seeds",
        "variants",
        "description",
    }
    if unknown:
        raise ConfigError(f"{path}: unknown study key(s): {', '.join(sorted(unknown))}")
    for key in ("datasets", "variants"):
        if not spec.get(key):
            raise ConfigError(f"{path}: the study needs a non-empty '{key}'")
    name = spec.get("name") or Path(path).stem
    out = Path(output_dir or spec.get("output_dir") or Path("runs") / "studies" / name)
    base = dict(spec.get("base") or {})
    if checkpoint_minutes is not None:
        base["checkpoint_minutes"] = checkpoint_minutes
    seeds = spec.get("seeds") or [0]
    variants: dict[str, Any] = spec["variants"]
    if not isinstance(variants, dict):
        raise ConfigError(f"{path}: 'variants' must map a name to options")
    cells = []
    for seed in seeds:
        for dataset in spec["datasets"]:
            for variant, options in variants.items():
                options = dict(options or {})
                # a variant may point at another study's cell of the same config to share it
                run_dir = options.pop("output_dir", None)
                try:
                    run_dir = (
                        str(run_dir).format(
                            dataset=_slug(dataset), variant=_slug(variant), seed=seed
                        )
                        if run_dir
                        else out / _slug(dataset) / _slug(variant) / f"seed{seed}"
                    )
                except (KeyError, IndexError, ValueError) as err:
                    raise ConfigError(
                        f"{path}: variant {variant!r}: output_dir may use only "
                        f"{{dataset}}, {{variant}} and {{seed}} ({err!r})"
                    ) from None
                values = {
                    **base,
                    **options,
                    "dataset": dataset,
                    "seed": int(seed),
                    "output_dir": str(run_dir),
                }
                try:
                    config = TrainConfig.from_dict(values)
                except ConfigError as err:
                    raise ConfigError(f"{path}: variant {variant!r}: {err}") from None
                cells.append(Cell(dataset, variant, int(seed), config))
    return Study(name=name, output_dir=out, cells=cells)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N): the worker I of N takes every N-th cell starting at I."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like I/N (e.g. 0/4), not {text!r}") from None
    if not 0 <= index < count:
        first = ", ".join(f"{i}/{count}" for i in range(min(count, 2)))
        raise ConfigError(
            f"--shard {text}: need 0 <= I < N; workers count from 0 ({first}, ...)"
            if count > 0
            else f"--shard {text}: need N >= 1"
        )
    return index, count


def _progress_line(total: int, selected: list, todo: list, flags: list[str]) -> str:
    """``120 cells; 30 selected (--only, --shard 0/2): 7 finished, 23 to run``: the counts
    are over the cells this process runs, so that other shards' cells never count as done."""
    scope = f"{len(selected)} selected ({', '.join(flags)}): " if flags else ""
    return f"{total} cells; {scope}{len(selected) - len(todo)} finished, {len(todo)} to run"


def select_cells(
    study: Study,
    only: list[str] | None = None,
    variants: list[str] | None = None,
    seeds: list[int] | None = None,
    shard: str | None = None,
) -> tuple[list[Cell], list[str]]:
    """The cells one process runs, in grid order, and the flags that chose them: the datasets
    (``--only``), variants (``--variant``) and seeds (``--seed``) named, then every N-th of
    those (``--shard I/N``). A value the study does not have is an error that lists its own."""
    cells, flags = study.cells, []
    for flag, wanted, key in (
        ("--only", only, lambda c: c.dataset),
        ("--variant", variants, lambda c: c.variant),
        ("--seed", seeds, lambda c: c.seed),
    ):
        if not wanted:
            continue
        have = list(dict.fromkeys(key(c) for c in study.cells))
        unknown = [w for w in dict.fromkeys(wanted) if w not in have]
        if unknown:
            what = {"--only": "dataset", "--variant": "variant", "--seed": "seed"}[flag]
            raise ConfigError(
                f"{flag} {', '.join(map(str, unknown))}: not a {what} of study {study.name} "
                f"({', '.join(map(str, have))})"
            )
        cells = [c for c in cells if key(c) in wanted]
        flags.append(flag)
    if shard:  # several workers share one machine (a GPU): each runs its own cells
        index, count = parse_shard(shard)
        cells = [c for k, c in enumerate(cells) if k % count == index]
        flags.append(f"--shard {shard}")
    return cells, flags


def run_study(
    path: str | Path,
    output_dir: str | Path | None = None,
    dry_run: bool = False,
    shard: str | None = None,
    only: list[str] | None = None,
    variants: list[str] | None = None,
    seeds: list[int] | None = None,
    checkpoint_minutes: float | None = None,
) -> Study:
    from rich.console import Console

    from lcl.trainer import train

    console = Console(stderr=True, soft_wrap=True)  # paths stay on one line in logs
    study = load_study(path, output_dir, checkpoint_minutes)
    # a part of the grid first (e.g. the small datasets, or one seed), the rest later
    cells, flags = select_cells(study, only, variants, seeds, shard)
    todo = [c for c in cells if not c.finished]
    counts = _progress_line(len(study.cells), cells, todo, flags)
    console.print(f"study {study.name}: {counts}, in {study.output_dir}")
    if dry_run:
        for cell in cells:
            state = {"finished": "done", "unfinished": "partial"}.get(cell.run.state(), "todo")
            note = ""
            if state == "partial" and (size := cell.run.checkpoint_bytes()):
                where = cell.run.checkpoint_progress()
                at = f"step {where[0]} of {where[1]}, epoch {where[2]:.2f}; " if where else ""
                note = f"  ({at}checkpoints: {format_bytes(size)})"
            if state == "partial":  # would its run start? (a lane's cell run by another machine)
                try:
                    check_resumable(cell.config, cell.run)
                except LCLError as err:
                    reason = str(err).removeprefix(f"{cell.run_dir} ").split(". ")[0]
                    note += f"  refused: {reason}"
            console.print(f"  {state:8s} {cell.run_dir}{note}")
        if len(todo) < len(study.cells):
            write_results(study)
        return study
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 writes
    for k, cell in enumerate(todo, 1):
        console.rule(f"[{k}/{len(todo)}] {cell.dataset} · {cell.variant} · seed {cell.seed}")
        started = time.time()
        train(cell.config)
        console.print(f"cell done in {time.time() - started:.0f} s")
        if is_main:
            write_results(study)
    if is_main:
        write_results(study)
    return study


def _encoder(cell: Cell) -> str:
    """The encoder the cell's run used: its own ``config.yaml`` (a finished cell is skipped, so
    the study file may name another encoder since), else the study's."""
    try:
        model = cell.run.read_config().get("model") or cell.config.model
    except RunFolderError:
        model = cell.config.model
    return encoder_name(str(model))


def _row(cell: Cell) -> dict[str, Any]:
    m = cell.run.read_metrics()
    history = cell.run.read_history()
    steps = None
    if history is not None:
        steps = max((h.get("step", 0) for h in history), default=None)
    train_runtime = m.get("train_runtime_seconds")
    # a resumed run's train_runtime covers only its last process's steps (older runs did not
    # record them: all their steps are counted, which understates a resumed run's step time)
    timed = m.get("train_steps_timed") or steps
    c = cell.config
    unread = unread_fields(c.loss)  # blank where the objective does not read them (CE's weighting)
    return {
        "dataset": cell.dataset,
        "variant": cell.variant,
        "seed": cell.seed,
        "model": _encoder(cell),
        "loss": c.loss,
        "weighting": "" if "weighting" in unread else c.weighting,
        "detach_weights": "" if "detach_weights" in unread else c.detach_weights,
        "memory_size": c.memory_size,
        "epochs": c.epochs,
        "best_epoch": m.get("best_epoch"),
        "train_examples": m.get("train_examples"),
        "device": m.get("device", ""),  # older runs did not record it
        # the resolved precision (fp32, bf16, fp16); older runs did not record it
        "precision": m.get("precision", ""),
        # metrics at full precision: results.md averages and differences these, and only
        # results.csv rounds them (rounding twice moved a 66.25 % table cell to 66.2)
        "val_accuracy": m["validation"]["accuracy"],
        "accuracy": m["test"]["accuracy"],
        "weighted_f1": m["test"]["weighted_f1"],
        "macro_f1": m["test"]["macro_f1"],
        # mean predictive entropy on test (nats): the paper's "more differentiated outputs"
        "mean_entropy": m["test"].get("mean_entropy"),
        # what the run is judged by: accuracy, or macro-F1 for multi-label runs
        "headline_metric": m.get("headline_metric", "accuracy"),
        "train_steps": steps,
        # evaluation passes are inside train_runtime, so this slightly overstates a step
        "seconds_per_step": round(train_runtime / timed, 3) if train_runtime and timed else None,
        "runtime_seconds": m.get("runtime_seconds"),
        "run_dir": str(cell.run_dir),
    }


CSV_DIGITS = 4  # decimals of the metric columns in results.csv
CSV_ROUNDED = {"val_accuracy", "accuracy", "weighted_f1", "macro_f1", "mean_entropy"}


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as results.csv writes it: metrics rounded to :data:`CSV_DIGITS` decimals."""
    return {
        k: round(v, CSV_DIGITS) if k in CSV_ROUNDED and isinstance(v, float) else v
        for k, v in row.items()
    }


METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted F1"}


def headline_metric(rows: list[dict[str, Any]]) -> str:
    """The metric tables and paired tests use: macro-F1 when every finished run is multi-label
    (their ``accuracy`` is subset accuracy), else accuracy."""
    kinds = {r.get("headline_metric") or "accuracy" for r in rows}
    return "macro_f1" if kinds == {"macro_f1"} else "accuracy"


def collect(study: Study) -> list[dict[str, Any]]:
    return [_row(c) for c in study.cells if c.finished]


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    mean = 100 * statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ({100 * statistics.stdev(values):.1f})"


def results_markdown(study: Study, rows: list[dict[str, Any]]) -> str:
    """The table of datasets x variants, and the paired tests; one of each per encoder when
    the finished cells used several, so that no table mixes encoders."""
    variants = list(dict.fromkeys(c.variant for c in study.cells))
    datasets = list(dict.fromkeys(c.dataset for c in study.cells))
    models = list(dict.fromkeys(r["model"] for r in rows))
    metric = METRIC_NAMES[headline_metric(rows)]
    head = f"Test {metric} / weighted F1 in % as mean (std) over seeds; n = finished seeds"
    if len(models) <= 1:
        encoder = f"; encoder: {models[0]}" if models else ""
        lines = [f"{head}{encoder}.", "", *_table(datasets, variants, rows)]
        lines += paired_lines(variants, rows) + length_lines(variants, rows)
        return "\n".join(lines + compute_lines(rows)) + "\n"
    lines = [f"{head}; one table per encoder: {', '.join(models)}."]
    for model in models:
        own = [r for r in rows if r["model"] == model]
        shown = [d for d in datasets if any(r["dataset"] == d for r in own)]
        lines += ["", f"## Encoder {model}", "", *_table(shown, variants, own)]
        lines += paired_lines(variants, own) + length_lines(variants, own)
    return "\n".join(lines + compute_lines(rows)) + "\n"


def _table(datasets: list[str], variants: list[str], rows: list[dict[str, Any]]) -> list[str]:
    metric = headline_metric(rows)
    short = {"accuracy": "acc", "macro_f1": "mF1"}[metric]
    lines = [
        "| dataset | " + " | ".join(f"{v} {short} | {v} wF1 | n" for v in variants) + " |",
        "|---|" + "---|---|---|" * len(variants),
    ]
    for d in datasets:
        cells = []
        for v in variants:
            rs = [r for r in rows if r["dataset"] == d and r["variant"] == v]
            cells += [
                _mean_std([r[metric] for r in rs]),
                _mean_std([r["weighted_f1"] for r in rs]),
                str(len(rs)),
            ]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return lines


BAR_POINTS = 2.0  # the convergence issue's bar: a trained model beats the probe by 2 points


def paired_lines(variants: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """Each variant against the reference (``ce`` if the study has it, else the first variant):
    test accuracy, weighted-F1 and entropy differences paired by dataset and seed, the exact
    sign test over those pairs, and exact McNemar tests on each pair's shared test texts.
    A study with a ``probe`` variant also gets every trained variant against the probe, with
    the datasets whose mean over seeds clears the bar (probe + :data:`BAR_POINTS`)."""
    reference = "ce" if "ce" in variants else variants[0]
    out = _paired_block(
        variants, rows, reference, f"Paired against {reference} (same dataset and seed)"
    )
    if "probe" in variants and reference != "probe":
        title = (
            "Against the frozen-encoder probe (same dataset and seed; the bar is the probe + "
            f"{BAR_POINTS:g} points in a dataset's mean over seeds)"
        )
        out += _paired_block(variants, rows, "probe", title, bar=True)
    return out


def length_lines(variants: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """Per trained variant, the runs that kept their last epoch (validation still rising when
    the epoch cap ended training, :func:`lcl.metrics.still_improving`): where they bunch, the
    cap and not early stopping decided the training length, and more epochs may help."""
    from lcl.metrics import still_improving

    out = []
    for v in variants:
        trained = [r for r in rows if r["variant"] == v and r["best_epoch"] not in (None, "")]
        if not trained:  # a probe trains no epochs
            continue
        capped = [r for r in trained if still_improving(r)]
        where = ", ".join(
            f"{d} {n}" for d, n in Counter(r["dataset"] for r in capped).most_common()
        )
        kept = statistics.fmean(float(r["best_epoch"]) for r in trained)
        caps = {float(r["epochs"]) for r in trained}
        of = f" of {caps.pop():g}" if len(caps) == 1 else ""
        out.append(
            f"- {v}: last epoch kept in {len(capped)} of {len(trained)} runs"
            + (f" ({where})" if where else "")
            + f"; mean kept epoch {kept:.1f}{of}"
        )
    if out:
        title = (
            "Training length (a run that kept its last epoch was still improving on validation "
            "when its epochs ran out: more epochs may help it)"
        )
        out = ["", f"{title}:", "", *out]
    return out


def compute_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Where the trained cells ran and in which precision, counted, when they were not all
    alike: a study resumed on other machines mixes them, and a reader should see it."""
    trained = [r for r in rows if r["best_epoch"] not in (None, "")]
    kinds = Counter(
        (r["device"] or "device not recorded", r["precision"] or "precision not recorded")
        for r in trained
    )
    if len(kinds) <= 1:
        return []
    listed = "; ".join(f"{d}, {p}: {n}" for (d, p), n in kinds.most_common())
    return ["", f"Trained cells by device and precision: {listed}."]


def _paired_block(
    variants: list[str], rows: list[dict[str, Any]], reference: str, title: str, bar: bool = False
) -> list[str]:
    from lcl.compare import paired_rows, sign_test

    metric = headline_metric(rows)
    metric_name = METRIC_NAMES[metric]
    out = []
    for v in variants:
        pairs = paired_rows(rows, reference, v, metric=metric)
        if v == reference or not pairs:
            continue
        s = sign_test([(float(a[metric]), float(b[metric])) for a, b in pairs])
        line = (
            f"- {v} − {reference}: {100 * s.mean_difference:+.1f} {metric_name} points over "
            f"{len(pairs)} dataset-seed pairs, higher in {s.wins}, lower in {s.losses}, "
            f"level in {s.ties} (sign test p = {s.p:.2g})"
        )
        if bar:
            line += _bar_summary(pairs, metric)
        if not bar or metric == "macro_f1":  # classes pooled: power, and where a change sits
            line += _per_class_summary(
                pairs, reference, "label" if metric == "macro_f1" else "class"
            )
        f1 = _both(pairs, "weighted_f1")
        if f1:
            t = sign_test(f1)
            line += (
                f"; weighted F1 {100 * t.mean_difference:+.1f} (higher in {t.wins}, "
                f"lower in {t.losses})"
            )
        entropy = _both(pairs, "mean_entropy")
        if entropy:
            e = sign_test(entropy)
            line += (
                f"; test entropy {e.mean_difference:+.3f} nats (lower in {e.losses} of "
                f"{len(entropy)})"
            )
        out.append(line + _mcnemar_summary(pairs, v, reference))
    if out:
        out = ["", f"{title}:", "", *out]
    return out


def _bar_summary(pairs: list[tuple[dict, dict]], metric: str) -> str:
    """``; bar met on 2 of 5 datasets (missed: 4hard-b +0.3, ...)``: per dataset, the mean over its
    seeds of (variant − probe) in points, against :data:`BAR_POINTS`."""
    by_dataset: dict[str, list[float]] = {}
    for a, b in pairs:
        by_dataset.setdefault(a["dataset"], []).append(float(b[metric]) - float(a[metric]))
    means = {d: 100 * statistics.fmean(v) for d, v in by_dataset.items()}
    missed = [f"{d} {m:+.1f}" for d, m in means.items() if round(m, 6) < BAR_POINTS]
    met = len(means) - len(missed)
    return f"; bar met on {met} of {len(means)} datasets" + (
        f" (missed: {', '.join(missed)})" if missed else ""
    )


def _per_class_summary(pairs: list[tuple[dict, dict]], reference: str, word: str) -> str:
    """Each class's test F1 paired over (class, dataset, seed), read from the runs'
    ``metrics.json``, with the exact sign test, and Spearman's rho between the reference's
    validation miss rate on a class and the change (:func:`lcl.compare.class_changes`); pairs
    whose runs are gone or hold no per-class metrics are left out."""
    from lcl.compare import class_changes, summarize_classes

    classes = []
    for a, b in pairs:
        try:
            metrics = [RunDir(r["run_dir"]).read_metrics() for r in (a, b)]
            classes += class_changes(*metrics)
        except (RunFolderError, KeyError, TypeError):
            continue
    if not classes:
        return ""
    result = summarize_classes(classes)
    t = result.f1
    line = (
        f"; per-{word} F1 over {len(classes)} ({word}, dataset, seed) pairs: higher in {t.wins}, "
        f"lower in {t.losses} (sign test p = {t.p:.2g})"
    )
    if not math.isnan(result.rho):
        line += (
            f", against {reference}'s validation miss rate rho {result.rho:+.2f} "
            f"(p = {result.rho_p:.2g})"
        )
    return line


def _both(pairs: list[tuple[dict, dict]], key: str) -> list[tuple[float, float]]:
    """``key``'s values of the pairs where both rows have one (older runs may lack it)."""
    return [
        (float(a[key]), float(b[key]))
        for a, b in pairs
        if a.get(key) not in (None, "") and b.get(key) not in (None, "")
    ]


def _mcnemar_summary(pairs: list[tuple[dict, dict]], variant: str, reference: str) -> str:
    """How many of the pairs an exact McNemar test on their shared test texts separates at
    p < 0.05, and in whose favour; pairs whose runs kept no per-text results are left out."""
    from lcl.compare import compare_runs

    tests = []
    for a, b in pairs:
        if not a.get("run_dir") or not b.get("run_dir"):
            continue
        try:
            tests.append(compare_runs(a["run_dir"], b["run_dir"]))
        except (RunFolderError, ValueError, OSError):
            continue
    if not tests:
        return ""
    ours = sum(t.p < 0.05 and t.only_b > t.only_a for t in tests)
    theirs = sum(t.p < 0.05 and t.only_a > t.only_b for t in tests)
    return (
        f"; McNemar p < 0.05 in {ours} of {len(tests)} pairs for {variant}, "
        f"{theirs} for {reference}"
    )


def write_results(study: Study) -> None:
    rows = collect(study)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_csv_row(r) for r in rows)
    atomic_write_text(study.output_dir / "results.csv", buffer.getvalue())
    atomic_write_text(
        study.output_dir / "results.md", f"# Study {study.name}\n\n" + results_markdown(study, rows)
    )
