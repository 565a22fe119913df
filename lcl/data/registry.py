"""Dataset names, errors and the small helpers every loader shares.

Each built-in loader is a function ``load(data_dir, *, seed, validation_fraction)``
returning a :class:`datasets.DatasetDict` with ``text`` and ``label`` columns. ``label`` is a
``ClassLabel`` (one class per text) or, for multi-label data, a ``Sequence(ClassLabel)`` (a
list of class indices per text, as Hugging Face's go_emotions); :func:`is_multilabel` tells
them apart, and :func:`label_names` reads the class names of either.
They are referenced by module name and imported on first use, so asking for
``DATASETS`` (e.g. for CLI help) does not parse anything.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from lcl.errors import LCLError

logger = logging.getLogger("lcl.data")

SPLITS = ("train", "validation", "test")


class DataError(LCLError, ValueError):
    """A data file exists but cannot be used (bad encoding, column, label, line)."""


class DatasetNotFoundError(LCLError, ValueError):
    """Neither the local files nor a Hugging Face Hub copy of a dataset could be loaded."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    description: str
    loader: str  # "module:function" inside lcl.data
    hub_id: str | None = None
    # the test texts depend on the run's seed (no official split: the loader draws one)
    seeded_test_split: bool = False

    def load_function(self) -> Callable[..., datasets.DatasetDict]:
        module, func = self.loader.split(":")
        return getattr(importlib.import_module(f"lcl.data.{module}"), func)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "empathetic_dialogues",
            32,
            "Empathetic Dialogues situations, one per conversation (19,533/2,770/2,547). "
            "Class subsets: empathetic_dialogues:16|8|4easy|4hard-a|4hard-b|4hard-c|4hard-d "
            "or empathetic_dialogues:angry,sad,...",
            "empathetic_dialogues:load",
            "facebook/empathetic_dialogues",
        ),
        DatasetInfo(
            "goemotions",
            27,
            "GoEmotions Reddit comments, single-label only, neutral dropped (23,485/2,956/2,984)",
            "goemotions:load",
            "google-research-datasets/go_emotions",
        ),
        DatasetInfo(
            "goemotions:multilabel",
            28,
            "GoEmotions Reddit comments as released: every comment, one or more of 27 emotions "
            "+ neutral (43,410/5,426/5,427); multi-label",
            "goemotions:load_multilabel",
            "google-research-datasets/go_emotions",
        ),
        DatasetInfo(
            "isear",
            7,
            "ISEAR self-reported situations, seeded 60/20/20 split as in the paper (4,599/1,533/1,534)",
            "isear:load",
            seeded_test_split=True,
        ),
        DatasetInfo(
            "emoint",
            4,
            "WASSA-2017 EmoInt tweets: anger, fear, joy, sadness (3,613/347/3,142)",
            "emoint:load",
        ),
        DatasetInfo(
            "sst5",
            5,
            "Stanford Sentiment Treebank, sentence level, 5 classes (8,544/1,101/2,210)",
            "sst:load_sst5",
            "SetFit/sst5",
        ),
        DatasetInfo(
            "sst2",
            2,
            "Stanford Sentiment Treebank, sentence level, neutral dropped (6,920/872/1,821)",
            "sst:load_sst2",
            "SetFit/sst2",
        ),
        DatasetInfo(
            "demo",
            5,
            "Small bundled demo: short situations for 5 confusable emotions (300/60/60); needs no data dir",
            "demo:load",
        ),
    )
}

CUSTOM_KINDS = ("csv", "tsv", "jsonl")
EXTERNAL_KINDS = ("hf", "disk")  # any Hugging Face dataset: lcl.data.external


def test_split_is_seeded(name: str) -> bool:
    """Whether dataset ``name`` (a subset spec such as ``isear`` or ``empathetic_dialogues:4hard-a``)
    may draw its test texts with the run's seed, so that runs of different seeds test on different
    texts: a built-in dataset that says so, and any custom or external one (``csv:PATH``, ...),
    which carves a test split with the seed where it has none."""
    info = DATASETS.get(name.split(":", 1)[0])
    return info is None or info.seeded_test_split


def unknown_name_message(name: str) -> str:
    names = ", ".join(DATASETS)
    kinds = ", ".join(f"{k}:PATH" for k in CUSTOM_KINDS)
    return (
        f"unknown dataset {name!r}; valid names: {names}; or your own files: {kinds}; "
        "or any Hugging Face dataset: hf:NAME[:CONFIG], disk:PATH"
    )


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The ``data_dir`` argument, else ``$LCL_DATA_DIR``, else None."""
    if data_dir is None:
        data_dir = os.environ.get("LCL_DATA_DIR") or None
    return None if data_dir is None else Path(data_dir).expanduser()


def candidate_dirs(data_dir: Path | None, *subdirs: str) -> list[Path]:
    """Where a dataset's folder may be: ``data_dir/<subdir>`` for each name, then ``data_dir`` itself."""
    if data_dir is None:
        return []
    return [data_dir / s for s in subdirs] + [data_dir]


