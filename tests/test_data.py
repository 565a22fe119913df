import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from lcl.data import DATASETS, DataError, DatasetNotFoundError, UnknownDatasetError, load_dataset
from lcl.data.empathetic_dialogues import EMOTIONS as ED_EMOTIONS
from lcl.data.empathetic_dialogues import SUBSETS
from lcl.data.registry import DatasetInfo

SIZES = {
    "empathetic_dialogues": (19533, 2770, 2547, 32),
    "goemotions": (23485, 2956, 2984, 27),
    "isear": (4599, 1533, 1534, 7),
    "emoint": (3613, 347, 3142, 4),
    "sst5": (8544, 1101, 2210, 5),
    "sst2": (6920, 872, 1821, 2),
    "demo": (300, 60, 60, 5),
}


@pytest.fixture(scope="module", autouse=True)
def offline():
    # Tests must never reach the Hub, even where a loader would fall back to it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def loaded(data_dir):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_dataset(name, data_dir)
        return cache[name]

    return get


def label_counts(ds):
    names = ds.features["label"].names
    return Counter(names[i] for i in ds[:]["label"])


def find(ds, text):
    """Label name of ``text`` in a Dataset (or any split of a DatasetDict)."""
    splits = ds.values() if hasattr(ds, "values") else [ds]
    for split in splits:
        for t, label in zip(split[:]["text"], split[:]["label"]):
            if t == text:
                return split.features["label"].names[label]
    raise AssertionError(f"text not found: {text!r}")


# ---- sizes, classes, label names -------------------------------------------------------


@pytest.mark.parametrize("name", list(SIZES))
def test_split_sizes_and_classes(loaded, name):
    ds = loaded(name)
    n_train, n_valid, n_test, k = SIZES[name]
    assert list(ds) == ["train", "validation", "test"]
    assert (len(ds["train"]), len(ds["validation"]), len(ds["test"])) == (n_train, n_valid, n_test)
    for split in ds.values():
        assert split.column_names == ["text", "label"]
        assert split.features["label"].num_classes == k
        assert len(set(split[:]["label"])) == k
        assert all(isinstance(t, str) and t for t in split[:]["text"])
    assert DATASETS[name].num_classes == k
    assert isinstance(DATASETS[name], DatasetInfo) and DATASETS[name].description


def test_ed_per_class_counts_match_stats(loaded, data_dir):
    ds = loaded("empathetic_dialogues")
    assert ds["train"].features["label"].names == sorted(ED_EMOTIONS)
    for split, stats in [("train", "train"), ("validation", "valid"), ("test", "test")]:
        with open(
            data_dir / "empathetic_dialogues" / "lcl_authors_extraction" / f"{stats}_stats.csv"
        ) as f:
            expected = {r["emotion"]: int(r["absolute_value"]) for r in csv.DictReader(f)}
        assert label_counts(ds[split]) == expected


def test_ed_known_texts(loaded):
    ds = loaded("empathetic_dialogues")
    assert ds["train"][0]["text"] == (
        "I remember going to the fireworks with my best friend. There was a lot of people, "
        "but it only felt like us in the world."
    )
    assert (
        find(ds["train"], "I woke up this morning to my wife telling me she was pregnant!")
        == "surprised"
    )
    assert not any("_comma_" in t for t in ds["train"][:]["text"])


def test_goemotions(loaded, data_dir):
    ds = loaded("goemotions")
    names = (data_dir / "goemotions" / "labels.txt").read_text().split("\n")
    assert ds["train"].features["label"].names == [n for n in names if n != "neutral"]
    counts = label_counts(ds["train"])
    assert counts["admiration"] == 2710 and min(counts.values()) == 39
    # CSV-quoted line in the TSV: quotes removed, doubled quotes undone, trailing space kept
    assert find(ds["train"], 'Three words, no subtlety. "Dude. Stop. Seriously." ') == "annoyance"
    assert not any(
        t.startswith('"') and t.endswith('"') and '""' in t for t in ds["train"][:]["text"]
    )


