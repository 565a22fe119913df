"""GoEmotions (Demszky et al., 2020).

``goemotions`` is the LCL setting: single-label comments, ``neutral`` dropped; label names are
``labels.txt`` minus ``neutral``, in file order (27 classes). ``goemotions:multilabel`` is the
release as it is: every comment with all its labels, the 28 classes of ``labels.txt`` (27
emotions and neutral), label a ``Sequence(ClassLabel)``.

Reads ``{train,dev,test}.tsv`` and ``labels.txt`` from ``data_dir/goemotions`` (or
``data_dir``). The TSVs have no header; texts starting with ``"`` are CSV-quoted with
doubled inner quotes, so they are read with pandas' default quoting, as the paper did. The
second column holds the comma-separated label indices.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd

from .registry import DataError, build, candidate_dirs, find_files, from_hub, looked_for

FILES = ("train.tsv", "dev.tsv", "test.tsv", "labels.txt")
_SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
DROPPED = "neutral"


def _read_tsv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            sep="\t",
            header=None,
            names=["text", "labels", "id"],
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8",
        )
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse as GoEmotions TSV: {exc}") from exc


def _read_split(path: Path, keep: dict[int, int]) -> tuple[list[str], list[int]]:
    df = _read_tsv(path)
    single = df[~df["labels"].str.contains(",")]
    texts, labels = [], []
    for text, raw in zip(single["text"], single["labels"]):
        old = int(raw)
        if old in keep:
            texts.append(text)
            labels.append(keep[old])
    return texts, labels


def _from_hub() -> datasets.DatasetDict:
    raw = datasets.load_dataset("google-research-datasets/go_emotions", "simplified")
    names = raw["train"].features["labels"].feature.names
    keep = {i: j for j, i in enumerate(i for i, n in enumerate(names) if n != DROPPED)}
    out = {}
    for split in ("train", "validation", "test"):
        rows = [
            (r["text"], keep[r["labels"][0]])
            for r in raw[split]
            if len(r["labels"]) == 1 and r["labels"][0] in keep
        ]
        out[split] = ([t for t, _ in rows], [l for _, l in rows])
    return build(out, [n for n in names if n != DROPPED])


def _read_multilabel(path: Path, num_classes: int) -> tuple[list[str], list[list[int]]]:
    df = _read_tsv(path)
    texts, labels = [], []
    for line, (text, raw) in enumerate(zip(df["text"], df["labels"]), start=1):
        try:
            ids = sorted({int(v) for v in raw.split(",")})
        except ValueError:
            raise DataError(f"{path}:{line}: labels must be class indices, got {raw!r}") from None
        if not ids or not all(0 <= i < num_classes for i in ids):
            raise DataError(
                f"{path}:{line}: label index out of range 0..{num_classes - 1}: {raw!r}"
            )
        texts.append(text)
        labels.append(ids)
    return texts, labels


def _from_hub_multilabel() -> datasets.DatasetDict:
    raw = datasets.load_dataset("google-research-datasets/go_emotions", "simplified")
    names = raw["train"].features["labels"].feature.names
    return build(
        {
            split: (list(raw[split]["text"]), [sorted(ls) for ls in raw[split]["labels"]])
            for split in ("train", "validation", "test")
        },
        names,
        multilabel=True,
    )


def _label_file(found: Path) -> list[str]:
    return [
        n.strip()
        for n in (found / "labels.txt").read_text(encoding="utf-8").splitlines()
        if n.strip()
    ]


def load_multilabel(data_dir: Path | None, **_: object) -> datasets.DatasetDict:
    dirs = candidate_dirs(data_dir, "goemotions")
    found = find_files(dirs, FILES)
    if found is None:
        return from_hub("goemotions:multilabel", looked_for(dirs, FILES), _from_hub_multilabel)
    names = _label_file(found)
    out = {
        split: _read_multilabel(found / fname, len(names)) for split, fname in _SPLIT_FILES.items()
    }
    return build(out, names, multilabel=True)


def load(data_dir: Path | None, **_: object) -> datasets.DatasetDict:
    dirs = candidate_dirs(data_dir, "goemotions")
    found = find_files(dirs, FILES)
    if found is None:
        return from_hub("goemotions", looked_for(dirs, FILES), _from_hub)
    all_names = _label_file(found)
    keep = {i: j for j, i in enumerate(i for i, n in enumerate(all_names) if n != DROPPED)}
    out = {split: _read_split(found / fname, keep) for split, fname in _SPLIT_FILES.items()}
    return build(out, [n for n in all_names if n != DROPPED])
