"""Paired comparisons of runs: what a claim like "LCL beats CE" rests on.

Two tests, both exact and both on pairs that share everything but the objective:

- **McNemar** on one dataset and seed: the test texts only one of the two runs gets right
  (``b`` for run A, ``c`` for run B); under "no difference" each such text is a fair coin, so
  ``p`` is the two-sided binomial tail of ``min(b, c)`` in ``b + c`` tosses.
- **Sign test** over cells: each (dataset, seed) pair counts +1 where B's accuracy is higher,
  −1 where lower (ties dropped); ``p`` is the two-sided binomial tail.

Each test-set accuracy also carries its own sampling noise: one binomial standard error,
``sqrt(acc (1 − acc) / n)``, is reported beside it (about 2.9 points at 50 % on 300 texts).

Per class (:func:`compare_classes`), the question the paper's mechanism raises: LCL weights a
negative by how confusable its class is with the anchor's, so its gain over CE should be largest
on the classes CE confuses most. Each class's F1 is paired (sign test over classes), and
Spearman's rank correlation is taken between the reference run's miss rate on a class
(1 − recall) and the F1 change B − A: positive when B gains most where A errs most. The miss
rate is read on *validation*: taken on the test texts it would share their noise with F1 A, and
regression to the mean alone would make the correlation positive.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path


def binomial_two_sided(k: int, n: int) -> float:
    """P(X ≤ min(k, n−k)) + P(X ≥ max(k, n−k)) for X ~ Bin(n, 1/2), capped at 1."""
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(k, n, 0.5, alternative="two-sided").pvalue)


@dataclass
class McNemar:
    only_a: int  # texts run A gets right and run B wrong
    only_b: int
    n: int  # texts compared
    p: float


def mcnemar(correct_a, correct_b) -> McNemar:
    """Exact McNemar test on two equal-length sequences of booleans (right/wrong per text)."""
    if len(correct_a) != len(correct_b):
        raise ValueError(
            f"the runs predicted different numbers of texts ({len(correct_a)} and {len(correct_b)})"
        )
    only_a = sum(1 for a, b in zip(correct_a, correct_b) if a and not b)
    only_b = sum(1 for a, b in zip(correct_a, correct_b) if b and not a)
    return McNemar(
        only_a, only_b, len(correct_a), binomial_two_sided(min(only_a, only_b), only_a + only_b)
    )


def texts_fingerprint(texts) -> str:
    """SHA-256 of test texts in file order (``metrics.json``'s ``test_texts_sha256``): two runs
    are paired only when they tested on the same texts in the same order."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def run_correct(run_dir: str | Path) -> tuple[list[str] | None, list[bool], dict]:
    """(test texts or None, right or wrong per test text, metrics) of a finished run: from
    ``predictions.jsonl`` where it is kept, else from ``metrics.json``'s ``test_correct``.

    A multi-label run's text is right when its predicted label set is its gold set (subset
    accuracy, the meaning of its ``test_correct``)."""
    from lcl.run_dir import RunDir, RunFolderError

    run = RunDir(run_dir)
    metrics = run.read_metrics()
    path = Path(run_dir) / "predictions.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        return [r["text"] for r in rows], [_row_correct(r) for r in rows], metrics
    if "test_correct" in metrics:
        return None, [c == "1" for c in metrics["test_correct"]], metrics
    raise RunFolderError(
        f"{run_dir}: neither predictions.jsonl nor test_correct in metrics.json "
        "(a run older than the paired tests): McNemar needs the per-text results"
    )


def _row_correct(row: dict) -> bool:
    """One predictions.jsonl row right or wrong: the label (single-label run) or the whole label
    set (multi-label run: ``labels`` gold list, ``pred`` predicted list)."""
    if "labels" in row:
        return set(row["labels"]) == set(row["pred"])
    return row["label"] == row["pred"]


def compare_runs(run_a: str | Path, run_b: str | Path) -> McNemar:
    """McNemar of two finished runs on the same test texts."""
    texts_a, correct_a, metrics_a = run_correct(run_a)
    texts_b, correct_b, metrics_b = run_correct(run_b)
    if not _same_test_texts(
        texts_a, metrics_a, texts_b, metrics_b, len(correct_a) == len(correct_b)
    ):
        from lcl.errors import UsageError

        raise UsageError(f"{run_a} and {run_b} were tested on different texts")
    return mcnemar(correct_a, correct_b)


def _same_test_texts(texts_a, metrics_a: dict, texts_b, metrics_b: dict, same_length: bool) -> bool:
    """Whether two runs tested on the same texts: by the texts' fingerprints where both are
    known (kept predictions, or ``test_texts_sha256`` in runs since stop 56); else, for older
    committed cells, by dataset and length, and by seed where the dataset draws its test split
    with the seed (ISEAR)."""
    from lcl.data.registry import test_split_is_seeded

    prints = [
        texts_fingerprint(texts) if texts is not None else metrics.get("test_texts_sha256")
        for texts, metrics in ((texts_a, metrics_a), (texts_b, metrics_b))
    ]
    if None not in prints:
        return prints[0] == prints[1]
    dataset = metrics_a.get("dataset")
    return (
        dataset == metrics_b.get("dataset")
        and same_length
        and (
            not test_split_is_seeded(str(dataset)) or metrics_a.get("seed") == metrics_b.get("seed")
        )
    )


@dataclass
class SignTest:
    wins: int  # pairs where B is higher
    losses: int
    ties: int
    mean_difference: float  # mean of B − A, in the metric's unit
    differences: list[float]
    p: float


def sign_test(pairs: list[tuple[float, float]]) -> SignTest:
    """Sign test of B against A over paired values ``(a, b)``."""
    diffs = [b - a for a, b in pairs]
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    return SignTest(
        wins,
        losses,
        len(diffs) - wins - losses,
        statistics.fmean(diffs) if diffs else math.nan,
        diffs,
        binomial_two_sided(min(wins, losses), wins + losses),
    )


def standard_error(accuracy: float, n: int) -> float:
    """One binomial standard error of a test-set accuracy of ``n`` texts."""
    return math.sqrt(accuracy * (1 - accuracy) / n) if n else math.nan


def paired_rows(
    rows: list[dict],
    variant_a: str,
    variant_b: str,
    metric: str = "accuracy",
    datasets: list[str] | None = None,
) -> list[tuple[dict, dict]]:
    """Rows of ``results.csv`` (as dicts) matched by dataset and seed."""
    by_key = {(r["dataset"], int(r["seed"]), r["variant"]): r for r in rows}
    out = []
    for (dataset, seed, variant), row_a in sorted(by_key.items()):
        if variant != variant_a or (datasets and dataset not in datasets):
            continue
        row_b = by_key.get((dataset, seed, variant_b))
        if (
            row_b is not None
            and row_a.get(metric) not in (None, "")
            and row_b.get(metric) not in (None, "")
        ):
            out.append((row_a, row_b))
    return out


@dataclass
class ClassChange:
    name: str
    support: int  # test texts of the class
    f1_a: float
    f1_b: float
    missed_a: float | None  # 1 − recall of run A on validation (None: not recorded)
    confused_with_a: str | None  # the class A most often predicts instead on validation


@dataclass
class ClassComparison:
    classes: list[ClassChange]
    f1: SignTest  # over classes: F1 of B against A
    rho: float  # Spearman: A's validation miss rate against B's F1 change (nan: not computable)
    rho_p: float


def class_changes(metrics_a: dict, metrics_b: dict) -> list[ClassChange]:
    """Each class's test F1 in two runs' ``metrics.json`` contents, with run A's validation miss
    rate and commonest mistake where its metrics hold them; most missed first. ``KeyError``
    when either run has no per-class test metrics."""
    per_a, per_b = metrics_a["test"]["per_class"], metrics_b["test"]["per_class"]
    validation = metrics_a.get("validation") or {}
    val_a = validation.get("per_class") or {}
    confusion = validation.get("confusion_matrix")  # rows: true class, columns: predicted
    names = metrics_a.get("label_names") or list(per_a)
    classes = []
    for i, name in enumerate(names):
        confused_with = None
        if confusion is not None:
            row = [n if j != i else -1 for j, n in enumerate(confusion[i])]
            if max(row) > 0:
                confused_with = names[row.index(max(row))]
        classes.append(
            ClassChange(
                name,
                int(per_a[name].get("support", 0)),
                per_a[name]["f1"],
                per_b[name]["f1"],
                1 - val_a[name]["recall"] if name in val_a else None,
                confused_with,
            )
        )
    return sorted(classes, key=lambda c: -(c.missed_a or 0.0))


def summarize_classes(classes: list[ClassChange]) -> ClassComparison:
    """The sign test over the classes' F1 changes, and Spearman's rho between run A's validation
    miss rate and the change (nan when a miss rate is missing or either side is constant)."""
    from scipy.stats import spearmanr

    missed = [c.missed_a for c in classes]
    gains = [c.f1_b - c.f1_a for c in classes]
    rho = rho_p = math.nan
    if len(classes) > 2 and None not in missed and len(set(missed)) > 1 and len(set(gains)) > 1:
        result = spearmanr(missed, gains)
        rho, rho_p = float(result.statistic), float(result.pvalue)
    return ClassComparison(classes, sign_test([(c.f1_a, c.f1_b) for c in classes]), rho, rho_p)


def compare_classes(run_a: str | Path, run_b: str | Path) -> ClassComparison:
    """Per-class F1 of two finished runs on the same test texts, paired class by class."""
    from lcl.errors import UsageError
    from lcl.run_dir import RunDir, RunFolderError

    metrics_a, metrics_b = RunDir(run_a).read_metrics(), RunDir(run_b).read_metrics()
    try:
        compare_runs(run_a, run_b)  # the same test texts, or a UsageError
        per_text = True
    except RunFolderError:  # a run older than the per-text results: checked by dataset below
        per_text = False
    for run, metrics in ((run_a, metrics_a), (run_b, metrics_b)):
        if "per_class" not in metrics.get("test", {}):
            raise UsageError(f"{run}: metrics.json has no per-class test metrics")
    names = metrics_a.get("label_names")
    if not names or names != metrics_b.get("label_names"):
        raise UsageError(f"{run_a} and {run_b} have different classes: no per-class pairing")
    classes = class_changes(metrics_a, metrics_b)
    support_b = metrics_b["test"]["per_class"]
    if not per_text and (
        metrics_a.get("dataset") != metrics_b.get("dataset")
        or any(c.support != support_b[c.name].get("support", 0) for c in classes)
    ):
        raise UsageError(f"{run_a} and {run_b} were tested on different texts")
    return summarize_classes(classes)