def test_isear(loaded, data_dir):
    ds = loaded("isear")
    assert ds["train"].features["label"].names == [
        "joy",
        "fear",
        "anger",
        "sadness",
        "disgust",
        "shame",
        "guilt",
    ]
    total = sum((label_counts(ds[s]) for s in ds), Counter())
    assert total == {
        "anger": 1096,
        "sadness": 1096,
        "disgust": 1096,
        "shame": 1096,
        "fear": 1095,
        "joy": 1094,
        "guilt": 1093,
    }
    texts = [t for s in ds for t in ds[s][:]["text"]]
    assert not any("á" in t for t in texts)
    # a row whose SIT held "á|" line breaks is rebuilt into one clean text
    assert (
        "Last night I had a chat with a fellow student.  I had known her for about half a year, and for "
        'the first time we were speaking \\the same language\\"- meaning an inspiring discussion and encounter."'
    ) in texts
    # the one literal "|" inside a text survives
    piped = [t for t in texts if "|" in t]
    assert len(piped) == 1 and piped[0].endswith(
        '|NB: In Bulgarian schools \\"a three\\" is the second worst mark."'
    )
    assert find(ds, "When I was involved in a traffic accident.") == "fear"
    # the split is the paper's: seeded, reproducible, and changes with the seed
    again = load_dataset("isear", data_dir)
    assert again["test"][:]["text"] == ds["test"][:]["text"]
    other = load_dataset("isear", data_dir, seed=1)
    assert other["test"][:]["text"] != ds["test"][:]["text"]


def test_emoint(loaded):
    ds = loaded("emoint")
    assert ds["train"].features["label"].names == ["anger", "fear", "joy", "sadness"]
    assert label_counts(ds["train"]) == {"anger": 857, "fear": 1147, "joy": 823, "sadness": 786}
    assert label_counts(ds["validation"]) == {"anger": 84, "fear": 110, "joy": 79, "sadness": 74}
    assert label_counts(ds["test"]) == {"anger": 760, "fear": 995, "joy": 714, "sadness": 673}
    assert (
        find(
            ds["train"],
            "Oh dear an evening of absolute hilarity I don't think I have laughed so much "
            "in a long time! 😂",
        )
        == "joy"
    )
    assert (
        find(
            ds["train"],
            "Just got back from seeing @GaryDelaney in Burslem. AMAZING!! Face still hurts "
            "from laughing so much #hilarious",
        )
        == "joy"
    )


def test_sst5(loaded):
    ds = loaded("sst5")
    names = ["very negative", "negative", "neutral", "positive", "very positive"]
    assert ds["train"].features["label"].names == names
    expected = {
        "train": (1092, 2218, 1624, 2322, 1288),
        "validation": (139, 289, 229, 279, 165),
        "test": (279, 633, 389, 510, 399),
    }
    for split, counts in expected.items():
        assert label_counts(ds[split]) == dict(zip(names, counts))
    assert (
        find(
            ds["test"],
            "( Wendigo is ) why we go to the cinema : to be fed through the eye , the heart , "
            "the mind .",
        )
        == "positive"
    )
    texts = [t for s in ds for t in ds[s][:]["text"]]
    assert not any(tok in t for t in texts for tok in ("-LRB-", "-RRB-", "\\/", "``", "''"))
    assert any("writer/director" in t for t in texts)
    assert any("1/2" in t for t in texts)


def test_sst2(loaded):
    ds2, ds5 = loaded("sst2"), loaded("sst5")
    assert ds2["train"].features["label"].names == ["negative", "positive"]
    assert label_counts(ds2["train"]) == {"negative": 1092 + 2218, "positive": 2322 + 1288}
    assert label_counts(ds2["test"]) == {"negative": 279 + 633, "positive": 510 + 399}
    five = dict(zip(ds5["test"][:]["text"], ds5["test"][:]["label"]))
    for text, label in zip(ds2["test"][:]["text"], ds2["test"][:]["label"]):
        assert five[text] != 2 and (five[text] > 2) == (label == 1)


# ---- ED class subsets -----------------------------------------------------------------


