"""The bundled demo dataset: short first-person situations for five confusable emotions.

``lcl/data/demo/{train,validation,test}.csv`` (300 / 60 / 60, balanced), written by
``lcl/data/demo/make_demo.py`` from hand-written phrase lists. It ships with the package
so that training runs with no data directory.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from .custom import load_custom

DEMO_DIR = Path(__file__).resolve().parent / "demo"


def load(data_dir: Path | None = None, **_: object) -> datasets.DatasetDict:
    return load_custom(DEMO_DIR, "csv")
