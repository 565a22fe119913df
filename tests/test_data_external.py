"""Any Hugging Face dataset: ``disk:PATH`` (save_to_disk), ``hf:NAME[:CONFIG]`` (load_dataset)."""

import os
import subprocess
import sys
import time
from collections import Counter

import datasets
import pytest

from lcl.cli import main
from lcl.data import DataError, DatasetNotFoundError, UnknownDatasetError, load_dataset

LABELS = ["joy", "anger", "fear"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def rows(n, labels=LABELS, start=0):
    return {
        "sentence": [f"text number {start + i}" for i in range(n)],
        "emotion": [labels[i % len(labels)] for i in range(n)],
    }


def class_label_split(n, start=0):
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "emotion": datasets.ClassLabel(names=LABELS)}
    )
    data = {
        "sentence": [f"text number {start + i}" for i in range(n)],
        "emotion": [i % 3 for i in range(n)],
    }
    return datasets.Dataset.from_dict(data, features=features)


def names_of(ds):
    return ds.features["label"].names


def test_disk_dataset_dict_with_class_label_keeps_names_and_order(tmp_path):
    dsd = datasets.DatasetDict(
        {
            "train": class_label_split(60),
            "validation": class_label_split(9, 100),
            "test": class_label_split(12, 200),
        }
    )
    dsd.save_to_disk(tmp_path / "ds")
    ds = load_dataset(f"disk:{tmp_path / 'ds'}", text_column="sentence", label_column="emotion")
    assert list(ds) == ["train", "validation", "test"]
    assert [len(ds[s]) for s in ds] == [60, 9, 12]
    assert names_of(ds["train"]) == LABELS  # not re-sorted
    assert ds["train"].column_names == ["text", "label"]
    assert ds["test"][0] == {"text": "text number 200", "label": 0}
    assert ds["test"][1]["label"] == 1 and names_of(ds["test"])[1] == "anger"


def test_disk_single_dataset_carves_stratified_seeded_splits(tmp_path):
    datasets.Dataset.from_dict(rows(100)).save_to_disk(tmp_path / "one")
    spec = f"disk:{tmp_path / 'one'}"
    ds = load_dataset(spec, text_column="sentence", label_column="emotion", seed=3)
    assert names_of(ds["train"]) == sorted(LABELS)  # strings -> ClassLabel sorted by name
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [80, 10, 10]
    for split in ("validation", "test"):  # stratified: every class in every carved split
        assert len(Counter(ds[split]["label"])) == 3
    texts = {s: set(ds[s]["text"]) for s in ds}
    assert not texts["train"] & texts["test"] and not texts["validation"] & texts["test"]
    again = load_dataset(spec, text_column="sentence", label_column="emotion", seed=3)
    other = load_dataset(spec, text_column="sentence", label_column="emotion", seed=4)
    assert again["test"]["text"] == ds["test"]["text"]
    assert other["test"]["text"] != ds["test"]["text"]


def test_disk_split_aliases_and_unlabelled_test_split(tmp_path):
    test = datasets.Dataset.from_dict(
        {"text": ["a", "b"], "label": [-1, -1]},
        features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
        ),
    )
    train = datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(40)], "label": [i % 2 for i in range(40)]},
        features=test.features,
    )
    dev = train.select(range(6))
    datasets.DatasetDict({"train": train, "dev": dev, "test": test}).save_to_disk(tmp_path / "d")
    ds = load_dataset(f"disk:{tmp_path / 'd'}")
    assert len(ds["validation"]) == 6  # "dev" is the validation split
    assert len(ds["test"]) == 4 and len(ds["train"]) == 36  # unlabelled test: carved from train