@pytest.mark.parametrize("subset", list(SUBSETS))
def test_ed_named_subsets(loaded, subset, data_dir):
    full = loaded("empathetic_dialogues")
    ds = load_dataset(f"empathetic_dialogues:{subset}", data_dir)
    names = list(SUBSETS[subset])
    assert ds["train"].features["label"].names == names
    for split in ds:
        counts = label_counts(ds[split])
        full_counts = label_counts(full[split])
        assert counts == {n: full_counts[n] for n in names}
        assert set(ds[split][:]["label"]) == set(range(len(names)))


def test_ed_subset_reindexes_labels(loaded, data_dir):
    ds = load_dataset("empathetic_dialogues:4hard-a", data_dir)
    assert ds["train"].features["label"].names == ["anxious", "apprehensive", "afraid", "terrified"]
    full = loaded("empathetic_dialogues")["train"]
    afraid = full.features["label"].str2int("afraid")
    expected = [t for t, l in zip(full[:]["text"], full[:]["label"]) if l == afraid]
    assert [
        t for t, l in zip(ds["train"][:]["text"], ds["train"][:]["label"]) if l == 2
    ] == expected


def test_ed_explicit_subset(data_dir):
    ds = load_dataset("empathetic_dialogues:angry,sad,afraid", data_dir)
    assert ds["train"].features["label"].names == ["angry", "sad", "afraid"]
    assert label_counts(ds["train"]) == {"angry": 695, "sad": 667, "afraid": 634}


def test_bad_subset_and_unknown_name(data_dir):
    with pytest.raises(UnknownDatasetError, match="happyish"):
        load_dataset("empathetic_dialogues:angry,happyish", data_dir)
    with pytest.raises(ValueError) as err:
        load_dataset("go_emotions_typo", data_dir)
    for name in SIZES:
        assert name in str(err.value)
    assert "csv:PATH" in str(err.value)


# ---- missing data ---------------------------------------------------------------------


def test_not_found_names_files(tmp_path, monkeypatch):
    monkeypatch.delenv("LCL_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="isear.csv"):
        load_dataset("isear", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="anger-ratings-0to1.train.txt"):
        load_dataset("emoint", tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"train\.tsv.*offline"):  # Hub skipped offline
        load_dataset("goemotions", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="LCL_DATA_DIR"):
        load_dataset("isear")
    assert issubclass(DatasetNotFoundError, ValueError) and issubclass(DataError, ValueError)


def test_env_data_dir(data_dir, monkeypatch):
    monkeypatch.setenv("LCL_DATA_DIR", str(data_dir))
    assert len(load_dataset("emoint")["validation"]) == 347


# ---- the user's copy of the official ED release -----------------------------------------

RELEASE_HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags"


def write_release(root: Path):
    d = root / "empatheticdialogues"
    d.mkdir()
    rows = {
        "train": [
            "hit:0_conv:1,1,sentimental,I remember going to the fireworks with my best friend. There was a lot of "
            "people_comma_ but it only felt like us in the world.,1,I remember going to see the fireworks with my "
            "best friend. It was the first time we ever spent time alone together. Although there was a lot of "
            "people_comma_ we felt like the only people in the world.,5|5|5_2|2|5,",
            "hit:0_conv:1,2,sentimental,I remember going to the fireworks with my best friend. There was a lot of "
            "people_comma_ but it only felt like us in the world.,0,Was this a friend you were in love with_comma_ "
            'or just a "best friend?,5|5|5_2|2|5,',
            "hit:1_conv:2,1,afraid, i used to scare for darkness ,2,it feels like hitting to blank wall when i see "
            "the darkness,,",
            "hit:1_conv:2,2,afraid, i used to scare for darkness ,3,Oh ya? I don't really see how,,",
        ],
        "valid": [
            "hit:3_conv:6,1,angry,My brother ate my lunch_comma_ again.,7,He did it again.,,"
        ],
        "test": [
            "hit:5_conv:9,1,joyful,We won the game!,1,We won!,,",
            "hit:5_conv:9,2,joyful,We won the game!,2,Nice,,",
        ],
    }
    for split, lines in rows.items():
        (d / f"{split}.csv").write_text(
            "\n".join([RELEASE_HEADER, *lines]) + "\n", encoding="utf-8"
        )


def test_ed_user_release(tmp_path):
    write_release(tmp_path)
    ds = load_dataset("empathetic_dialogues", tmp_path)
    assert ds["train"][:]["text"] == [
        "I remember going to the fireworks with my best friend. There was a lot of people, but it only felt "
        "like us in the world.",
        "i used to scare for darkness",
    ]
    names = ds["train"].features["label"].names
    assert [names[i] for i in ds["train"][:]["label"]] == ["sentimental", "afraid"]
    assert ds["validation"][:]["text"] == ["My brother ate my lunch, again."]
    assert (
        ds["test"][:]["text"] == ["We won the game!"]
        and names[ds["test"][:]["label"][0]] == "joyful"
    )
    sub = load_dataset("empathetic_dialogues:afraid,sentimental", tmp_path)
    assert sub["train"][:]["label"] == [1, 0]


# ---- your own files -------------------------------------------------------------------


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def make_rows(n_per_class=20, labels=("neg", "pos", "mid")):
    return [
        (f"example number {i} of {lab}, with a comma", lab)
        for lab in labels
        for i in range(n_per_class)
    ]


def test_custom_csv_single_file_carves_splits(tmp_path):
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "sentence", "emotion"])
        for i, (t, l) in enumerate(make_rows()):
            w.writerow([i, t, l])
    ds = load_dataset(f"csv:{path}", text_column="sentence", label_column="emotion", seed=3)
    assert ds["train"].features["label"].names == ["mid", "neg", "pos"]
    assert (len(ds["train"]), len(ds["validation"]), len(ds["test"])) == (48, 6, 6)
    for split in ("validation", "test"):  # stratified
        assert sorted(Counter(ds[split][:]["label"]).values()) == [2, 2, 2]
    all_texts = ds["train"][:]["text"] + ds["validation"][:]["text"] + ds["test"][:]["text"]
    assert sorted(all_texts) == sorted(t for t, _ in make_rows())
    again = load_dataset(f"csv:{path}", text_column="sentence", label_column="emotion", seed=3)
    assert again["test"][:]["text"] == ds["test"][:]["text"]
    # a bare path works too, its kind taken from the extension
    assert (
        load_dataset(str(path), text_column="sentence", label_column="emotion", seed=3)["test"][:][
            "text"
        ]
        == ds["test"][:]["text"]
    )


