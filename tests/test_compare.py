"""Paired tests behind every "A beats B" claim: McNemar per run pair, sign test over cells."""

import json
import math

import pytest

from lcl.compare import (
    compare_runs,
    mcnemar,
    paired_rows,
    sign_test,
    standard_error,
    texts_fingerprint,
)
from lcl.errors import LCLError


def test_mcnemar_counts_discordant_texts_and_gives_the_exact_p():
    a = [True, True, False, False, True, False, True, True]
    b = [True, False, True, True, True, True, True, False]
    m = mcnemar(a, b)
    assert (m.only_a, m.only_b, m.n) == (2, 3, 8)
    # two-sided exact: P(X<=2)+P(X>=3) for Bin(5, 1/2) = 1
    assert m.p == pytest.approx(1.0)
    m = mcnemar([True] * 10 + [False] * 2, [False] * 10 + [True] * 2)
    want = 2 * sum(math.comb(12, k) for k in range(3)) / 2**12
    assert (m.only_a, m.only_b) == (10, 2) and m.p == pytest.approx(want)
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_sign_test_drops_ties():
    s = sign_test([(0.5, 0.6), (0.5, 0.7), (0.4, 0.4), (0.6, 0.5), (0.3, 0.35)])
    assert (s.wins, s.losses, s.ties) == (3, 1, 1)
    assert s.mean_difference == pytest.approx((0.1 + 0.2 + 0 - 0.1 + 0.05) / 5)
    assert s.p == pytest.approx(2 * (1 + 4) / 16)
    assert sign_test([(0.1, 0.2)] * 8).p == pytest.approx(2 / 256)


def test_standard_error_of_a_test_accuracy():
    assert standard_error(0.5, 300) == pytest.approx(0.0289, abs=1e-4)


