"""Datasets for LCL: the paper's six benchmarks, a bundled demo, your own files, any HF dataset.

>>> from lcl.data import load_dataset
>>> ds = load_dataset("empathetic_dialogues:4hard-a", data_dir="../shared/data")

Every loader returns a :class:`datasets.DatasetDict` with splits ``train``, ``validation``
and ``test`` and columns ``text`` (string) and ``label``: a ClassLabel with names, or for
multi-label data (``goemotions:multilabel``, your files with label lists) a
``Sequence(ClassLabel)``, a list of class indices per text (:func:`is_multilabel`).
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from lcl.errors import LCLError

from .augment import add_views
from .registry import (
    CUSTOM_KINDS,
    DATASETS,
    EXTERNAL_KINDS,
    DataError,
    DatasetInfo,
    DatasetNotFoundError,
    is_multilabel,
    label_names,
    multi_hot,
    resolve_data_dir,
    select_classes,
    unknown_name_message,
)

__all__ = [
    "load_dataset",
    "DATASETS",
    "DatasetInfo",
    "add_views",
    "DataError",
    "DatasetNotFoundError",
    "UnknownDatasetError",
    "is_multilabel",
    "label_names",
    "multi_hot",
]


class UnknownDatasetError(LCLError, ValueError):
    """The name is neither a built-in dataset nor ``csv:``/``tsv:``/``jsonl:``/``disk:`` PATH
    nor ``hf:NAME``."""


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    seed: int = 0,
    validation_fraction: float = 0.1,
    label_separator: str | None = None,
) -> datasets.DatasetDict:
    """Load a dataset by name.

    ``name`` is one of :data:`DATASETS` (optionally ``NAME:CLASSES`` to keep some classes,
    e.g. ``empathetic_dialogues:4hard-a`` or ``empathetic_dialogues:angry,sad,afraid``;
    labels are re-indexed 0..k-1 in the given order), or ``csv:PATH`` / ``tsv:PATH`` /
    ``jsonl:PATH`` for your own files (see :mod:`lcl.data.custom`), or ``hf:NAME[:CONFIG]``
    (``datasets.load_dataset``) / ``disk:PATH`` (``datasets.load_from_disk``) for any
    Hugging Face dataset (see :mod:`lcl.data.external`).

    Built-in datasets are read from ``data_dir``, else ``$LCL_DATA_DIR``; when their files
    are not there, the Hugging Face Hub copy is used where one exists (not in offline mode).
    ``text_column``/``label_column`` name the input columns of your own files and of
    ``hf:``/``disk:`` datasets;
    ``seed`` drives ISEAR's split and any carved split; ``validation_fraction`` is the size
    of carved splits (your own files and ``hf:``/``disk:`` datasets). ``label_separator``
    (e.g. ``";"``) splits the label texts of your own files and ``hf:``/``disk:`` datasets
    into several classes: the dataset is then multi-label (so it is without it when a JSON
    label is a list, or the label column is a ``Sequence(ClassLabel)``).

    Raises ``UnknownDatasetError`` for an unknown name or class subset,
    ``DatasetNotFoundError`` when the data cannot be found, ``DataError`` for bad files.
    """
    name = str(name).strip()
    prefix, sep, rest = name.partition(":")
    kind = prefix.lower()
    if sep and (kind in EXTERNAL_KINDS or kind in CUSTOM_KINDS):
        if kind in EXTERNAL_KINDS:
            from .external import load_external as load_files
        else:
            from .custom import load_custom as load_files
        return load_files(
            rest,
            kind,
            text_column=text_column,
            label_column=label_column,
            seed=seed,
            validation_fraction=validation_fraction,
            label_separator=label_separator,
        )
    base, _, subset = name.partition(":")
    if name in DATASETS:  # a registered variant such as goemotions:multilabel
        base, subset = name, ""
    info = DATASETS.get(base)
    if info is None:
        if Path(name).expanduser().exists():
            from .custom import load_custom

            return load_custom(
                name,
                None,
                text_column=text_column,
                label_column=label_column,
                seed=seed,
                validation_fraction=validation_fraction,
                label_separator=label_separator,
            )
        raise UnknownDatasetError(unknown_name_message(name))

    keep = None
    if subset:
        try:
            if base == "empathetic_dialogues":
                from .empathetic_dialogues import subset_classes

                keep = subset_classes(subset)
            else:
                keep = tuple(dict.fromkeys(s.strip() for s in subset.split(",") if s.strip()))
        except ValueError as exc:
            raise UnknownDatasetError(str(exc)) from None

    dsd = info.load_function()(
        resolve_data_dir(data_dir), seed=seed, validation_fraction=validation_fraction
    )
    if keep:
        try:
            dsd = select_classes(dsd, keep)
        except ValueError as exc:
            raise UnknownDatasetError(f"{base}: {exc}") from None
    return dsd
