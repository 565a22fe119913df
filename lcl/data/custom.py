"""Your own data: CSV, TSV or JSON Lines files.

``load_dataset("csv:PATH")`` (or ``tsv:`` / ``jsonl:``; a bare existing path is accepted
too, its kind taken from the extension) where PATH is

* one file: it is the training data, and the test and validation splits are carved from it;
* a directory with ``train.<ext>`` and optionally ``validation``/``valid``/``dev``/``val``
  and ``test`` files of the same kind.

A missing **test** split is carved from train first, then a missing **validation** split
from what is left, each ``validation_fraction`` of the training file, stratified by label
and seeded with ``seed`` (multi-label data: by iterative stratification, every class kept in
train). CSV/TSV files need a header row. The text and label columns are
``text_column`` / ``label_column`` (default ``text`` / ``label``).

Labels: if every label is a non-negative integer (JSON number or digits) and the training
labels are exactly ``0 .. C-1``, they are class indices (names ``"0" .. "C-1"``); other integers
(e.g. ``1, 3, 5, 7, 1000``) are class *names*, ordered by value; otherwise labels are strings
and the ClassLabel names are the training labels sorted by name. The log says which reading
was taken. A validation/test label that does not occur in train is an error, and so are fewer
than two classes, a missing label (empty, ``null``, ``NaN``, ``N/A``) and a header (or a JSON
object) naming a column twice.

Problems raise :class:`~lcl.data.registry.DataError` with ``file:line: what is wrong``
(lines are 1-based, as an editor shows them).

Multi-label files: a JSON list as the label (``{"text": "...", "label": ["joy", "love"]}``),
or, with ``label_separator`` (``--label-separator``), a label text holding several classes
(``joy;love`` with ``;``) in any kind of file. The dataset's ``label`` is then a
``Sequence(ClassLabel)``; a JSON scalar counts as a list of one; an empty list, or a label
text with nothing but separators, is an error with file and line; a class named twice on one
line counts once. The naming rules above apply to all classes of all lines.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets

from .registry import CUSTOM_KINDS, DataError, DatasetNotFoundError, build, carve

EXTENSIONS = {
    "csv": (".csv",),
    "tsv": (".tsv", ".tab", ".txt"),
    "jsonl": (".jsonl", ".ndjson", ".json"),
}
SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test",),
}
_INT = re.compile(r"\d+")
# label texts that mean "no value" (as pandas, R and spreadsheets write it), never a class
MISSING_LABELS = frozenset({"nan", "-nan", "+nan", "null", "n/a", "#n/a", "<na>"})
logger = logging.getLogger("lcl.data")


@dataclass
class Record:
    text: str
    label: object
    line: int


def _kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return next((k for k, exts in EXTENSIONS.items() if suffix in exts), None)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _check_label(path: Path, line: int, label: object, label_column: str) -> object:
    """One class value, checked: a non-empty string (stripped) or a number."""
    if (
        label is None
        or (isinstance(label, str) and not label.strip())
        or isinstance(label, (bool, list, dict))
    ):
        raise DataError(
            f"{path}:{line}: empty or invalid label in column {label_column!r}: {label!r}"
        )
    if (isinstance(label, float) and not math.isfinite(label)) or (
        isinstance(label, str)
        and (label.strip().lower() in MISSING_LABELS or label.strip() == "None")
    ):
        raise DataError(
            f"{path}:{line}: missing label in column {label_column!r} ({label!r}); "
            "give every example its class (rename the class if it is really called so)"
        )
    return label.strip() if isinstance(label, str) else label


def _check(
    path: Path,
    line: int,
    text: object,
    label: object,
    text_column: str,
    label_column: str,
    label_separator: str | None = None,
) -> Record:
    """A checked record. A label that is a list (JSON), or a text split by
    ``label_separator``, is a tuple of classes (multi-label); otherwise one class."""
    if not isinstance(text, str):
        raise DataError(
            f"{path}:{line}: text in {text_column!r} must be a string, got {type(text).__name__}"
        )
    if not text.strip():
        raise DataError(f"{path}:{line}: empty text in column {text_column!r}")
    if label_separator and isinstance(label, str) and label.strip():
        label = [part for part in label.split(label_separator) if part.strip()]
    if isinstance(label, (list, tuple)):
        if not label:
            raise DataError(
                f"{path}:{line}: no label in column {label_column!r}; "
                "every text needs at least one class"
            )
        values = (_check_label(path, line, v, label_column) for v in label)
        return Record(text, tuple(dict.fromkeys(values)), line)
    return Record(text, _check_label(path, line, label, label_column), line)


def _read_delimited(
    path: Path,
    delimiter: str,
    text_column: str,
    label_column: str,
    label_separator: str | None = None,
) -> list[Record]:
    reader = csv.reader(io.StringIO(_decode(path), newline=""), delimiter=delimiter, strict=True)
    records: list[Record] = []
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1  # a quoted field may span lines; report where the row starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"{path}:{start}: cannot parse line: {exc}") from None
        if not row or (len(row) == 1 and not row[0].strip() and header is not None):
            continue
        if header is None:
            header = [h.strip() for h in row]
            twice = sorted({h for h in header if h and header.count(h) > 1})
            if twice:
                raise DataError(
                    f"{path}:{start}: column name(s) {', '.join(map(repr, twice))} "
                    "appear more than once in the header; rename or remove the "
                    "extra column"
                )
            for col in (text_column, label_column):
                if col not in header:
                    raise DataError(
                        f"{path}:{start}: missing column {col!r} in header (found: {', '.join(header)})"
                    )
            i_text, i_label = header.index(text_column), header.index(label_column)
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path}:{start}: cannot parse line: expected {len(header)} fields, found {len(row)}"
                " (unquoted delimiter or quote?)"
            )
        records.append(
            _check(
                path, start, row[i_text], row[i_label], text_column, label_column, label_separator
            )
        )
    if header is None:
        raise DataError(
            f"{path}:1: empty file (expected a header with {text_column!r} and {label_column!r})"
        )
    return records


class _DuplicateKeys(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise _DuplicateKeys(", ".join(map(repr, twice)))
    return dict(pairs)


def _read_jsonl(
    path: Path, text_column: str, label_column: str, label_separator: str | None = None
) -> list[Record]:
    records = []
    for line_no, line in enumerate(_decode(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKeys as exc:
            raise DataError(
                f"{path}:{line_no}: key(s) {exc} appear more than once in the object"
            ) from None
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{line_no}: cannot parse line: invalid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path}:{line_no}: cannot parse line: expected a JSON object, got {type(obj).__name__}"
            )
        for col in (text_column, label_column):
            if col not in obj:
                raise DataError(
                    f"{path}:{line_no}: missing column {col!r} (found: {', '.join(obj)})"
                )
        records.append(
            _check(
                path,
                line_no,
                obj[text_column],
                obj[label_column],
                text_column,
                label_column,
                label_separator,
            )
        )
    return records


def read_file(
    path: Path,
    kind: str,
    text_column: str = "text",
    label_column: str = "label",
    label_separator: str | None = None,
) -> list[Record]:
    """Records of one file; raises DataError on the first problem."""
    if kind == "jsonl":
        return _read_jsonl(path, text_column, label_column, label_separator)
    delimiter = "," if kind == "csv" else "\t"
    return _read_delimited(path, delimiter, text_column, label_column, label_separator)


def _split_files(path: Path, kind: str | None) -> tuple[str, dict[str, Path]]:
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        kind = kind or _kind_of(path)
        if kind is None:
            raise DatasetNotFoundError(
                f"{path}: cannot tell the file kind from its extension; prefix it with one of "
                + ", ".join(f"{k}:" for k in CUSTOM_KINDS)
            )
        return kind, {"train": path}
    kinds = [kind] if kind else list(CUSTOM_KINDS)
    for k in kinds:
        files = {}
        for split, stems in SPLIT_NAMES.items():
            for stem in stems:
                hit = next(
                    (
                        path / f"{stem}{ext}"
                        for ext in EXTENSIONS[k]
                        if (path / f"{stem}{ext}").is_file()
                    ),
                    None,
                )
                if hit is not None:
                    files[split] = hit
                    break
        if "train" in files:
            return k, files
    wanted = ", ".join(f"train{ext}" for k in kinds for ext in EXTENSIONS[k])
    raise DatasetNotFoundError(f"{path}: no training file found; looked for {wanted}")


def load_custom(
    path: str | Path,
    kind: str | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    seed: int = 0,
    validation_fraction: float = 0.1,
    label_separator: str | None = None,
) -> datasets.DatasetDict:
    """Load a file or a split directory as a DatasetDict (see the module docstring)."""
    if kind is not None and kind not in CUSTOM_KINDS:
        raise DataError(f"unknown file kind {kind!r}; use one of {', '.join(CUSTOM_KINDS)}")
    kind, files = _split_files(Path(path).expanduser(), kind)
    records = {
        split: read_file(f, kind, text_column, label_column, label_separator)
        for split, f in files.items()
    }
    if not records["train"]:
        raise DataError(f"{files['train']}: no examples")

    return assemble(
        records,
        lambda split, r: f"{files[split]}:{r.line}",
        f"the training file {files['train']}",
        seed,
        validation_fraction,
        multilabel=bool(label_separator),
    )


def assemble(
    records: dict[str, list[Record]],
    locate: Callable[[str, Record], str],
    train_desc: str,
    seed: int = 0,
    validation_fraction: float = 0.1,
    names: Sequence[str] | None = None,
    multilabel: bool = False,
) -> datasets.DatasetDict:
    """Checked records per split -> DatasetDict: labels to class indices, missing splits carved.

    ``locate(split, record)`` says where a record came from (``file:line``) for errors;
    ``train_desc`` names the training data. With ``names`` (a ClassLabel's names, labels given
    as those names) the classes are kept as they are; otherwise they follow the module rules.
    The data is multi-label (a list of class indices per text) when ``multilabel`` is set or
    any record's label is a tuple of classes; a single class then counts as a list of one.
    """
    multilabel = multilabel or any(
        isinstance(r.label, tuple) for recs in records.values() for r in recs
    )

    def values(r: Record) -> tuple:
        return r.label if isinstance(r.label, tuple) else (r.label,)

    def is_int(v: object) -> bool:
        return (isinstance(v, int) and v >= 0) or (
            isinstance(v, str) and _INT.fullmatch(v) is not None
        )

    if names is not None:
        names = list(names)
        integer, norm = False, str
        train_labels = set(names)
    else:
        integer = all(is_int(v) for recs in records.values() for r in recs for v in values(r))
        norm = (lambda v: int(v)) if integer else (lambda v: str(v))
        train_labels = {norm(v) for r in records["train"] for v in values(r)}
        if integer and train_labels == set(range(len(train_labels))):
            names = [str(i) for i in range(len(train_labels))]
            logger.info(
                "%s: integer labels 0..%d are taken as class indices", train_desc, len(names) - 1
            )
        elif integer:
            names = [str(v) for v in sorted(train_labels)]
            logger.warning(
                "%s: integer labels that are not 0..C-1 are taken as class names: %s",
                train_desc,
                ", ".join(names),
            )
        else:
            names = sorted(train_labels)
    if len(train_labels) < 2:
        only = next(iter(train_labels), None)
        raise DataError(
            f"{train_desc}: only one class ({str(only)!r}); a classifier needs at least two"
        )
    index = {int(n) if integer else n: i for i, n in enumerate(names)}

    splits = {}
    for split, recs in records.items():
        texts, labels = [], []
        for r in recs:
            ids = []
            for v in values(r):
                value = norm(v)
                if value not in train_labels:
                    raise DataError(
                        f"{locate(split, r)}: label {value!r} does not occur in {train_desc}"
                    )
                ids.append(index[value])
            texts.append(r.text)
            labels.append(sorted(set(ids)) if multilabel else ids[0])
        splits[split] = (texts, labels)

    fraction = validation_fraction
    if "test" not in splits:
        splits["train"], splits["test"] = carve(*splits["train"], fraction, seed, "test")
        fraction = fraction / (1 - fraction)  # still a fraction of the original training file
    if "validation" not in splits:
        splits["train"], splits["validation"] = carve(
            *splits["train"], fraction, seed, "validation"
        )
    return build({s: splits[s] for s in ("train", "validation", "test")}, names, multilabel)
