"""Any Hugging Face dataset: ``hf:NAME[:CONFIG]`` (the Hub), ``disk:PATH`` (``save_to_disk``).

``load_dataset("hf:NAME")`` (or ``hf:NAME:CONFIG``) calls :func:`datasets.load_dataset`
(``NAME`` is a Hub id such as ``SetFit/emotion``, or anything that function accepts;
``datasets``' cache and offline mode apply). ``load_dataset("disk:PATH")`` calls
:func:`datasets.load_from_disk` on a folder written by ``save_to_disk``: a ``DatasetDict`` or
a single ``Dataset`` (then it is the training data).

The rest is as for your own files (:mod:`lcl.data.custom`): splits are named ``train``,
``validation`` (or ``valid``/``dev``/``val``) and ``test``, others are ignored; a missing
test, then validation, split is carved from train, stratified by label and seeded; a split
whose labels are all missing (``-1``/None, as in GLUE's test sets) counts as missing. The text
and label columns are ``text_column``/``label_column``. A ``ClassLabel`` column keeps its
names and their order; other labels follow the own-file rules (non-negative integers kept,
strings become classes sorted by name, a validation/test label absent from train is an error).
A ``Sequence(ClassLabel)`` label column (as go_emotions' ``labels``), lists of labels, or
labels split by ``label_separator`` make the dataset multi-label.

Problems raise :class:`~lcl.data.registry.DataError` or
:class:`~lcl.data.registry.DatasetNotFoundError` with one line naming the source, the split
and the 1-based row, e.g. ``disk:/data/ds[train]:17: empty text in column 'text'``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets

from .custom import SPLIT_NAMES, Record, _check, assemble
from .registry import EXTERNAL_KINDS, DataError, DatasetNotFoundError

logger = logging.getLogger("lcl.data")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fetch_hub(spec: str) -> datasets.DatasetDict | datasets.Dataset:
    name, _, config = spec.partition(":")
    name, config = name.strip(), config.strip() or None
    if not name:
        raise DatasetNotFoundError(
            "hf: needs a dataset name, e.g. hf:SetFit/emotion or hf:NAME:CONFIG"
        )
    try:
        return datasets.load_dataset(name, config)
    except Exception as exc:  # offline, unknown name, auth, bad config: one line for all
        raise DatasetNotFoundError(
            f"hf:{spec}: cannot load it with datasets.load_dataset({name!r}"
            f"{', ' + repr(config) if config else ''}): {_first_line(exc)}"
        ) from None


def _fetch_disk(spec: str) -> datasets.DatasetDict | datasets.Dataset:
    path = Path(spec).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"disk:{spec}: no such directory")
    if not path.is_dir():
        raise DatasetNotFoundError(f"disk:{spec}: not a directory written by save_to_disk")
    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # not a saved dataset, corrupt arrow files
        raise DatasetNotFoundError(
            f"disk:{spec}: not a dataset written by save_to_disk ({_first_line(exc)})"
        ) from None


def _pick_splits(source: str, data) -> dict[str, datasets.Dataset]:
    if isinstance(data, datasets.Dataset):
        return {"train": data}
    if not isinstance(data, (datasets.DatasetDict, dict)):
        raise DataError(f"{source}: expected a Dataset or DatasetDict, got {type(data).__name__}")
    picked = {}
    for split, aliases in SPLIT_NAMES.items():
        hit = next((a for a in aliases if a in data), None)
        if hit is not None:
            picked[split] = data[hit]
    if "train" not in picked:
        raise DataError(f"{source}: no train split (found: {', '.join(data) or 'none'})")
    return picked


def _records(
    source: str,
    split: str,
    ds: datasets.Dataset,
    text_column: str,
    label_column: str,
    label_separator: str | None = None,
) -> tuple[list[Record], list[str] | None]:
    where = f"{source}[{split}]"
    for col in (text_column, label_column):
        if col not in ds.column_names:
            found = ", ".join(ds.column_names)
            raise DataError(f"{where}: missing column {col!r} (found: {found})")
    feature = ds.features[label_column]
    inner = getattr(feature, "feature", None)  # Sequence(ClassLabel): multi-label, as go_emotions
    class_label = inner if isinstance(inner, datasets.ClassLabel) else feature
    names = list(class_label.names) if isinstance(class_label, datasets.ClassLabel) else None
    columns = ds.select_columns([text_column, label_column])[:]
    texts, labels = columns[text_column], columns[label_column]

    def name(v):
        return names[v] if isinstance(v, int) and 0 <= v < len(names) else None

    if names is not None:
        labels = [[name(x) for x in v] if isinstance(v, list) else name(v) for v in labels]
    if labels and all(v is None for v in labels) and split != "train":
        logger.warning("%s: no labels (all missing); carving this split from train instead", where)
        return [], names
    return [
        _check(where, row, t, v, text_column, label_column, label_separator)
        for row, (t, v) in enumerate(zip(texts, labels), start=1)
    ], names


def load_external(
    spec: str,
    kind: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    seed: int = 0,
    validation_fraction: float = 0.1,
    label_separator: str | None = None,
) -> datasets.DatasetDict:
    """``kind`` ``hf`` or ``disk``; ``spec`` what follows the prefix (see the module docstring)."""
    if kind not in EXTERNAL_KINDS:
        raise DataError(f"unknown dataset kind {kind!r}; use one of {', '.join(EXTERNAL_KINDS)}")
    source = f"{kind}:{spec}"
    data = _fetch_hub(spec) if kind == "hf" else _fetch_disk(spec)
    records, names = {}, None
    for split, ds in _pick_splits(source, data).items():
        recs, split_names = _records(source, split, ds, text_column, label_column, label_separator)
        if split == "train":
            names = split_names
        elif (split_names is None) != (names is None) or (names and split_names != names):
            raise DataError(f"{source}[{split}]: label classes differ from the train split's")
        if recs or split == "train":
            records[split] = recs
    if not records["train"]:
        raise DataError(f"{source}[train]: no examples")
    return assemble(
        records,
        lambda split, r: f"{source}[{split}]:{r.line}",
        f"the train split of {source}",
        seed,
        validation_fraction,
        names=names,
        multilabel=bool(label_separator),
    )
