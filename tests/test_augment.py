import difflib
import json
import logging
import random
import time

import pytest

from lcl.data import add_views, augment, load_dataset
from lcl.data.augment import WordNetNotFoundError, make_views, synonym_view, synonym_views
from lcl.data.wordnet import find_wordnet_dir, load_lexicon


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


@pytest.fixture(scope="module")
def demo_train():
    return load_dataset("demo")["train"]


def changed_words(a: str, b: str) -> int:
    """Words of ``a`` that are not kept in ``b``."""
    matcher = difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False)
    return len(a.split()) - sum(block.size for block in matcher.get_matching_blocks())


def test_lexicon_is_wordnet_30(lexicon):
    header = (find_wordnet_dir() / "data.adj").read_text(encoding="utf-8")[:2000]
    assert "WordNet 3.0" in header
    assert len(lexicon.synsets) == 117659  # WordNet 3.0: 82,115 + 13,767 + 18,156 + 3,621
    assert "kid" in lexicon.synonyms("children")  # irregular plural via noun.exc
    assert "glad" in lexicon.synonyms("happy")
    assert "frightened" in lexicon.synonyms("scared")
    assert lexicon.synonyms("afraid") == ()  # no synonyms in WordNet


def test_synonym_view_changes_words_keeps_format(lexicon):
    text = "My best friend moved across the country, and the house felt empty."
    view = synonym_view(text, random.Random(0), lexicon)
    assert view != text
    assert view[0].isupper() and view.endswith(".")
    assert 1 <= changed_words(text, view) <= 10
    assert (
        synonym_view("I am so and the.", random.Random(0), lexicon) == "I am so and the."
    )  # only stopwords


def test_add_views_synonym(demo_train, tmp_path):
    out = add_views(demo_train, method="synonym", seed=0, cache_dir=tmp_path)
    assert out.column_names == ["text", "label", "view"]
    batch = out[:]
    assert batch["label"] == demo_train[:]["label"]
    assert batch["text"] == demo_train[:]["text"]
    differ = [t != v for t, v in zip(batch["text"], batch["view"])]
    assert sum(differ) > 0.9 * len(differ)
    for t, v in zip(batch["text"], batch["view"]):
        assert changed_words(t, v) <= 10  # aug_max


def test_deterministic_for_a_seed(demo_train, tmp_path):
    texts = demo_train[:]["text"]
    a, _ = synonym_views(texts, seed=0, cache_dir=tmp_path / "a")
    b, _ = synonym_views(texts, seed=0, cache_dir=tmp_path / "b")
    c, _ = synonym_views(texts, seed=1, cache_dir=tmp_path / "c")
    assert a == b and a != c
    # a text's view does not depend on the other texts
    d, _ = synonym_views(texts[::-1][:50], seed=0, cache_dir=tmp_path / "d")
    assert d == a[::-1][:50]


def test_cache_hit_second_time(demo_train, tmp_path, caplog):
    texts = demo_train[:]["text"]
    views, hit = synonym_views(texts, seed=0, cache_dir=tmp_path)
    assert hit is False
    files = list((tmp_path / "views").iterdir())
    assert len(files) == 1 and not files[0].name.startswith(
        ".tmp"
    )  # written atomically, no leftovers
    assert json.loads(files[0].read_text(encoding="utf-8"))["views"] == views
    with caplog.at_level(logging.INFO, logger="lcl.data.augment"):
        again, hit = synonym_views(texts, seed=0, cache_dir=tmp_path)
    assert hit is True and again == views and "cache hit" in caplog.text
    # other texts, seed or params are other cache entries
    assert synonym_views(texts[:-1], seed=0, cache_dir=tmp_path)[1] is False
    assert synonym_views(texts, seed=2, cache_dir=tmp_path)[1] is False
    assert len(list((tmp_path / "views").iterdir())) == 3


def test_cache_dir_from_env(demo_train, tmp_path, monkeypatch):
    monkeypatch.setenv("LCL_CACHE_DIR", str(tmp_path))
    texts = demo_train[:]["text"][:20]
    assert synonym_views(texts, seed=0)[1] is False
    assert synonym_views(texts, seed=0)[1] is True
    assert (tmp_path / "views").is_dir()


def test_dropout_views(demo_train, tmp_path, monkeypatch):
    monkeypatch.setenv("LCL_WORDNET_DIR", str(tmp_path / "no-wordnet"))  # dropout needs no lexicon
    out = add_views(demo_train, method="dropout", cache_dir=tmp_path)
    assert out[:]["view"] == demo_train[:]["text"]
    assert out[:]["label"] == demo_train[:]["label"]


def test_missing_lexicon_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LCL_WORDNET_DIR", str(tmp_path))
    with pytest.raises(WordNetNotFoundError) as err:
        synonym_views(["a happy text"], seed=0, cache_dir=tmp_path)
    msg = str(err.value)
    assert "apt-get install wordnet-base" in msg and "LCL_WORDNET_DIR" in msg and "dropout" in msg
    assert str(tmp_path) in msg


def test_unknown_method():
    with pytest.raises(ValueError, match="synonym, dropout"):
        make_views(["x"], method="backtranslation")


def test_ed32_train_is_fast(data_dir, tmp_path):
    texts = load_dataset("empathetic_dialogues", data_dir)["train"][:]["text"]
    start = time.perf_counter()
    views, hit = augment.synonym_views(texts, seed=0, cache_dir=tmp_path)
    elapsed = time.perf_counter() - start
    assert not hit and len(views) == 19533
    assert sum(t != v for t, v in zip(texts, views)) > 0.95 * len(texts)
    assert elapsed < 60, f"synonym views of ED-32 train took {elapsed:.1f}s"
