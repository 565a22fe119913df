"""A small reader for the WordNet 3.0 database files: word -> synonyms.

Reads ``data.{noun,verb,adj,adv}`` (every synset with its words) and the morphological
exception lists ``{noun,verb,adj,adv}.exc`` directly, so neither NLTK's corpus downloader
nor its ``lexnames`` file is needed. Inflected words are reduced to base forms the way
WordNet's morphy does: the exception list first, then the suffix rules of morphy(7WN),
keeping only forms that exist for that part of speech.

The database is looked up in ``$LCL_WORDNET_DIR`` (if set, only there), then
``$WNSEARCHDIR``, then the Debian/Ubuntu location ``/usr/share/wordnet`` (package
``wordnet-base``) and a few other usual places.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from lcl.errors import LCLError

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
REQUIRED = tuple(f"data.{f}" for f in POS_FILES.values())

# morphy(7WN) detachment rules: (suffix, replacement) per part of speech.
_RULES = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
_ADJ_MARKER = re.compile(r"\([a-z]+\)$")  # "(a)", "(p)", "(ip)" after some adjectives


class WordNetNotFoundError(LCLError, RuntimeError):
    """The WordNet 3.0 database for synonym views is not installed (or not where looked)."""


def _install_hint(looked: list[Path]) -> str:
    where = ", ".join(str(p) for p in looked) or "(nowhere)"
    return (
        f"WordNet 3.0 database not found (looked in: {where}; need {', '.join(REQUIRED)}). "
        "Install it with `apt-get install wordnet-base` (Debian/Ubuntu), or set LCL_WORDNET_DIR "
        "to a folder holding the WordNet 3.0 dict files, or use views='dropout', which needs no lexicon."
    )


def find_wordnet_dir() -> Path:
    explicit = os.environ.get("LCL_WORDNET_DIR")
    if explicit:
        candidates = [Path(explicit).expanduser()]
        candidates.append(candidates[0] / "dict")
    else:
        candidates = [Path(p).expanduser() for p in filter(None, [os.environ.get("WNSEARCHDIR")])]
        candidates += [
            Path("/usr/share/wordnet"),
            Path("/usr/local/share/wordnet"),
            Path("/usr/local/WordNet-3.0/dict"),
            Path("/opt/homebrew/share/wordnet"),
            Path.home() / "nltk_data" / "corpora" / "wordnet",
        ]
    for d in candidates:
        if all((d / f).is_file() for f in REQUIRED):
            return d
    raise WordNetNotFoundError(_install_hint(candidates))


class Lexicon:
    """Synsets and base-form lookup of one WordNet database folder."""

    def __init__(self, root: Path):
        self.root = root
        self.synsets: list[tuple[str, ...]] = []
        # pos -> lemma (lowercase) -> indices into self.synsets, in file order
        self.index: dict[str, dict[str, list[int]]] = {p: {} for p in POS_FILES}
        self.exceptions: dict[str, dict[str, tuple[str, ...]]] = {p: {} for p in POS_FILES}
        for pos, fname in POS_FILES.items():
            self._read_data(pos, root / f"data.{fname}")
            exc = root / f"{fname}.exc"
            if exc.is_file():
                for line in exc.read_text(encoding="utf-8", errors="replace").splitlines():
                    parts = line.split()
                    if len(parts) >= 2:
                        self.exceptions[pos][parts[0]] = tuple(parts[1:])
        self._cache: dict[str, tuple[str, ...]] = {}

    def _read_data(self, pos: str, path: Path) -> None:
        index = self.index[pos]
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):  # license header
                    continue
                # offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] p_cnt ...
                fields = line.split(" ", 4)
                n_words = int(fields[3], 16)
                pairs = fields[4].split(" ", 2 * n_words)
                words = tuple(_ADJ_MARKER.sub("", w) for w in pairs[: 2 * n_words : 2])
                sid = len(self.synsets)
                self.synsets.append(words)
                for w in words:
                    index.setdefault(w.lower(), []).append(sid)

    def base_forms(self, word: str, pos: str) -> list[str]:
        """morphy: the word and its base forms that exist for ``pos``."""
        index = self.index[pos]
        forms = [word] + list(self.exceptions[pos].get(word, ()))
        if word not in self.exceptions[pos]:
            forms += [
                word[: -len(suf)] + rep
                for suf, rep in _RULES[pos]
                if word.endswith(suf) and len(word) > len(suf)
            ]
        return [f for f in dict.fromkeys(forms) if f in index]

    def synonyms(self, word: str) -> tuple[str, ...]:
        """Other words of every synset of ``word`` (any part of speech), in database order.

        Multi-word lemmas come back with spaces; the word itself and its base forms are left out.
        """
        key = word.lower()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        bases: set[str] = {key}
        out: dict[str, None] = {}
        for pos in POS_FILES:
            for base in self.base_forms(key, pos):
                bases.add(base)
                for sid in self.index[pos][base]:
                    for w in self.synsets[sid]:
                        out.setdefault(w.replace("_", " "), None)
        result = tuple(w for w in out if w.lower() not in bases)
        self._cache[key] = result
        return result


@functools.lru_cache(maxsize=4)
def _load(root: Path) -> Lexicon:
    return Lexicon(root)


def load_lexicon(root: str | os.PathLike | None = None) -> Lexicon:
    """The lexicon of ``root`` (default: :func:`find_wordnet_dir`), parsed once per process."""
    if root is None:
        root = find_wordnet_dir()
    root = Path(root)
    if not all((root / f).is_file() for f in REQUIRED):
        raise WordNetNotFoundError(_install_hint([root]))
    return _load(root.resolve())
