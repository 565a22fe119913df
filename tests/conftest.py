"""Shared fixtures: the real datasets beside the repo, and one short real training run."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared evaluation data: $LCL_DATA_DIR, else ../shared/data beside the repo.

    Tests that need it are skipped, with the reason, when ../shared/data is absent (a clone
    without the data); a $LCL_DATA_DIR that names a missing folder is a mistake and fails.
    """
    given = os.environ.get("LCL_DATA_DIR")
    path = Path(given or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not path.is_dir():
        if given:
            pytest.fail(f"LCL_DATA_DIR={given} is not a folder")
        pytest.skip(
            f"evaluation data not found at {path}; set LCL_DATA_DIR or put it at ../shared/data"
        )
    return path


@pytest.fixture(scope="session")
def trained_run(data_dir, tmp_path_factory):
    """LCL with the paper's weighting network (the default recipe weighs with the main model
    itself) on 300 ISEAR training texts for one epoch with the embedded MiniLM (a minute or two)."""
    import json

    from lcl.cli import main

    run = tmp_path_factory.mktemp("e2e") / "isear-lcl"
    code = main(
        [
            "train",
            "--dataset",
            "isear",
            "--data-dir",
            str(data_dir),
            "--loss",
            "lcl",
            "--weighting",
            "network",
            "--epochs",
            "1",
            "--max-train-samples",
            "300",
            "--seed",
            "0",
            "--output-dir",
            str(run),
        ]
    )
    assert code == 0
    return run, json.loads((run / "metrics.json").read_text())


def pytest_terminal_summary(terminalreporter):
    """One line naming which of issue 18's integrity cases ran (tests ``test_caseNN_*``)."""
    import re

    outcome: dict[int, str] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 2}
    for key in rank:
        for report in terminalreporter.stats.get(key, []):
            match = re.search(r"test_case(\d\d)_", getattr(report, "nodeid", ""))
            if match:
                case = int(match.group(1))
                if rank[key] >= rank.get(outcome.get(case, "passed"), 0):
                    outcome[case] = key
    if outcome:
        cases = " ".join(f"{c:02d}:{outcome[c]}" for c in sorted(outcome))
        passed = sum(v == "passed" for v in outcome.values())
        terminalreporter.write_line(
            f"issue 18 integrity cases ({passed}/14 passed, {len(outcome)}/14 ran): {cases}"
        )
