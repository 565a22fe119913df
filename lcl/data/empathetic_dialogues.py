"""Empathetic Dialogues (Rashkin et al., 2019): one situation ``prompt`` per conversation.

Two local layouts are read, searched in ``data_dir/empathetic_dialogues/splits``,
``data_dir/empathetic_dialogues/empatheticdialogues``, ``data_dir/empatheticdialogues``,
``data_dir/empathetic_dialogues`` and ``data_dir``:

* per-conversation files ``{train,valid,test}.csv`` with columns ``conv_id,emotion,prompt``
  (the shared evaluation data);
* the official utterance-level release ``empatheticdialogues/{train,valid,test}.csv``
  (``conv_id,utterance_idx,context,prompt,...`` with ``_comma_`` for commas), reduced to
  the first row of each ``conv_id``.

Label names are the 32 emotions sorted alphabetically (not the LCL authors' id order).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import datasets

from .registry import (
    DataError,
    build,
    candidate_dirs,
    find_files,
    from_hub,
    looked_for,
)

EMOTIONS = (
    "afraid",
    "angry",
    "annoyed",
    "anticipating",
    "anxious",
    "apprehensive",
    "ashamed",
    "caring",
    "confident",
    "content",
    "devastated",
    "disappointed",
    "disgusted",
    "embarrassed",
    "excited",
    "faithful",
    "furious",
    "grateful",
    "guilty",
    "hopeful",
    "impressed",
    "jealous",
    "joyful",
    "lonely",
    "nostalgic",
    "prepared",
    "proud",
    "sad",
    "sentimental",
    "surprised",
    "terrified",
    "trusting",
)

# Paper, Table 3.
SUBSETS: dict[str, tuple[str, ...]] = {
    "16": (
        "afraid",
        "angry",
        "annoyed",
        "anxious",
        "confident",
        "disappointed",
        "disgusted",
        "excited",
        "grateful",
        "hopeful",
        "impressed",
        "lonely",
        "proud",
        "sad",
        "surprised",
        "terrified",
    ),
    "8": ("angry", "afraid", "ashamed", "disgusted", "guilty", "proud", "sad", "surprised"),
    "4easy": ("angry", "afraid", "joyful", "sad"),
    "4hard-a": ("anxious", "apprehensive", "afraid", "terrified"),
    "4hard-b": ("devastated", "nostalgic", "sad", "sentimental"),
    "4hard-c": ("angry", "ashamed", "furious", "guilty"),
    "4hard-d": ("anticipating", "excited", "hopeful", "guilty"),
}

FILES = ("train.csv", "valid.csv", "test.csv")
_SPLIT_FILES = {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"}


def subset_classes(spec: str) -> tuple[str, ...]:
    """Class names for a Table 3 subset name or a comma-separated list of emotions."""
    if spec in SUBSETS:
        return SUBSETS[spec]
    names = tuple(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    bad = [n for n in names if n not in EMOTIONS]
    if not names or bad:
        raise ValueError(
            f"empathetic_dialogues: bad class subset {spec!r} (unknown: {bad}); use one of "
            f"{', '.join(SUBSETS)} or a comma-separated list of: {', '.join(EMOTIONS)}"
        )
    return names


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc})") from exc


def _read_conversations(path: Path) -> tuple[list[str], list[str]]:
    text = _read_text(path)
    header = text.split("\n", 1)[0].strip().split(",")
    if "utterance_idx" in header:
        return _read_release(path, text, header)
    rows = csv.DictReader(io.StringIO(text, newline=""))
    if not {"emotion", "prompt"} <= set(rows.fieldnames or ()):
        raise DataError(
            f"{path}:1: expected columns 'emotion' and 'prompt', found {rows.fieldnames}"
        )
    prompts, emotions = [], []
    for row in rows:
        prompts.append(row["prompt"].strip())
        emotions.append(row["emotion"].strip())
    return prompts, emotions


def _read_release(path: Path, text: str, header: list[str]) -> tuple[list[str], list[str]]:
    # The release is not valid CSV (utterances hold bare quotes); commas inside text are
    # written as _comma_, so a plain split on "," is how the format is meant to be read.
    try:
        i_conv, i_emo, i_prompt = (header.index(c) for c in ("conv_id", "context", "prompt"))
    except ValueError:
        raise DataError(
            f"{path}:1: expected columns conv_id, context, prompt; found {header}"
        ) from None
    seen: set[str] = set()
    prompts, emotions = [], []
    for lineno, line in enumerate(text.split("\n")[1:], start=2):
        if not line.strip():
            continue
        parts = line.rstrip("\r").split(",")
        if len(parts) <= max(i_conv, i_emo, i_prompt):
            raise DataError(
                f"{path}:{lineno}: expected at least {len(header)} comma-separated fields, found {len(parts)}"
            )
        conv = parts[i_conv]
        if conv in seen:
            continue
        seen.add(conv)
        prompts.append(parts[i_prompt].replace("_comma_", ",").strip())
        emotions.append(parts[i_emo].strip())
    return prompts, emotions


def _to_ids(path: Path, emotions: list[str]) -> list[int]:
    index = {e: i for i, e in enumerate(EMOTIONS)}
    bad = sorted(set(emotions) - index.keys())
    if bad:
        raise DataError(f"{path}: unknown emotion label(s) {bad[:5]}")
    return [index[e] for e in emotions]


def _from_hub() -> datasets.DatasetDict:
    raw = datasets.load_dataset("facebook/empathetic_dialogues")
    out = {}
    for split in ("train", "validation", "test"):
        seen: set[str] = set()
        texts, labels = [], []
        for row in raw[split]:
            if row["conv_id"] in seen:
                continue
            seen.add(row["conv_id"])
            texts.append(row["prompt"].replace("_comma_", ",").strip())
            labels.append(EMOTIONS.index(row["context"]))
        out[split] = (texts, labels)
    return build(out, EMOTIONS)


def load(data_dir: Path | None, **_: object) -> datasets.DatasetDict:
    dirs = candidate_dirs(
        data_dir,
        "empathetic_dialogues/splits",
        "empathetic_dialogues/empatheticdialogues",
        "empatheticdialogues",
        "empathetic_dialogues",
    )
    found = find_files(dirs, FILES)
    if found is None:
        return from_hub("empathetic_dialogues", looked_for(dirs, FILES), _from_hub)
    out = {}
    for split, fname in _SPLIT_FILES.items():
        prompts, emotions = _read_conversations(found / fname)
        out[split] = (prompts, _to_ids(found / fname, emotions))
    return build(out, EMOTIONS)