def find_files(dirs: Iterable[Path], names: Sequence[str]) -> Path | None:
    """First directory holding all of ``names``."""
    for d in dirs:
        if all((d / n).is_file() for n in names):
            return d
    return None


def looked_for(dirs: Iterable[Path], names: Sequence[str]) -> str:
    dirs = list(dirs)
    if not dirs:
        return f"{', '.join(names)} (no data dir given: pass data_dir= or set LCL_DATA_DIR)"
    return "; ".join(str(d / n) for d in dirs for n in names)


def hub_disabled() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "LCL_NO_HUB")
    )


def from_hub(
    name: str, what: str, fetch: Callable[[], datasets.DatasetDict]
) -> datasets.DatasetDict:
    """Run ``fetch`` (a Hub download), turning any failure into one DatasetNotFoundError."""
    info = DATASETS[name]
    if hub_disabled():
        raise DatasetNotFoundError(
            f"{name}: local files not found; looked for {what}. "
            f"The Hugging Face Hub copy ({info.hub_id}) was not tried because offline mode is set "
            "(HF_HUB_OFFLINE / HF_DATASETS_OFFLINE / LCL_NO_HUB)."
        )
    logger.info(
        "%s: local files not found, downloading %s from the Hugging Face Hub", name, info.hub_id
    )
    try:
        return fetch()
    except Exception as exc:  # network, auth, schema: the user needs the same advice for all
        raise DatasetNotFoundError(
            f"{name}: local files not found; looked for {what}. "
            f"Downloading {info.hub_id} from the Hugging Face Hub also failed: {exc}"
        ) from exc


def not_found(name: str, what: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{name}: data files not found; looked for {what}. "
        "Pass data_dir= (or set LCL_DATA_DIR) to the folder holding the original release files."
    )


def is_multilabel(features: datasets.Features) -> bool:
    """Whether a dataset's ``label`` column holds a list of classes per text
    (``Sequence(ClassLabel)``) rather than one class (``ClassLabel``): the one test of
    multi-label data, used by training, evaluation, the probe and the report."""
    label = features.get("label") if hasattr(features, "get") else None
    return isinstance(getattr(label, "feature", None), datasets.ClassLabel)


def label_names(features: datasets.Features) -> list[str]:
    """The class names of a ``label`` column, single- or multi-label."""
    label = features["label"]
    return list(label.feature.names if is_multilabel(features) else label.names)


def multi_hot(label_lists: Iterable[Sequence[int]], num_classes: int) -> np.ndarray:
    """(N, C) float32 0/1 matrix of lists of class indices (a multi-label ``label`` column)."""
    rows = list(label_lists)
    out = np.zeros((len(rows), num_classes), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, list(row)] = 1.0
    return out


def build(
    splits: dict[str, tuple[list[str], list]],
    names: Sequence[str],
    multilabel: bool = False,
) -> datasets.DatasetDict:
    """DatasetDict with ``text`` (string) and ``label`` for each split: a ClassLabel, or with
    ``multilabel`` a ``Sequence(ClassLabel)`` whose labels are lists of class indices.

    Refuses training data of fewer than two classes (nothing to tell apart)."""
    if "train" in splits:
        train = splits["train"][1]
        used = {i for row in train for i in row} if multilabel else set(train)
        if len(used) < 2:
            present = sorted(names[i] for i in used)
            raise DataError(
                f"the training data has {len(present)} class(es) "
                f"({', '.join(present) or 'none'}); a classifier needs at least two"
            )
    label = datasets.ClassLabel(names=list(names))
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.Sequence(label) if multilabel else label,
        }
    )
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)
            for split, (texts, labels) in splits.items()
        }
    )


def select_classes(dsd: datasets.DatasetDict, keep: Sequence[str]) -> datasets.DatasetDict:
    """Keep only the examples of ``keep`` and re-index their labels 0..k-1 in that order."""
    if is_multilabel(dsd["train"].features):
        raise ValueError("choosing classes of multi-label data is not supported")
    names = dsd["train"].features["label"].names
    missing = [k for k in keep if k not in names]
    if missing:
        raise ValueError(f"unknown class name(s) {missing}; valid names: {', '.join(names)}")
    new_index = {names.index(k): i for i, k in enumerate(keep)}
    out = {}
    for split, ds in dsd.items():
        batch = ds[:]  # plain lists; iterating a lazy Column is much slower
        rows = [(t, new_index[l]) for t, l in zip(batch["text"], batch["label"]) if l in new_index]
        out[split] = ([t for t, _ in rows], [l for _, l in rows])
    return build(out, keep)


