"""EmoInt, the WASSA-2017 Emotion Intensity shared task, as 4-way classification.

Reads the twelve original files ``<emotion>-ratings-0to1.{train,dev.gold,test.gold}.txt``
from ``data_dir/emoint`` (or ``data_dir``): tab-separated ``id, tweet, emotion, intensity``
with no header row. The class comes from the file; tweets are kept verbatim (mentions,
hashtags, emoji, ``&amp;`` and literal ``\\n`` included). Tweets that occur in several
emotion files are kept once per file, as in the release (hence a few conflicting duplicates).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from .registry import DataError, build, candidate_dirs, find_files, looked_for, not_found

EMOTIONS = ("anger", "fear", "joy", "sadness")
_SPLIT_SUFFIX = {"train": "train", "validation": "dev.gold", "test": "test.gold"}
FILES = tuple(f"{e}-ratings-0to1.{s}.txt" for s in _SPLIT_SUFFIX.values() for e in EMOTIONS)


def read_emoint_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc})") from exc
    texts = []
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            raise DataError(f"{path}:{lineno}: expected 4 tab-separated fields, found {len(parts)}")
        texts.append(parts[1])
    return texts


def load(data_dir: Path | None, **_: object) -> datasets.DatasetDict:
    dirs = candidate_dirs(data_dir, "emoint")
    found = find_files(dirs, FILES)
    if found is None:
        raise not_found("emoint", looked_for(dirs, FILES))
    out = {}
    for split, suffix in _SPLIT_SUFFIX.items():
        texts, labels = [], []
        for label, emotion in enumerate(EMOTIONS):
            tweets = read_emoint_file(found / f"{emotion}-ratings-0to1.{suffix}.txt")
            texts += tweets
            labels += [label] * len(tweets)
        out[split] = (texts, labels)
    return build(out, EMOTIONS)