def test_custom_tsv_directory_with_dev(tmp_path):
    rows = make_rows(5)
    body = lambda rs: "text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rs)  # noqa: E731
    write(tmp_path / "train.tsv", body(rows) + 'He said "hi" to me\tpos\n')
    write(tmp_path / "dev.tsv", body(rows[:3]))
    write(tmp_path / "test.tsv", body(rows[5:8]))
    ds = load_dataset(f"tsv:{tmp_path}")
    assert (len(ds["train"]), len(ds["validation"]), len(ds["test"])) == (16, 3, 3)
    assert ds["train"][:]["text"][-1] == 'He said "hi" to me'
    assert ds["validation"][:]["text"] == [t for t, _ in rows[:3]]


def test_custom_jsonl_directory_integer_labels(tmp_path):
    lines = lambda rs: "".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rs)  # noqa: E731
    train = [(f"text {i} ünïcödé 🙂", [0, 1, 3][i % 3]) for i in range(30)]
    write(tmp_path / "train.jsonl", lines(train))
    write(tmp_path / "valid.jsonl", lines([("a valid one", 3), ("another", 0)]))
    ds = load_dataset(f"jsonl:{tmp_path}", validation_fraction=0.2)
    # 0, 1, 3 are not 0..C-1: they are class names, not indices (issue 18, case 12)
    assert ds["train"].features["label"].names == ["0", "1", "3"]
    assert ds["validation"][:]["label"] == [2, 0]
    assert len(ds["test"]) == 6 and len(ds["train"]) == 24
    assert set(ds["test"][:]["label"]) == {0, 1, 2}
    assert "text 0 ünïcödé 🙂" in ds["train"][:]["text"] + ds["test"][:]["text"]