def carve(
    texts: list[str], labels: list, fraction: float, seed: int, what: str
) -> tuple[tuple[list[str], list], tuple[list[str], list]]:
    """Split off ``fraction`` of the examples, stratified by label when every class allows it.

    Multi-label examples (``labels`` are lists of class indices) are split by iterative
    stratification (:func:`iterative_split`), which keeps every class in the part kept."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
    pick = lambda ii: ([texts[i] for i in ii], [labels[i] for i in ii])  # noqa: E731
    if labels and isinstance(labels[0], (list, tuple)):
        keep_idx, out_idx = iterative_split(labels, max(1, round(len(texts) * fraction)), seed)
        return pick(keep_idx), pick(out_idx)
    n_classes = len(set(labels))
    n_out = max(1, round(len(texts) * fraction))
    counts = {l: labels.count(l) for l in set(labels)}
    stratify = (
        labels
        if min(counts.values()) >= 2 and n_classes <= n_out <= len(texts) - n_classes
        else None
    )
    if stratify is None:
        logger.warning(
            "carving %s: too few examples per class to stratify; using a plain random split", what
        )
    idx = list(range(len(texts)))
    keep_idx, out_idx = train_test_split(idx, test_size=n_out, random_state=seed, stratify=stratify)
    keep_idx, out_idx = sorted(keep_idx), sorted(out_idx)
    return pick(keep_idx), pick(out_idx)


def iterative_split(
    labels: Sequence[Sequence[int]], n_out: int, seed: int
) -> tuple[list[int], list[int]]:
    """Indices (kept, split off) of a seeded two-way split of multi-label examples, about
    ``n_out`` split off, by iterative stratification (Sechidis, Tsoumakas & Vlahavas, ECML
    PKDD 2011): the rarest class still unplaced goes first, each of its examples to the part
    that still wants most of that class (then most examples), so every class keeps about its
    share in both parts. A class that would still be missing from the kept part afterwards
    (possible only for classes of one or two examples) gets one of its examples moved back,
    so training always sees every class; then random rows move to give the split-off part
    ``n_out`` rows (where the kept part can spare them)."""
    n = len(labels)
    if not 0 < n_out < n:
        raise ValueError(f"cannot split {n_out} of {n} examples off")
    classes = sorted({c for row in labels for c in row})
    column = {c: j for j, c in enumerate(classes)}
    y = np.zeros((n, len(classes)), dtype=bool)
    for i, row in enumerate(labels):
        y[i, [column[c] for c in row]] = True
    rng = np.random.default_rng(seed)
    share = np.array([(n - n_out) / n, n_out / n])
    wanted_rows = np.array([n - n_out, n_out], dtype=float)
    wanted = np.outer(y.sum(axis=0), share)  # (classes, 2): examples of each class each part wants
    part = np.full(n, -1)

    def place(i: int, by_class: int | None) -> None:
        want = wanted[by_class] if by_class is not None else wanted_rows
        best = np.flatnonzero(want == want.max())
        if len(best) > 1 and by_class is not None:
            best = best[wanted_rows[best] == wanted_rows[best].max()]
        k = int(best[0] if len(best) == 1 else rng.choice(best))
        part[i] = k
        wanted[y[i], k] -= 1
        wanted_rows[k] -= 1

    while True:
        open_rows = part < 0
        counts = y[open_rows].sum(axis=0)
        if not counts.any():
            break
        rarest = np.flatnonzero(counts == counts[counts > 0].min())
        c = int(rarest[0] if len(rarest) == 1 else rng.choice(rarest))
        for i in rng.permutation(np.flatnonzero(open_rows & y[:, c])):
            place(int(i), c)
    for i in rng.permutation(np.flatnonzero(part < 0)):  # rows without a class (none in lcl)
        place(int(i), None)
    for c in range(len(classes)):
        if y[:, c].any() and not (y[:, c] & (part == 0)).any():
            part[int(rng.choice(np.flatnonzero(y[:, c])))] = 0
    # rows carrying several classes make the parts' sizes drift; move random rows to give the
    # exact size, never a kept class's last example
    kept = y[part == 0].sum(axis=0)
    excess = int((part == 1).sum()) - n_out
    for i in rng.permutation(n):
        if excess == 0:
            break
        if excess > 0 and part[i] == 1:
            part[i], excess = 0, excess - 1
            kept += y[i]
        elif excess < 0 and part[i] == 0 and (kept[y[i]] > 1).all():
            part[i], excess = 1, excess + 1
            kept -= y[i]
    return np.flatnonzero(part == 0).tolist(), np.flatnonzero(part == 1).tolist()