def _run(root, name, preds, keep_predictions=True, dataset="x"):
    d = root / name
    d.mkdir()
    rows = [{"text": f"t{i}", "label": "x", "pred": p} for i, p in enumerate(preds)]
    if keep_predictions:
        (d / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    correct = "".join("1" if r["pred"] == r["label"] else "0" for r in rows)
    (d / "metrics.json").write_text(json.dumps({"dataset": dataset, "test_correct": correct}))
    return d


def test_compare_runs_reads_predictions_or_the_metrics(tmp_path):
    a = _run(tmp_path, "a", ["x", "y", "x", "y"])
    b = _run(tmp_path, "b", ["x", "x", "x", "x"])
    m = compare_runs(a, b)
    assert (m.only_a, m.only_b) == (0, 2)
    c = _run(tmp_path, "c", ["x", "x", "x", "x"], keep_predictions=False)  # committed study cell
    assert (compare_runs(a, c).only_a, compare_runs(a, c).only_b) == (0, 2)
    other = _run(tmp_path, "other", ["x", "x", "x"], keep_predictions=False, dataset="y")
    with pytest.raises(ValueError, match="different texts"):
        compare_runs(c, other)
    with pytest.raises(LCLError):
        compare_runs(a, tmp_path / "missing")


def test_compare_cli(tmp_path, capsys):
    from lcl.cli import main

    a = _run(tmp_path, "a", ["x", "y", "x", "y"])
    b = _run(tmp_path, "b", ["x", "x", "x", "x"])
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy 50.0" in out and "test accuracy 100.0" in out
    assert "right: 0 texts" in out and "McNemar p = 0.5" in out
    c = _multilabel_run(tmp_path, "c", [["a"], ["a"], ["b"], []])
    d = _multilabel_run(tmp_path, "d", [["a"], ["a", "b"], ["b"], []])
    assert main(["compare", str(c), str(d)]) == 0
    out = capsys.readouterr().out
    assert "test subset accuracy 75.0" in out and "test subset accuracy 100.0" in out


def test_study_results_pair_each_variant_with_ce():
    from lcl.study import paired_lines

    rows = [
        {"dataset": d, "seed": s, "variant": v, "accuracy": acc}
        for d, s, v, acc in [
            ("x", 0, "ce", 0.5),
            ("x", 0, "lcl", 0.6),
            ("x", 1, "ce", 0.4),
            ("x", 1, "lcl", 0.45),
            ("y", 0, "ce", 0.7),
            ("y", 0, "lcl", 0.7),
        ]
    ]
    lines = paired_lines(["probe", "ce", "lcl"], rows)
    assert lines[1] == "Paired against ce (same dataset and seed):"
    assert lines[3].startswith(
        "- lcl − ce: +5.0 accuracy points over 3 dataset-seed pairs, "
        "higher in 2, lower in 0, level in 1"
    )


def test_study_results_count_the_runs_still_improving_at_the_epoch_cap():
    from lcl.study import length_lines

    def row(dataset, variant, best, loss="ce"):
        return {
            "dataset": dataset,
            "variant": variant,
            "loss": loss,
            "best_epoch": best,
            "epochs": 4,
        }

    rows = [
        row("x", "probe", None, loss="probe"),
        row("x", "ce", 4),
        row("x", "ce", 2),
        row("y", "ce", 4),
        row("y", "ce", 4),
        row("x", "lcl", 1, loss="lcl"),
    ]
    lines = length_lines(["probe", "ce", "lcl"], rows)
    assert lines[1].startswith("Training length (a run that kept its last epoch")
    assert lines[3:] == [
        "- ce: last epoch kept in 3 of 4 runs (y 2, x 1); mean kept epoch 3.5 of 4",
        "- lcl: last epoch kept in 0 of 1 runs; mean kept epoch 1.0 of 4",
    ]
    assert length_lines(["probe"], rows[:1]) == []


def test_study_results_hold_every_trained_variant_against_the_probe_bar():
    from lcl.study import paired_lines

    rows = [
        {"dataset": d, "seed": s, "variant": v, "accuracy": acc}
        for d, s, v, acc in [
            ("x", 0, "probe", 0.50),
            ("x", 0, "ce", 0.53),
            ("x", 0, "lcl", 0.51),
            ("x", 1, "probe", 0.50),
            ("x", 1, "ce", 0.51),  # x: ce +2.0 on the mean of its seeds, lcl +1.0
            ("x", 1, "lcl", 0.51),
            ("y", 0, "probe", 0.70),
            ("y", 0, "ce", 0.69),
            ("y", 0, "lcl", 0.75),
        ]
    ]
    lines = paired_lines(["probe", "ce", "lcl"], rows)
    start = lines.index(
        "Against the frozen-encoder probe (same dataset and seed; the bar is the probe + "
        "2 points in a dataset's mean over seeds):"
    )
    ce, lcl = lines[start + 2], lines[start + 3]
    assert ce.startswith("- ce − probe: +1.0 accuracy points over 3 dataset-seed pairs")
    assert "; bar met on 1 of 2 datasets (missed: y -1.0)" in ce
    assert lcl.startswith("- lcl − probe: +2.3 accuracy points")
    assert "; bar met on 1 of 2 datasets (missed: x +1.0)" in lcl
    assert not any(line.startswith("- probe − probe") for line in lines)
    # without a probe variant there is no bar block
    no_probe = paired_lines(["ce", "lcl"], [r for r in rows if r["variant"] != "probe"])
    assert not any("frozen-encoder probe" in line for line in no_probe)


def _multilabel_run(root, name, preds):
    """A multi-label run folder as the trainer leaves it: label lists, no single ``label``."""
    gold = [["a"], ["a", "b"], ["b"], []]
    d = root / name
    d.mkdir()
    rows = [{"text": f"t{i}", "labels": g, "pred": p} for i, (g, p) in enumerate(zip(gold, preds))]
    (d / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    correct = "".join("1" if set(r["pred"]) == set(r["labels"]) else "0" for r in rows)
    (d / "metrics.json").write_text(
        json.dumps({"dataset": "m", "multilabel": True, "test_correct": correct})
    )
    return d


def test_compare_runs_judges_a_multilabel_text_by_its_whole_label_set(tmp_path):
    from lcl.study import paired_lines

    a = _multilabel_run(tmp_path, "a", [["a"], ["b", "a"], ["b"], []])  # all four right
    b = _multilabel_run(tmp_path, "b", [["a"], ["a"], ["a", "b"], []])  # a subset, a superset
    m = compare_runs(a, b)
    assert (m.only_a, m.only_b, m.n) == (2, 0, 4)
    # the study's summary reads these folders too (it raised KeyError: 'label' before)
    rows = [
        {
            "dataset": "m",
            "seed": 0,
            "variant": v,
            "macro_f1": f1,
            "headline_metric": "macro_f1",
            "run_dir": str(d),
        }
        for v, f1, d in (("ce", 0.5, a), ("lcl", 0.4, b))
    ]
    summary = "\n".join(paired_lines(["ce", "lcl"], rows))
    assert "McNemar p < 0.05 in 0 of 1 pairs for lcl, 0 for ce" in summary


def test_multilabel_study_results_pair_the_labels_f1_over_seeds(tmp_path):
    from lcl.study import paired_lines

    labels = [f"label{k}" for k in range(8)]
    rows = []
    for seed in (0, 1):
        for variant, f1s in (("ce", [0.4] * 8), ("lcl", [0.5] * 7 + [0.3])):
            run = tmp_path / f"{variant}{seed}"
            run.mkdir()
            per_class = {name: {"f1": f1} for name, f1 in zip(labels, f1s)}
            (run / "metrics.json").write_text(json.dumps({"test": {"per_class": per_class}}))
            rows.append(
                {
                    "dataset": "goemotions:multilabel",
                    "seed": seed,
                    "variant": variant,
                    "macro_f1": sum(f1s) / 8,
                    "headline_metric": "macro_f1",
                    "run_dir": str(run),
                }
            )
    line = paired_lines(["ce", "lcl"], rows)[3]
    # 16 (label, seed) pairs: lcl higher in 14, lower in 2; exact two-sided sign test
    p = 2 * sum(math.comb(16, k) for k in range(3)) / 2**16
    assert (
        f"; per-label F1 over 16 (label, dataset, seed) pairs: higher in 14, lower in 2 "
        f"(sign test p = {p:.2g})" in line
    )
    assert "rho" not in line  # no validation metrics in these runs: no miss rate to rank by
    # a run folder that is gone leaves its pair out instead of failing the results
    (tmp_path / "lcl1" / "metrics.json").unlink()
    assert (
        "per-label F1 over 8 (label, dataset, seed) pairs" in paired_lines(["ce", "lcl"], rows)[3]
    )


def test_study_results_pair_the_classes_against_the_references_miss_rate(tmp_path):
    from lcl.study import paired_lines

    confusion = [[8, 1, 1], [6, 2, 2], [0, 0, 10]]
    rows = []
    for seed in (0, 1):
        for variant, f1, recall in (
            ("ce", [0.5, 0.4, 0.9], [0.8, 0.2, 1.0]),
            ("lcl", [0.5, 0.7, 0.8], [0.1, 0.1, 0.1]),
        ):
            run = _class_run(tmp_path, f"{variant}{seed}", f1, recall, confusion)
            rows.append(
                {
                    "dataset": "x",
                    "seed": seed,
                    "variant": variant,
                    "accuracy": 0.5,
                    "run_dir": str(run),
                }
            )
    line = paired_lines(["ce", "lcl"], rows)[3]
    # 6 (class, dataset, seed) pairs: lcl higher on class b twice, lower on c twice, level on a;
    # ce's validation miss rate ranks b > a > c, as the changes do: rho +1
    assert "; per-class F1 over 6 (class, dataset, seed) pairs: higher in 2, lower in 2" in line
    assert "against ce's validation miss rate rho +1.00" in line


def test_paired_rows_match_dataset_and_seed():
    rows = [
        {"dataset": d, "seed": s, "variant": v, "accuracy": acc}
        for d, s, v, acc in [
            ("x", 0, "ce", 0.5),
            ("x", 0, "lcl", 0.6),
            ("x", 1, "ce", 0.4),
            ("y", 0, "lcl", 0.7),
            ("y", 0, "ce", 0.7),
        ]
    ]
    pairs = paired_rows(rows, "ce", "lcl")
    assert [(a["dataset"], a["seed"], b["accuracy"]) for a, b in pairs] == [
        ("x", 0, 0.6),
        ("y", 0, 0.7),
    ]


def test_multilabel_study_results_are_judged_by_macro_f1():
    from lcl.study import _table, headline_metric, paired_lines

    rows = [
        {
            "dataset": "goemotions:multilabel",
            "seed": s,
            "variant": v,
            "accuracy": 0.3,  # subset accuracy: equal, so only macro-F1 can tell them apart
            "macro_f1": f1,
            "weighted_f1": f1,
            "headline_metric": "macro_f1",
        }
        for s, v, f1 in [(0, "ce", 0.40), (0, "lcl", 0.44), (1, "ce", 0.41), (1, "lcl", 0.43)]
    ]
    assert headline_metric(rows) == "macro_f1"
    assert headline_metric([*rows, {**rows[0], "headline_metric": "accuracy"}]) == "accuracy"
    lines = paired_lines(["ce", "lcl"], rows)
    assert lines[3].startswith("- lcl − ce: +3.0 macro-F1 points over 2 dataset-seed pairs")
    table = _table(["goemotions:multilabel"], ["ce", "lcl"], rows)
    assert table[0].startswith("| dataset | ce mF1 | ce wF1 | n | lcl mF1")
    assert (
        table[2]
        == "| goemotions:multilabel | 40.5 (0.7) | 40.5 (0.7) | 2 | 43.5 (0.7) | 43.5 (0.7) | 2 |"
    )


def _class_run(root, name, test_f1, val_recall, val_confusion=None, names=("a", "b", "c")):
    """A finished run's metrics with per-class test F1 and validation recall (4 test texts)."""
    d = root / name
    d.mkdir()

    def per_class(values, key):
        return {
            n: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 10, key: v}
            for n, v in zip(names, values)
        }

    validation = {"per_class": per_class(val_recall, "recall")}
    if val_confusion is not None:
        validation["confusion_matrix"] = val_confusion
    metrics = {
        "dataset": "x",
        "label_names": list(names),
        "test_correct": "1010",
        "test": {"per_class": per_class(test_f1, "f1")},
        "validation": validation,
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d


def test_compare_classes_pairs_f1_and_reads_the_miss_rate_on_validation(tmp_path):
    from lcl.compare import compare_classes

    confusion = [[8, 1, 1], [6, 2, 2], [0, 0, 10]]  # rows true, columns predicted
    a = _class_run(tmp_path, "a", [0.5, 0.4, 0.9], [0.8, 0.2, 1.0], confusion)
    b = _class_run(tmp_path, "b", [0.5, 0.7, 0.8], [0.1, 0.1, 0.1])  # B's validation unused
    r = compare_classes(a, b)
    assert [c.name for c in r.classes] == ["b", "a", "c"]  # most missed by A on validation first
    assert [round(c.missed_a, 6) for c in r.classes] == [0.8, 0.2, 0.0]
    assert [c.confused_with_a for c in r.classes] == ["a", "b", None]  # c: no mistake at all
    assert (r.f1.wins, r.f1.losses, r.f1.ties) == (1, 1, 1)
    assert r.rho == pytest.approx(1.0)  # B gains most where A misses most (+0.3, 0, -0.1)
    worse = _class_run(tmp_path, "worse", [0.5, 0.1, 1.0], [0.8, 0.2, 1.0])
    assert compare_classes(a, worse).rho == pytest.approx(-1.0)
    assert compare_classes(a, worse).classes[0].confused_with_a == "a"
    assert compare_classes(worse, a).classes[0].confused_with_a is None  # no confusion saved


def test_compare_classes_refuses_runs_it_cannot_pair(tmp_path):
    from lcl.compare import compare_classes

    a = _class_run(tmp_path, "a", [0.5, 0.4, 0.9], [0.8, 0.2, 1.0])
    other = _class_run(tmp_path, "other", [0.5, 0.4, 0.9], [0.8, 0.2, 1.0], names=("a", "b", "d"))
    with pytest.raises(LCLError, match="different classes"):
        compare_classes(a, other)
    bare = _run(tmp_path, "bare", ["x", "y", "x", "y"], keep_predictions=False)
    with pytest.raises(LCLError, match="no per-class test metrics"):
        compare_classes(bare, a)


def test_compare_cli_per_class_and_one_line_errors(tmp_path, capsys):
    from lcl.cli import main

    a = _class_run(
        tmp_path, "a", [0.5, 0.4, 0.9], [0.8, 0.2, 1.0], [[8, 1, 1], [6, 2, 2], [0, 0, 10]]
    )
    b = _class_run(tmp_path, "b", [0.5, 0.7, 0.8], [0.1, 0.1, 0.1])
    assert main(["compare", str(a), str(b), "--per-class"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert ["b", "10", "80.0%", "40.0", "70.0", "+30.0", "a"] in lines
    assert "higher on 1 classes, lower on 1, level on 1" in out and "+1.00" in out
    metrics = json.loads((b / "metrics.json").read_text())
    del metrics["validation"]  # a reference without validation metrics: no miss rate
    (b / "metrics.json").write_text(json.dumps(metrics))
    assert main(["compare", str(b), str(a), "--per-class"]) == 0
    out = capsys.readouterr().out
    assert ["b", "10", "-", "70.0", "40.0", "-30.0", "-"] in [
        line.split() for line in out.splitlines()
    ]
    assert "no rank correlation with A's validation miss rate" in out
    other = _run(tmp_path, "other", ["x", "y", "x"], keep_predictions=False, dataset="y")
    assert main(["compare", str(a), str(other)]) == 2  # different test texts: no traceback
    assert "tested on different texts" in capsys.readouterr().err


def test_compare_classes_pairs_older_runs_by_dataset_and_class_counts(tmp_path):
    from lcl.compare import compare_classes

    a = _class_run(tmp_path, "a", [0.5, 0.4, 0.9], [0.8, 0.2, 1.0])
    b = _class_run(tmp_path, "b", [0.5, 0.7, 0.8], [0.1, 0.1, 0.1])
    for run in (a, b):  # as written before test_correct existed
        metrics = json.loads((run / "metrics.json").read_text())
        del metrics["test_correct"]
        (run / "metrics.json").write_text(json.dumps(metrics))
    assert compare_classes(a, b).rho == pytest.approx(1.0)
    metrics = json.loads((b / "metrics.json").read_text())
    metrics["test"]["per_class"]["c"]["support"] = 11
    (b / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(LCLError, match="different texts"):
        compare_classes(a, b)


def test_check_per_class_pools_every_finished_pair_of_a_study(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    study = tmp_path / "study"
    for dataset in ("d1", "d2"):
        for seed in (0, 1):
            for variant, f1 in (("ce", [0.5, 0.4, 0.9]), ("lcl", [0.5, 0.7, 0.8])):
                folder = study / dataset / variant
                folder.mkdir(parents=True, exist_ok=True)
                _class_run(folder, f"seed{seed}", f1, [0.8, 0.2, 1.0])
    (study / "d2" / "lcl" / "seed1" / "metrics.json").unlink()  # an unfinished cell: left out
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "check_per_class.py"
    run = subprocess.run(
        [sys.executable, str(script), str(study), "ce", "lcl"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    lines = {line.split()[0]: line for line in run.stdout.splitlines()[1:]}
    assert " 2 seed(s)    6 classes" in lines["d1"] and " 1 seed(s)    3 classes" in lines["d2"]
    assert " 3 seed(s)    9 classes" in lines["all"] and "higher 3, lower 3" in lines["all"]
    assert "rho +1.00" in lines["d1"]
    none = subprocess.run(
        [sys.executable, str(script), str(study), "ce", "scl"], capture_output=True, text=True
    )
    assert none.returncode == 1 and "no dataset has finished ce and scl" in none.stderr


def test_compare_runs_refuses_a_seeded_split_across_seeds(tmp_path):
    """ISEAR draws its test split with the run's seed: committed cells (no predictions) of two
    seeds hold the same number of texts yet different texts, so they are not paired; the
    fingerprint written since decides where both runs carry it."""

    def cell(name, seed, preds, fingerprint=None):
        d = _run(tmp_path, name, preds, keep_predictions=False, dataset="isear")
        metrics = json.loads((d / "metrics.json").read_text())
        metrics["seed"] = seed
        if fingerprint:
            metrics["test_texts_sha256"] = fingerprint
        (d / "metrics.json").write_text(json.dumps(metrics))
        return d

    s0 = cell("s0", 0, ["x", "y", "x", "y"])
    s1 = cell("s1", 1, ["x", "x", "x", "x"])
    with pytest.raises(ValueError, match="different texts"):
        compare_runs(s0, s1)
    assert compare_runs(s0, cell("s0b", 0, ["x", "x", "x", "x"])).only_b == 2
    from lcl.data.registry import test_split_is_seeded

    # custom data may carve its test split with the seed; a released split does not move
    assert test_split_is_seeded("csv:data/mine.csv") and test_split_is_seeded("isear")
    assert not test_split_is_seeded("empathetic_dialogues:4hard-a")
    # with fingerprints on both sides they decide, seeds aside
    f0 = cell("f0", 0, ["x", "y", "x", "y"], fingerprint="aa")
    assert compare_runs(f0, cell("f1", 1, ["x", "x", "x", "x"], fingerprint="aa")).only_b == 2
    with pytest.raises(ValueError, match="different texts"):
        compare_runs(f0, cell("f2", 0, ["x", "x", "x", "x"], fingerprint="bb"))
    # kept predictions are fingerprinted the same way as the metrics' field
    kept = _run(tmp_path, "kept", ["x", "x", "x", "x"])
    meta = json.loads((kept / "metrics.json").read_text())
    assert texts_fingerprint([f"t{i}" for i in range(4)]) != texts_fingerprint(["t0t1t2t3"])
    meta["test_texts_sha256"] = texts_fingerprint([f"t{i}" for i in range(4)])
    (kept / "metrics.json").write_text(json.dumps(meta))
    fp = cell("fp", 3, ["x", "y", "x", "y"], fingerprint=meta["test_texts_sha256"])
    assert compare_runs(kept, fp).only_a == 2
