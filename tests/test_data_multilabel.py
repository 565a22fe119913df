"""Multi-label data: goemotions:multilabel, your files with label lists or a separator, the
seeded carve that keeps every class in train."""

from __future__ import annotations

import json
from collections import Counter

import datasets
import numpy as np
import pytest

from lcl.data import (
    DataError,
    DatasetNotFoundError,
    is_multilabel,
    label_names,
    load_dataset,
    multi_hot,
)
from lcl.data.registry import carve, iterative_split


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_label_lists_make_a_multilabel_dataset(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    write_jsonl(
        folder / "train.jsonl",
        [
            {"text": "so happy and grateful", "label": ["joy", "gratitude"]},
            {"text": "what a loss", "label": ["sadness"]},
            {"text": "thanks", "label": "gratitude"},  # a scalar is a list of one
            {"text": "yay yay", "label": ["joy", "joy"]},  # named twice: once
        ],
    )
    write_jsonl(folder / "validation.jsonl", [{"text": "sad", "label": ["sadness", "joy"]}])
    write_jsonl(folder / "test.jsonl", [{"text": "thank you", "label": ["gratitude"]}])
    ds = load_dataset(f"jsonl:{folder}")
    assert is_multilabel(ds["train"].features)
    assert label_names(ds["train"].features) == ["gratitude", "joy", "sadness"]
    assert ds["train"]["label"] == [[0, 1], [2], [0], [1]]
    assert ds["validation"]["label"] == [[1, 2]]
    hot = multi_hot(ds["train"]["label"], 3)
    assert hot.tolist() == [[1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]


def test_single_label_files_stay_single_label(tmp_path):
    path = write_jsonl(
        tmp_path / "one.jsonl",
        [{"text": f"text {i}", "label": ["a", "b"][i % 2]} for i in range(40)],
    )
    ds = load_dataset(f"jsonl:{path}")
    assert not is_multilabel(ds["train"].features)
    assert isinstance(ds["train"].features["label"], datasets.ClassLabel)
    assert label_names(ds["train"].features) == ["a", "b"]


def test_csv_with_a_label_separator(tmp_path):
    path = tmp_path / "data.csv"
    rows = ["text,label"] + [f"text {i},{['x;y', 'y', 'z; x'][i % 3]}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ds = load_dataset(f"csv:{path}", label_separator=";")
    assert is_multilabel(ds["test"].features)
    assert label_names(ds["train"].features) == ["x", "y", "z"]
    everything = [ls for split in ds.values() for ls in split["label"]]
    assert len(everything) == 60
    assert Counter(tuple(ls) for ls in everything) == {(0, 1): 20, (1,): 20, (0, 2): 20}
    # without the separator the same file is single-label with classes "x;y", "y", "z; x"
    plain = load_dataset(f"csv:{path}")
    assert label_names(plain["train"].features) == ["x;y", "y", "z; x"]


@pytest.mark.parametrize(
    "kind, content, line",
    [
        ("jsonl", '{"text": "a", "label": ["x"]}\n{"text": "b", "label": []}\n', 2),
        ("jsonl", '{"text": "a", "label": ["x", null]}\n', 1),
        ("csv", "text,label\na,x;y\nb,;\n", 3),
        ("csv", "text,label\na,x;y\nb,\n", 3),
    ],
)
def test_a_text_without_a_label_is_an_error_with_file_and_line(tmp_path, kind, content, line):
    path = tmp_path / f"bad.{kind}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"bad\.{kind}:{line}: .*label"):
        load_dataset(f"{kind}:{path}", label_separator=";" if kind == "csv" else None)


def test_validation_label_absent_from_train_is_an_error(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"text": "a", "label": ["x", "y"]}])
    write_jsonl(folder / "validation.jsonl", [{"text": "b", "label": ["x", "w"]}])
    with pytest.raises(DataError, match=r"validation\.jsonl:1: label 'w' does not occur"):
        load_dataset(f"jsonl:{folder}")


def _rows(n_common: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_common):
        labels = sorted(set(rng.choice(["a", "b", "c", "d"], size=rng.integers(1, 3)).tolist()))
        rows.append({"text": f"t{i}", "label": labels})
    rows.append({"text": "rare once", "label": ["a", "once"]})
    rows += [{"text": f"rare twice {i}", "label": ["twice"]} for i in range(2)]
    return rows


def test_carving_one_file_keeps_every_class_in_train(tmp_path):
    path = write_jsonl(tmp_path / "all.jsonl", _rows())
    for seed in range(5):
        ds = load_dataset(f"jsonl:{path}", seed=seed)
        names = label_names(ds["train"].features)
        in_train = {names[i] for ls in ds["train"]["label"] for i in ls}
        assert in_train == set(names) == {"a", "b", "c", "d", "once", "twice"}
        sizes = {s: len(ds[s]) for s in ds}
        assert sum(sizes.values()) == 303
        assert abs(sizes["test"] - 30) <= 2 and abs(sizes["validation"] - 30) <= 2
    again = load_dataset(f"jsonl:{path}", seed=4)  # seeded: the same split again
    assert again["test"]["text"] == ds["test"]["text"]
    assert load_dataset(f"jsonl:{path}", seed=1)["test"]["text"] != ds["test"]["text"]


def test_iterative_split_keeps_each_class_share():
    rng = np.random.default_rng(3)
    # 2,000 examples; class 5 is rare (40 examples), class 0 frequent
    labels = []
    for _ in range(2000):
        row = {int(c) for c in rng.choice(5, size=rng.integers(1, 4), p=[0.4, 0.2, 0.2, 0.1, 0.1])}
        if rng.random() < 0.02:
            row.add(5)
        labels.append(sorted(row))
    keep, out = iterative_split(labels, 400, seed=0)
    assert sorted(keep + out) == list(range(2000)) and len(out) == 400
    hot = multi_hot(labels, 6)
    share = hot[out].sum(0) / hot.sum(0)
    assert np.all(np.abs(share - 0.2) < 0.03), share  # every class about 20 % split off
    # a plain random split is much less even on the rare class over seeds; this one is exact
    # within one example
    assert abs(hot[out, 5].sum() - 0.2 * hot[:, 5].sum()) <= 1


def test_carve_keeps_single_label_behaviour():
    texts = [f"t{i}" for i in range(40)]
    labels = [i % 2 for i in range(40)]
    (kt, kl), (ot, ol) = carve(texts, labels, 0.25, 0, "test")
    assert len(ot) == 10 and Counter(ol) == {0: 5, 1: 5} and isinstance(kl[0], int)


def test_disk_dataset_with_sequence_classlabel(tmp_path):
    names = ["anger", "joy", "neutral"]
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "labels": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    part = {"text": ["grr", "yay", "ok", "grr yay"], "labels": [[0], [1], [2], [0, 1]]}
    dsd = datasets.DatasetDict(
        {s: datasets.Dataset.from_dict(part, features=features) for s in ("train", "test")}
        | {"validation": datasets.Dataset.from_dict(part, features=features)}
    )
    dsd.save_to_disk(str(tmp_path / "saved"))
    ds = load_dataset(f"disk:{tmp_path / 'saved'}", label_column="labels")
    assert is_multilabel(ds["train"].features)
    assert label_names(ds["train"].features) == names  # the ClassLabel's order is kept
    assert ds["train"]["label"] == [[0], [1], [2], [0, 1]]


def test_goemotions_multilabel_as_released(data_dir):
    if not (data_dir / "goemotions" / "train.tsv").is_file():
        pytest.skip(f"GoEmotions release files not found in {data_dir / 'goemotions'}")
    ds = load_dataset("goemotions:multilabel", data_dir=data_dir)
    assert {s: len(ds[s]) for s in ds} == {"train": 43410, "validation": 5426, "test": 5427}
    names = label_names(ds["train"].features)
    assert len(names) == 28 and names[-1] == "neutral" and names[0] == "admiration"
    counts = Counter(len(ls) for ls in ds["train"]["label"])
    assert min(counts) == 1 and max(counts) > 1  # several labels on some comments
    # the single-label setting is unchanged beside it
    single = load_dataset("goemotions", data_dir=data_dir)
    assert not is_multilabel(single["train"].features) and len(single["train"]) == 23485


def test_goemotions_multilabel_not_found_names_its_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"goemotions:multilabel.*train\.tsv"):
        load_dataset("goemotions:multilabel", tmp_path)
