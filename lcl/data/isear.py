"""ISEAR (Scherer & Wallbott, 1994) from the pipe-separated extract ``isear/isear.csv``.

Quirks handled (see the data README): the text column ``SIT`` is unquoted and may hold
``|``, so it is rebuilt from everything between the first 40 fields and the last two;
``á`` marks the original database's line breaks and is removed, with the ``|`` that
follows it in 267 places (the export's rendering of the break); the one other ``|`` stays. The 78 placeholder
texts (``[ No response.]``) and the stray ``\\"`` escapes are kept, as the paper kept
every row. ISEAR has no official split: like the paper we use
``train_test_split(test_size=0.4, random_state=seed)`` then ``test_size=0.5`` on the rest
(validation first), which with ``seed=0`` gives 4,599 / 1,533 / 1,534.
Label names follow ISEAR's EMOT code order 1..7.
"""

from __future__ import annotations

import re
from pathlib import Path

import datasets

from .registry import DataError, build, candidate_dirs, find_files, looked_for, not_found

FILES = ("isear.csv",)
EMOTIONS = ("joy", "fear", "anger", "sadness", "disgust", "shame", "guilt")
_N_BEFORE_SIT = 40  # ID .. MYKEY
# "á" marks a line break of the original database; 267 of the 268 "|" inside SIT follow it,
# so the export wrote those breaks as "á|": both go.
_LINE_BREAK = re.compile(r"\s*á\|?\s*")


def read_isear(path: Path) -> tuple[list[str], list[str]]:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc})") from exc
    header = lines[0].rstrip("\r").split("|")
    if len(header) < _N_BEFORE_SIT + 2 or header[_N_BEFORE_SIT] != "SIT" or "Field1" not in header:
        raise DataError(
            f"{path}:1: not the pipe-separated ISEAR extract (no SIT column at field 41)"
        )
    i_label = header.index("Field1")
    texts, emotions = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        parts = line.split("|")
        if len(parts) < len(header):
            raise DataError(
                f"{path}:{lineno}: expected {len(header)} '|'-separated fields, found {len(parts)}"
            )
        sit = "|".join(parts[_N_BEFORE_SIT:-2])
        texts.append(_LINE_BREAK.sub(" ", sit).strip())
        emotions.append(parts[i_label])
    return texts, emotions


def load(data_dir: Path | None, *, seed: int = 0, **_: object) -> datasets.DatasetDict:
    from sklearn.model_selection import train_test_split

    dirs = candidate_dirs(data_dir, "isear")
    found = find_files(dirs, FILES)
    if found is None:
        raise not_found("isear", looked_for(dirs, FILES))
    path = found / FILES[0]
    texts, emotions = read_isear(path)
    bad = sorted(set(emotions) - set(EMOTIONS))
    if bad:
        raise DataError(f"{path}: unknown Field1 emotion(s) {bad}")
    labels = [EMOTIONS.index(e) for e in emotions]
    rows = list(zip(texts, labels))
    train, rest = train_test_split(rows, test_size=0.4, random_state=seed)
    valid, test = train_test_split(rest, test_size=0.5, random_state=seed)
    unzip = lambda rs: ([t for t, _ in rs], [l for _, l in rs])  # noqa: E731
    return build({"train": unzip(train), "validation": unzip(valid), "test": unzip(test)}, EMOTIONS)
