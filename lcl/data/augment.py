"""Second views of training texts for the contrastive loss.

``synonym``: WordNet synonym replacement, after the paper's nlpaug
``SynonymAug(aug_src="wordnet", aug_p=0.3, aug_min=1, aug_max=10)``, reimplemented
without nlpaug on the WordNet 3.0 database files (see :mod:`lcl.data.wordnet`).
For each text, ``ceil(aug_p * number of words)`` words (at least ``aug_min``, at most
``aug_max``) are drawn among the words that are not stopwords and have WordNet synonyms,
and each is replaced by a random synonym (multi-word lemmas with spaces; capitalisation of
the original kept). Differences from nlpaug: **no POS tagging** (NLTK's tagger data is not
available offline), so synonyms come from every part of speech of the word; base forms
are found with WordNet's morphy rules; punctuation and spacing of the text are kept
exactly. Each text has its own RNG seeded by ``(seed, text)``, so a text's view does not
depend on its neighbours and the result is deterministic for a seed.

``dropout``: the view is the text itself; the encoder's dropout makes the two views differ
(needs no lexicon).

Synonym views are cached on disk, keyed by a hash of (texts, method, params, seed,
lexicon), under ``cache_dir``, else ``$LCL_CACHE_DIR``, else ``~/.cache/lcl``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
from collections.abc import Sequence
from pathlib import Path

import datasets

from lcl.io import atomic_write_text
from lcl.training_args import VIEWS

from .wordnet import Lexicon, WordNetNotFoundError, find_wordnet_dir, load_lexicon

logger = logging.getLogger(__name__)

METHODS = VIEWS  # the configuration's list: one place names the view methods
SYNONYM_PARAMS = {"aug_p": 0.3, "aug_min": 1, "aug_max": 10}
_FORMAT = 2  # bump when the algorithm changes, so old cache files are not reused
LEXICON_ID = "wordnet-3.0"  # the loader reads WordNet 3.0's database files

_WORD = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*")

# English function words never replaced (NLTK's stopword corpus is not available offline).
STOPWORDS = frozenset(
    """
    a about above after again against ain all am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn
    doing don down during each few for from further had hadn has hasn have haven having he
    her here hers herself him himself his how i if in into is isn it its itself just ll m ma
    me might mightn more most must mustn my myself needn no nor not now o of off on once only
    or other our ours ourselves out over own re s same shan she should shouldn so some such t
    than that the their theirs them themselves then there these they this those through to too
    under until up upon us ve very was wasn we were weren what when where which while who whom
    why will with won would wouldn y you your yours yourself yourselves also got get gets let
    lets oh ok okay yes yeah really much many one ones
    """.split()
)

__all__ = [
    "METHODS",
    "SYNONYM_PARAMS",
    "WordNetNotFoundError",
    "add_views",
    "make_views",
    "synonym_views",
    "dropout_views",
    "synonym_view",
]


def synonym_view(
    text: str,
    rng: random.Random,
    lexicon: Lexicon,
    aug_p: float = 0.3,
    aug_min: int = 1,
    aug_max: int = 10,
) -> str:
    """One augmented copy of ``text``."""
    words = list(_WORD.finditer(text))
    candidates = []
    for m in words:
        w = m.group()
        if "'" in w or w.lower() in STOPWORDS or len(w) < 2:
            continue
        syns = lexicon.synonyms(w)
        if syns:
            candidates.append((m, syns))
    if not candidates:
        return text
    n = min(max(math.ceil(aug_p * len(words)), aug_min), aug_max)
    chosen = rng.sample(candidates, min(n, len(candidates)))
    out, pos = [], 0
    for m, syns in sorted(chosen, key=lambda c: c[0].start()):
        w, new = m.group(), rng.choice(syns)
        if w.isupper() and len(w) > 1:
            new = new.upper()
        elif w[0].isupper():
            new = new[0].upper() + new[1:]
        out += [text[pos : m.start()], new]
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def dropout_views(texts: Sequence[str]) -> list[str]:
    return list(texts)


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is None:
        cache_dir = os.environ.get("LCL_CACHE_DIR") or Path.home() / ".cache" / "lcl"
    return Path(cache_dir).expanduser() / "views"


def _cache_key(texts: Sequence[str], method: str, params: dict, seed: int, lexicon_id: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([_FORMAT, method, params, seed, lexicon_id], sort_keys=True).encode())
    for t in texts:
        h.update(b"\0")
        h.update(t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _read_cache(path: Path, n: int) -> list[str] | None:
    try:
        views = json.loads(path.read_text(encoding="utf-8"))["views"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return views if isinstance(views, list) and len(views) == n else None


def _write_cache(path: Path, views: list[str]) -> None:
    # temp file + os.replace: a reader never sees half a file, even with parallel writers
    try:
        atomic_write_text(path, json.dumps({"views": views}, ensure_ascii=False))
    except OSError as exc:
        logger.warning("could not write the views cache %s: %s", path, exc)


def synonym_views(
    texts: Sequence[str],
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    **params: float,
) -> tuple[list[str], bool]:
    """WordNet synonym views of ``texts`` and whether they came from the disk cache.

    ``params`` override :data:`SYNONYM_PARAMS` (``aug_p``, ``aug_min``, ``aug_max``).
    Raises :class:`WordNetNotFoundError` when the WordNet database is missing.
    """
    unknown = set(params) - set(SYNONYM_PARAMS)
    if unknown:
        raise TypeError(f"unknown synonym parameter(s): {sorted(unknown)}")
    params = {**SYNONYM_PARAMS, **params}
    # The key names the lexicon release, not its files, so a cache made here serves a machine
    # without WordNet (the GPU bundle ships one).
    key = _cache_key(texts, "synonym", params, seed, LEXICON_ID)
    path = _cache_root(cache_dir) / f"synonym-{key[:32]}.json"
    cached = _read_cache(path, len(texts))
    if cached is not None:
        logger.info("synonym views: cache hit %s", path)
        return cached, True
    lexicon = load_lexicon(find_wordnet_dir())
    views = [synonym_view(t, random.Random(f"{seed}\0{t}"), lexicon, **params) for t in texts]
    _write_cache(path, views)
    logger.info("synonym views: computed %d views, cached at %s", len(views), path)
    return views, False


def make_views(
    texts: Sequence[str],
    method: str = "synonym",
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[list[str], bool]:
    """Views of ``texts`` by ``method`` and whether they were a cache hit."""
    if method == "synonym":
        return synonym_views(texts, seed, cache_dir)
    if method == "dropout":
        return dropout_views(texts), False
    raise ValueError(f"unknown views method {method!r}; use one of {', '.join(METHODS)}")


def add_views(
    dataset: datasets.Dataset,
    method: str = "synonym",
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    *,
    text_column: str = "text",
) -> datasets.Dataset:
    """``dataset`` with a ``view`` column (str): the second view of each text."""
    texts = dataset.select_columns([text_column])[:][text_column]
    views, _ = make_views(texts, method, seed, cache_dir)
    if "view" in dataset.column_names:
        dataset = dataset.remove_columns("view")
    return dataset.add_column("view", views, feature=datasets.Value("string"))
