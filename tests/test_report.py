"""Tests for lcl.report (helpers for tests on real runs are in tests/helpers.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import (
    EMOTIONS,
    check_png,
    check_report,
    check_screenshot,
    find_chromium,
    render_screenshot,
    write_synthetic_run,
)

from lcl.report import REQUIRED_FILES, ReportError, build_report, cluster_order, load_run
from lcl.report.analysis import loss_part_title, training_series

# --------------------------------------------------------------------------- tests


def test_single_run_report(tmp_path):
    run = write_synthetic_run(tmp_path / "lcl-seed0", n_classes=5)
    html_path = build_report([run])
    assert html_path == run / "report.html"
    check_report(html_path, n_runs=1, label_names=EMOTIONS[:5])
    text = html_path.read_text(encoding="utf-8")
    assert "lcl · seed 0" in text
    assert "weighting network" in text
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy'] * 100:.2f}%" in text


def test_run_names_say_what_differs_from_the_default(tmp_path):
    runs = [
        write_synthetic_run(tmp_path / "ce", loss="ce"),
        write_synthetic_run(tmp_path / "self", config_extra={"weighting": "self"}),
        write_synthetic_run(tmp_path / "det", config_extra={"detach_weights": True}),
    ]
    text = build_report(runs, tmp_path / "report").read_text(encoding="utf-8")
    for name in ("ce · seed 0", "lcl (self) · seed 0", "lcl detached · seed 0"):
        assert name in text, name


def test_pair_report_side_by_side(tmp_path):
    ce = write_synthetic_run(tmp_path / "runs" / "ce-0", loss="ce", n_classes=6)
    lcl = write_synthetic_run(tmp_path / "runs" / "lcl-0", loss="lcl", n_classes=6)
    html_path = build_report([ce, lcl])
    assert html_path == tmp_path / "runs" / "report" / "report.html"
    pngs = check_report(html_path, n_runs=2, label_names=EMOTIONS[:6])
    names = {p.name for p in pngs}
    assert {"confusion_matrix_ce-seed-0.png", "confusion_matrix_lcl-seed-0.png"} <= names
    text = html_path.read_text(encoding="utf-8")
    assert "Δ lcl · seed 0 − ce · seed 0" in text
    assert "pp" in text  # differences shown in percentage points
    assert "main model" in text and "weighting network" in text
    # Explicit output dir works too, and the run dirs are left untouched.
    out = build_report([str(ce), str(lcl)], output_dir=tmp_path / "elsewhere")
    assert out == tmp_path / "elsewhere" / "report.html"
    assert not (ce / "report.html").exists()


def test_duplicate_labels_are_disambiguated_and_text_escaped(tmp_path):
    a = write_synthetic_run(
        tmp_path / "a", n_classes=4, config_extra={"note": "<script>alert(1)</script>"}
    )
    b = write_synthetic_run(tmp_path / "b", n_classes=4)
    html_path = build_report([a, b], output_dir=tmp_path / "out")
    text = html_path.read_text(encoding="utf-8")
    assert "lcl · seed 0 [a]" in text and "lcl · seed 0 [b]" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    check_report(html_path, n_runs=2)


def test_label_order_is_aligned_between_runs(tmp_path):
    a = write_synthetic_run(tmp_path / "a", loss="ce", n_classes=4)
    b = write_synthetic_run(tmp_path / "b", loss="lcl", n_classes=4)
    # Rewrite b's metrics/confusability with the classes in reverse order.
    m = json.loads((b / "metrics.json").read_text())
    rev = m["label_names"][::-1]
    cm = np.array(m["test"]["confusion_matrix"])[::-1, ::-1].tolist()
    m["label_names"], m["test"]["confusion_matrix"] = rev, cm
    (b / "metrics.json").write_text(json.dumps(m))
    build_report([a, b], output_dir=tmp_path / "out")

    from lcl.report import _align

    runs = [load_run(a), load_run(b)]
    _align(runs)
    expected = np.array(
        json.loads((tmp_path / "b" / "metrics.json").read_text())["test"]["confusion_matrix"]
    )
    assert runs[1].label_names == runs[0].label_names
    np.testing.assert_array_equal(runs[1].confusion, expected[::-1, ::-1])


def test_cluster_order_groups_confused_classes():
    # Classes 0 & 2 confuse each other, as do 1 & 3: they should end up adjacent.
    cm = np.array([[60, 0, 40, 0], [0, 55, 0, 45], [35, 0, 65, 0], [0, 40, 0, 60]])
    order = cluster_order(cm)
    assert sorted(order) == [0, 1, 2, 3]
    pos = {c: i for i, c in enumerate(order)}
    assert abs(pos[0] - pos[2]) == 1 and abs(pos[1] - pos[3]) == 1


@pytest.mark.parametrize("missing", REQUIRED_FILES)
def test_missing_file_raises(tmp_path, missing):
    run = write_synthetic_run(tmp_path / "run", n_classes=4)
    (run / missing).unlink()
    with pytest.raises(ReportError, match=re.escape(missing)):
        build_report([run])
    assert not (run / "report.html").exists()


def test_missing_or_bad_run_dir(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        build_report([tmp_path / "nope"])
    with pytest.raises(ReportError, match="no run directories"):
        build_report([])
    run = write_synthetic_run(tmp_path / "run", n_classes=4)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(ReportError, match="metrics.json"):
        build_report([run])
    other = write_synthetic_run(tmp_path / "other", n_classes=5)
    good = write_synthetic_run(tmp_path / "good", n_classes=4)
    with pytest.raises(ReportError, match="different classes"):
        build_report([good, other], output_dir=tmp_path / "out")
    np.save(good / "test_embeddings.npy", np.zeros((3, 8), dtype=np.float32))
    with pytest.raises(ReportError, match="test_embeddings.npy"):
        build_report([good])


def test_probe_run_without_history_has_no_training_curves(tmp_path):
    ce = write_synthetic_run(tmp_path / "runs" / "ce-0", loss="ce", n_classes=4)
    probe = write_synthetic_run(tmp_path / "runs" / "probe-0", loss="probe", n_classes=4)
    (probe / "history.json").unlink()
    metrics = json.loads((probe / "metrics.json").read_text())
    metrics.update({"loss": "probe", "best_epoch": None})
    (probe / "metrics.json").write_text(json.dumps(metrics))
    run = load_run(probe)
    assert run.history is None

    html_path = build_report([probe], output_dir=tmp_path / "alone")
    text = html_path.read_text(encoding="utf-8")
    assert "Training curves" not in text and "#training" not in text
    assert not (tmp_path / "alone" / "training_curves.png").exists()
    for png in (
        "confusion_matrix.png",
        "per_class_f1.png",
        "confusability.png",
        "embeddings_tsne.png",
    ):
        check_png(tmp_path / "alone" / png)
    assert ">None<" not in text  # best epoch null shows as a dash

    # beside a trained run, the curves are those of the trained run
    html_path = build_report([ce, probe], output_dir=tmp_path / "pair")
    assert "Training curves" in html_path.read_text(encoding="utf-8")
    check_png(tmp_path / "pair" / "training_curves.png")


def test_a_trained_run_without_history_is_incomplete(tmp_path):
    run = write_synthetic_run(tmp_path / "run", loss="lcl", n_classes=4)
    (run / "history.json").unlink()
    with pytest.raises(ReportError, match="history.json"):
        load_run(run)


def test_training_curves_plot_every_logged_loss_part(tmp_path):
    run = write_synthetic_run(tmp_path / "run", loss="scl", n_classes=4)
    history = json.loads((run / "history.json").read_text())
    for entry in history:
        if "loss" in entry:
            entry["loss_margin"] = 0.5 * entry["loss"]
    (run / "history.json").write_text(json.dumps(history))
    losses, _ = training_series(load_run(run).history)
    assert set(losses) == {"loss", "loss_ce", "loss_contrastive", "loss_margin"}
    assert loss_part_title("loss_margin") == "Margin loss"
    assert loss_part_title("loss_contrastive") == "Contrastive loss"

    plain = write_synthetic_run(tmp_path / "plain", loss="scl", n_classes=4)
    build_report([run], tmp_path / "with")
    build_report([plain], tmp_path / "without")
    with_part = (tmp_path / "with" / "training_curves.png").read_bytes()
    assert with_part != (tmp_path / "without" / "training_curves.png").read_bytes()


def test_sections_and_navigation_come_from_one_list(tmp_path):
    from lcl.report.sections import SECTIONS

    run = write_synthetic_run(tmp_path / "run", n_classes=4)
    text = build_report([run]).read_text(encoding="utf-8")
    nav = re.search(r"<nav>(.*?)</nav>", text).group(1)
    shown = [s.sid for s in SECTIONS if s.sid != "label-confusion"]  # multi-label runs only
    assert re.findall(r"href='#([^']+)'", nav) == shown
    assert re.findall(r"<section id='([^']+)'", text) == shown


def test_report_renders_in_headless_chromium(tmp_path):
    if find_chromium() is None:
        pytest.skip(
            "no chromium / chromium-browser / google-chrome binary on PATH; CI installs one"
        )
    ce = write_synthetic_run(tmp_path / "runs" / "ce-0", loss="ce", n_classes=6)
    lcl = write_synthetic_run(tmp_path / "runs" / "lcl-0", loss="lcl", n_classes=6)
    html_path = build_report([ce, lcl])
    shot = render_screenshot(html_path, tmp_path / "screenshot.png", tmp_path / "profile")
    check_screenshot(shot)
