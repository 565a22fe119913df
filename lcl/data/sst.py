"""Stanford Sentiment Treebank (Socher et al., 2013), sentence level, from the PTB trees.

Reads ``trees/{train,dev,test}.txt`` from ``data_dir/sst`` (or ``data_dir/sst/trees``,
``data_dir``). Each line is one tree; the text is its leaves joined by spaces with PTB
escapes undone (``-LRB-`` -> ``(``, ``\\/`` -> ``/``, `````` and ``''`` -> ``"`` ...); the
label is the root's. SST-2 drops neutral roots and maps 0-1 to negative, 3-4 to positive.
"""

from __future__ import annotations

import re
from pathlib import Path

import datasets

from .registry import DataError, build, candidate_dirs, find_files, from_hub, looked_for

SST5_NAMES = ("very negative", "negative", "neutral", "positive", "very positive")
SST2_NAMES = ("negative", "positive")
FILES = ("train.txt", "dev.txt", "test.txt")
_SPLIT_FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}

# A leaf is a "(label text)" group with no nested parentheses; text may hold a space ("2 1\/2").
_LEAF = re.compile(r"\(\d+ ([^()]+)\)")
_ROOT = re.compile(r"^\((\d+) ")
_PTB = {
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
    "``": '"',
    "''": '"',
    "`": "'",
}


def _unescape(token: str) -> str:
    token = _PTB.get(token, token)
    return token.replace("\\/", "/").replace("\\*", "*")


def read_trees(path: Path) -> tuple[list[str], list[int]]:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc})") from exc
    texts, labels = [], []
    for lineno, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        root = _ROOT.match(line)
        leaves = _LEAF.findall(line)
        if root is None or not leaves:
            raise DataError(f"{path}:{lineno}: not a PTB sentiment tree")
        texts.append(" ".join(_unescape(t) for t in leaves))
        labels.append(int(root.group(1)))
    return texts, labels


def _local(data_dir: Path | None) -> tuple[dict | None, str]:
    dirs = candidate_dirs(data_dir, "sst/trees", "sst", "trees")
    found = find_files(dirs, FILES)
    what = looked_for(dirs, FILES)
    if found is None:
        return None, what
    return {split: read_trees(found / f) for split, f in _SPLIT_FILES.items()}, what


def _hub(repo: str, names: tuple[str, ...]) -> datasets.DatasetDict:
    raw = datasets.load_dataset(repo)
    return build(
        {s: (raw[s]["text"], raw[s]["label"]) for s in ("train", "validation", "test")}, names
    )


def load_sst5(data_dir: Path | None, **_: object) -> datasets.DatasetDict:
    splits, what = _local(data_dir)
    if splits is None:
        return from_hub("sst5", what, lambda: _hub("SetFit/sst5", SST5_NAMES))
    return build(splits, SST5_NAMES)


def load_sst2(data_dir: Path | None, **_: object) -> datasets.DatasetDict:
    # SetFit/sst2 is the sentence-level binary split of the paper; GLUE's stanfordnlp/sst2
    # is phrase-level with an unlabeled test set, so it would not match.
    splits, what = _local(data_dir)
    if splits is None:
        return from_hub("sst2", what, lambda: _hub("SetFit/sst2", SST2_NAMES))
    out = {}
    for split, (texts, labels) in splits.items():
        rows = [(t, int(l > 2)) for t, l in zip(texts, labels) if l != 2]
        out[split] = ([t for t, _ in rows], [l for _, l in rows])
    return build(out, SST2_NAMES)