def test_custom_csv_digit_labels_are_integers(tmp_path):
    write(tmp_path / "train.csv", "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(20)))
    write(tmp_path / "validation.csv", "text,label\nx,1\n")
    write(tmp_path / "test.csv", "text,label\ny,0\n")
    ds = load_dataset(f"csv:{tmp_path}")
    assert ds["train"].features["label"].names == ["0", "1"]
    assert ds["validation"][:]["label"] == [1] and len(ds["train"]) == 20


def test_custom_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        load_dataset(f"csv:{tmp_path / 'nope.csv'}")
    with pytest.raises(DatasetNotFoundError, match="train.csv"):
        load_dataset(f"csv:{tmp_path}")


GOOD = "text,label\nfine text,a\nmore text,b\n"


@pytest.mark.parametrize(
    "kind, files, bad_file, line, problem",
    [
        (
            "csv",
            {"train.csv": "sentence,label\nhello,a\n"},
            "train.csv",
            1,
            "missing column 'text'",
        ),
        (
            "csv",
            {"train.csv": 'text,label\nhello,a\n"a\nmulti-line",b\n   ,a\n'},
            "train.csv",
            5,
            "empty text",
        ),
        (
            "csv",
            {"train.csv": "text,label\nhello,a\nworld,\n"},
            "train.csv",
            3,
            "empty or invalid label",
        ),
        (
            "csv",
            {"train.csv": GOOD, "test.csv": "text,label\nx,a\ny,zzz\n"},
            "test.csv",
            3,
            "label 'zzz' does not occur in the training file",
        ),
        ("csv", {"train.csv": GOOD + "caf\xe9 au lait,a\n"}, "train.csv", 4, "not valid UTF-8"),
        (
            "csv",
            {"train.csv": GOOD + "one,two,three\n"},
            "train.csv",
            4,
            "cannot parse line: expected 2 fields, found 3",
        ),
        (
            "csv",
            {"train.csv": GOOD + '"unterminated,a\nnext,b\n'},
            "train.csv",
            4,
            "cannot parse line",
        ),
        (
            "tsv",
            {"train.tsv": "text\tlabel\nok\ta\nno tab here\n"},
            "train.tsv",
            3,
            "expected 2 fields, found 1",
        ),
        (
            "jsonl",
            {"train.jsonl": '{"text": "a", "label": "x"}\n\n{"text": "b", "label": \n'},
            "train.jsonl",
            3,
            "cannot parse line: invalid JSON",
        ),
        (
            "jsonl",
            {"train.jsonl": '{"text": "a", "label": "x"}\n{"label": "y"}\n'},
            "train.jsonl",
            2,
            "missing column 'text'",
        ),
        (
            "jsonl",
            {"train.jsonl": '{"text": "a", "label": "x"}\n{"text": "", "label": "y"}\n'},
            "train.jsonl",
            2,
            "empty text",
        ),
    ],
)
def test_bad_files(tmp_path, kind, files, bad_file, line, problem):
    for name, content in files.items():
        encoding = "latin-1" if "\xe9" in content else "utf-8"
        write(tmp_path / name, content, encoding=encoding)
    with pytest.raises(DataError) as err:
        load_dataset(f"{kind}:{tmp_path}")
    msg = str(err.value)
    assert f"{bad_file}:{line}:" in msg and problem in msg, msg


# ---- demo ------------------------------------------------------------------------------


def test_demo_needs_no_data_dir(monkeypatch):
    monkeypatch.delenv("LCL_DATA_DIR", raising=False)
    ds = load_dataset("demo")
    assert ds["train"].features["label"].names == [
        "afraid",
        "anxious",
        "apprehensive",
        "sad",
        "terrified",
    ]
    for split, n in [("train", 60), ("validation", 12), ("test", 12)]:
        assert set(Counter(ds[split][:]["label"]).values()) == {n}
    texts = [t for s in ds for t in ds[s][:]["text"]]
    assert len(set(texts)) == len(texts)


def test_demo_files_are_small_and_reproducible():
    import importlib.util

    import lcl.data.demo

    demo_dir = lcl.data.demo.DEMO_DIR
    spec = importlib.util.spec_from_file_location("make_demo", demo_dir / "make_demo.py")
    make_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_demo)
    for split, rows in make_demo.make().items():
        path = demo_dir / f"{split}.csv"
        assert path.stat().st_size < 100_000
        with open(path, encoding="utf-8", newline="") as f:
            assert [tuple(r) for r in csv.reader(f)][1:] == rows