def test_disk_integer_labels_are_names_unless_0_to_c_minus_1(tmp_path):
    data = {"text": [f"t{i}" for i in range(30)], "label": [(i % 3) * 2 for i in range(30)]}
    datasets.Dataset.from_dict(data).save_to_disk(tmp_path / "ints")
    ds = load_dataset(f"disk:{tmp_path / 'ints'}")
    assert names_of(ds["train"]) == ["0", "2", "4"]  # not 0..C-1: the integers are names
    assert set(ds["train"]["label"]) == {0, 1, 2}
    data["label"] = [i % 3 for i in range(30)]
    datasets.Dataset.from_dict(data).save_to_disk(tmp_path / "indices")
    ds = load_dataset(f"disk:{tmp_path / 'indices'}")
    assert names_of(ds["train"]) == ["0", "1", "2"]  # exactly 0..C-1: class indices


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.rename_column("sentence", "body"), r"\[train\]: missing column 'sentence'"),
        (
            lambda d: d.map(
                lambda r, i: {"sentence": "  " if i == 4 else r["sentence"]}, with_indices=True
            ),
            r"\[train\]:5: empty text in column 'sentence'",
        ),
        (
            lambda d: d.map(
                lambda r, i: {"emotion": "" if i == 0 else r["emotion"]}, with_indices=True
            ),
            r"\[train\]:1: empty or invalid label",
        ),
    ],
)
def test_disk_bad_columns_and_rows_one_line(tmp_path, change, message):
    change(datasets.Dataset.from_dict(rows(30))).save_to_disk(tmp_path / "bad")
    with pytest.raises(DataError, match=message) as err:
        load_dataset(f"disk:{tmp_path / 'bad'}", text_column="sentence", label_column="emotion")
    assert "\n" not in str(err.value)


def test_disk_test_label_not_in_train(tmp_path):
    dsd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows(30)),
            "test": datasets.Dataset.from_dict(rows(3, ["joy", "zzz"])),
        }
    )
    dsd.save_to_disk(tmp_path / "d")
    with pytest.raises(DataError, match=r"\[test\]:2: label 'zzz' does not occur in the train"):
        load_dataset(f"disk:{tmp_path / 'd'}", text_column="sentence", label_column="emotion")


def test_disk_missing_or_not_a_dataset(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such directory"):
        load_dataset(f"disk:{tmp_path / 'nope'}")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("hi")
    with pytest.raises(DatasetNotFoundError, match="not a dataset written by save_to_disk"):
        load_dataset(f"disk:{tmp_path / 'junk'}")
    extra_only = datasets.DatasetDict({"extra": datasets.Dataset.from_dict(rows(3))})
    extra_only.save_to_disk(tmp_path / "e")
    with pytest.raises(DataError, match=r"no train split \(found: extra\)"):
        load_dataset(f"disk:{tmp_path / 'e'}")


def test_hf_maps_to_datasets_load_dataset(monkeypatch):
    calls = []
    dsd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows(40)),
            "validation": datasets.Dataset.from_dict(rows(6, start=50)),
            "test": datasets.Dataset.from_dict(rows(6, start=60)),
            "unsupervised": datasets.Dataset.from_dict(rows(5)),
        }
    )

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return dsd

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_dataset(
        "hf:someone/emotions:split-config", text_column="sentence", label_column="emotion"
    )
    assert calls == [(("someone/emotions", "split-config"), {})]
    assert list(ds) == ["train", "validation", "test"] and len(ds["test"]) == 6
    load_dataset("hf:someone/emotions", text_column="sentence", label_column="emotion")
    assert calls[-1] == (("someone/emotions", None), {})


def test_hf_unreachable_is_one_quick_line(tmp_path):
    # huggingface_hub and datasets read the offline switches when imported: a fresh process
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "cache"),
    }
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lcl",
            "train",
            "--dataset",
            "hf:nobody/no-such-dataset-xyz:cfg",
            "--output-dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith(
        "lcl: error: hf:nobody/no-such-dataset-xyz:cfg: cannot load it with "
        "datasets.load_dataset('nobody/no-such-dataset-xyz', 'cfg')"
    ), err
    assert "\n" not in err and "Traceback" not in err
    assert elapsed < 60  # no retries against an unreachable Hub (imports take a few seconds)


def test_cli_bad_dataset_one_line_exit_2(tmp_path, capsys):
    datasets.Dataset.from_dict(rows(30)).save_to_disk(tmp_path / "ds")
    capsys.readouterr()  # the save's progress bar
    code = main(
        [
            "train",
            "--dataset",
            f"disk:{tmp_path / 'ds'}",
            "--text-column",
            "body",
            "--output-dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lcl: error: disk:") and "missing column 'body'" in err
    assert "\n" not in err


def test_unknown_name_mentions_hf_and_disk():
    with pytest.raises(UnknownDatasetError, match=r"hf:NAME\[:CONFIG\], disk:PATH"):
        load_dataset("no-such-built-in")


def test_datasets_listing_mentions_hf_and_disk(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "hf:NAME[:CONFIG]" in out and "disk:PATH" in out and "csv:PATH" in out
