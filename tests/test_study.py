"""`lcl study`: the grid, resumability, sharding and the results files."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from helpers import write_synthetic_run

from lcl.cli import main
from lcl.study import load_study, parse_shard, run_study
from lcl.training_args import ConfigError, TrainConfig

STUDY = """
name: tiny
base: {epochs: 1, max_train_samples: 20, max_eval_samples: 20, views: dropout, weighting: self}
datasets: [demo]
seeds: [0, 1]
variants:
  ce: {loss: ce}
  lcl: {loss: lcl}
"""


@pytest.fixture()
def study_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(STUDY)
    return path


def test_grid_is_seed_major_with_one_folder_per_cell(study_file, tmp_path):
    study = load_study(study_file, output_dir=tmp_path / "out")
    assert [(c.variant, c.seed) for c in study.cells] == [
        ("ce", 0),
        ("lcl", 0),
        ("ce", 1),
        ("lcl", 1),
    ]
    assert study.cells[3].run_dir == tmp_path / "out" / "demo" / "lcl" / "seed1"
    assert study.cells[1].config.loss == "lcl" and study.cells[1].config.weighting == "self"
    assert study.cells[0].config.max_train_samples == 20


def test_run_writes_results_and_skips_finished_cells(study_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert main(["study", str(study_file), "--output-dir", str(out), "--shard", "0/2"]) == 0
    # the counts are over this shard's cells: shard 1's cells are not "finished"
    assert "4 cells; 2 selected (--shard 0/2): 0 finished, 2 to run" in capsys.readouterr().err
    rows = list(csv.DictReader((out / "results.csv").open()))
    # shard 0 of 2 ran cells 0 and 2: ce with seeds 0 and 1
    assert [(r["variant"], r["seed"]) for r in rows] == [("ce", "0"), ("ce", "1")]
    assert all(0 <= float(r["accuracy"]) <= 1 and r["train_steps"] == "2" for r in rows)
    assert all(r["device"] == "cpu" or r["device"].startswith("cuda (") for r in rows)
    assert all(r["precision"] in ("fp32", "bf16", "fp16") for r in rows)  # resolved, never auto
    # CE reads no LCL weights: the column stays blank rather than echo the base's `self`
    assert all(r["weighting"] == "" and r["detach_weights"] == "" for r in rows)
    table = (out / "results.md").read_text()
    assert "| demo |" in table and "| 2 |" in table  # ce over 2 seeds

    import lcl.trainer

    def must_not_train(config):
        raise AssertionError(f"finished cell trained again: {config.output_dir}")

    monkeypatch.setattr(lcl.trainer, "train", must_not_train)
    run_study(study_file, output_dir=out, shard="0/2")  # everything of shard 0 is finished
    assert "2 selected (--shard 0/2): 2 finished, 0 to run" in capsys.readouterr().err
    run_study(study_file, output_dir=out, shard="1/2", dry_run=True)  # lists shard 1's cells
    listing = capsys.readouterr().err
    assert "2 selected (--shard 1/2): 0 finished, 2 to run" in listing
    assert listing.count("todo") == 2 and "done" not in listing

    # a second study shares the finished ce cells through a variant's output_dir template
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        STUDY.replace(
            "ce: {loss: ce}",
            "ce: {loss: ce, output_dir: '" + str(out) + "/{dataset}/{variant}/seed{seed}'}",
        ).replace("  lcl: {loss: lcl}\n", "")
    )
    study = run_study(shared, output_dir=tmp_path / "other")
    assert study.cells[1].run_dir == out / "demo" / "ce" / "seed1"
    rows = list(csv.DictReader((tmp_path / "other" / "results.csv").open()))
    assert [(r["variant"], r["seed"]) for r in rows] == [("ce", "0"), ("ce", "1")]


def test_checkpoint_minutes_of_a_lane_override_the_study_file(study_file, tmp_path, capsys):
    from lcl.run_dir import IGNORED_FIELDS

    default = TrainConfig().checkpoint_minutes
    assert default != 10
    assert {c.config.checkpoint_minutes for c in load_study(study_file).cells} == {default}
    study = load_study(study_file, checkpoint_minutes=10)
    assert {c.config.checkpoint_minutes for c in study.cells} == {10.0}
    # the field is one a run may resume across: it is not in what a resume compares
    assert "checkpoint_minutes" in IGNORED_FIELDS
    with pytest.raises(ConfigError, match="--checkpoint-minutes must be positive"):
        load_study(study_file, checkpoint_minutes=0)
    out = tmp_path / "out"
    args = ["study", str(study_file), "--output-dir", str(out), "--dry-run"]
    assert main([*args, "--checkpoint-minutes", "-1"]) == 2
    assert "--checkpoint-minutes must be positive" in capsys.readouterr().err
    assert not out.exists()


def test_bad_study_files(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("datasets: [demo]\nvariants: {x: {loss: mse}}\n")
    with pytest.raises(ConfigError, match="variant 'x'.*--loss"):
        load_study(path)
    path.write_text("datasets: [demo]\nvariant: {}\n")
    with pytest.raises(ConfigError, match="unknown study key"):
        load_study(path)
    path.write_text("datasets: [demo]\nvariants: {x: {output_dir: 'runs/{model}'}}\n")
    with pytest.raises(ConfigError, match="variant 'x'.*output_dir"):
        load_study(path)
    for bad in ("2/2", "a/b", "1", "0/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
    with pytest.raises(ConfigError, match=r"count from 0 \(0/2, 1/2"):
        parse_shard("2/2")  # the slip of counting workers from 1
    assert parse_shard("1/2") == (1, 2)


def test_encoder_name_reads_a_gpu_bundle_folder(monkeypatch):
    from lcl import training_args
    from lcl.training_args import encoder_name, resolve_preset

    for model, name in [
        ("minilm", "minilm"),
        ("sentence-transformers/all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"),
        (".gpu/encoder-mpnet", "mpnet"),
        ("/srv/repo/.gpu/encoder-mpnet/", "mpnet"),
        (".gpu/encoder", "minilm"),  # the bundles' folder before the name was in it
        ("runs/encoder-mpnet", "runs/encoder-mpnet"),  # not a bundle: the path as it is
        (".gpu/encoder-", ".gpu/encoder-"),
    ]:
        assert encoder_name(model) == name, model
    # the recipe measured for each embedded encoder, also through its bundle copy
    assert (
        resolve_preset("auto", "mpnet") == resolve_preset("auto", ".gpu/encoder-mpnet") == "minilm"
    )
    assert resolve_preset("paper", "mpnet") == "paper"
    # a measured recipe of an encoder applies to its bundle copy too
    monkeypatch.setitem(training_args.MODEL_PRESETS, "mpnet", "paper")
    assert resolve_preset("auto", ".gpu/encoder-mpnet") == "paper"
    assert resolve_preset("auto", ".gpu/encoder") == "minilm"


MIXED = """
name: mixed
base: {model: minilm}
datasets: [demo, isear]
seeds: [0, 1]
variants:
  ce: {loss: ce}
  lcl: {loss: lcl}
"""


def _finish(study, models: dict[int, str]) -> None:
    """Synthetic finished runs in every cell, each with the encoder of its seed in config.yaml."""
    for cell in study.cells:
        write_synthetic_run(
            cell.run_dir,
            loss=cell.config.loss,
            seed=cell.seed,
            dataset=cell.dataset,
            config_extra={"model": models[cell.seed]},
        )


def test_results_name_each_cells_encoder_and_never_mix_them(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    out = tmp_path / "out"
    study = load_study(path, output_dir=out)
    # seed 0 finished on a CPU with MiniLM, seed 1 on a GPU with the mpnet bundle
    _finish(study, {0: "minilm", 1: ".gpu/encoder-mpnet"})
    run_study(path, output_dir=out, dry_run=True)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert list(rows[0])[:4] == ["dataset", "variant", "seed", "model"]
    assert [(r["seed"], r["model"]) for r in rows] == [("0", "minilm")] * 4 + [("1", "mpnet")] * 4
    md = (out / "results.md").read_text()
    assert "one table per encoder: minilm, mpnet." in md
    minilm, mpnet = md.split("## Encoder minilm")[1].split("## Encoder mpnet")
    for section in (minilm, mpnet):
        table = [
            [c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines()
            if line.startswith("| ")
        ][1:]
        # each dataset once, each variant with its one seed of this encoder (n = 1)
        assert [(row[0], row[3], row[6]) for row in table] == [
            ("demo", "1", "1"),
            ("isear", "1", "1"),
        ]
        # the paired test pairs cells of one encoder: 2 datasets x 1 seed
        assert "- lcl − ce: " in section and "over 2 dataset-seed pairs" in section


def test_results_of_one_encoder_keep_one_table(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    out = tmp_path / "out"
    study = load_study(path, output_dir=out)
    # the GPU bundles before the encoder's name was in the folder held MiniLM: the same encoder
    _finish(study, {0: "minilm", 1: ".gpu/encoder"})
    (study.cells[-1].run_dir / "config.yaml").unlink()  # no config.yaml: the study's model
    run_study(path, output_dir=out, dry_run=True)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["model"] for r in rows} == {"minilm"}
    md = (out / "results.md").read_text()
    assert "n = finished seeds; encoder: minilm." in md and "## Encoder" not in md
    assert "over 4 dataset-seed pairs" in md


def _one_pair(tmp_path):
    """A finished study of one dataset and seed: a ce cell and an lcl cell."""
    path = tmp_path / "pair.yaml"
    path.write_text(MIXED.replace("[demo, isear]", "[demo]").replace("[0, 1]", "[0]"))
    out = tmp_path / "out"
    study = load_study(path, output_dir=out)
    _finish(study, {0: "minilm"})
    return path, out, study


def _update_metrics(cell, **fields) -> None:
    metrics = json.loads((cell.run_dir / "metrics.json").read_text())
    metrics.update(fields)
    (cell.run_dir / "metrics.json").write_text(json.dumps(metrics))


def test_paired_lines_add_f1_entropy_and_mcnemar(tmp_path):
    path, out, study = _one_pair(tmp_path)
    # the two runs share 40 test texts: ce gets 10 right, lcl those 10 and 25 more
    for cell, right, entropy in zip(study.cells, (10, 35), (1.2, 0.9)):
        rows = [
            {"text": f"t{i}", "label": "a", "pred": "a" if i < right else "b"} for i in range(40)
        ]
        lines = "".join(json.dumps(r) + "\n" for r in rows)
        (cell.run_dir / "predictions.jsonl").write_text(lines)
        test = json.loads((cell.run_dir / "metrics.json").read_text())["test"]
        _update_metrics(cell, test={**test, "mean_entropy": entropy})
    run_study(path, output_dir=out, dry_run=True)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["mean_entropy"] for r in rows] == ["1.2", "0.9"]
    md = (out / "results.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- lcl − ce"))
    assert "test entropy -0.300 nats (lower in 1 of 1)" in line
    assert "McNemar p < 0.05 in 1 of 1 pairs for lcl, 0 for ce" in line
    assert "weighted F1" in line


def test_results_md_rounds_the_metrics_once(tmp_path):
    path, out, study = _one_pair(tmp_path)
    ce, lcl = study.cells
    for cell, accuracy in ((ce, 0.66254), (lcl, 0.66244)):
        test = json.loads((cell.run_dir / "metrics.json").read_text())["test"]
        _update_metrics(cell, test={**test, "accuracy": accuracy})
    run_study(path, output_dir=out, dry_run=True)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["accuracy"] for r in rows] == ["0.6625", "0.6624"]
    # the table averages the runs' own numbers: 66.254 % shows as 66.3, not as 0.6625's 66.2
    table = next(x for x in (out / "results.md").read_text().splitlines() if x.startswith("| demo"))
    assert [c.strip() for c in table.strip("|").split("|")][1] == "66.3"


def test_seconds_per_step_of_a_resumed_run_count_only_its_timed_steps(tmp_path):
    path, out, study = _one_pair(tmp_path)
    fresh, resumed = study.cells
    steps = max(h["step"] for h in json.loads((fresh.run_dir / "history.json").read_text()))
    # the resumed run's last process trained (and timed) only the last quarter of its steps
    timed = {"train_steps_timed": steps // 4, "resumed_from_step": steps - steps // 4}
    for cell, extra in ((fresh, {}), (resumed, timed)):
        _update_metrics(cell, train_runtime_seconds=100.0, **extra)
    run_study(path, output_dir=out, dry_run=True)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [float(r["seconds_per_step"]) for r in rows] == [
        round(100.0 / steps, 3),
        round(100.0 / (steps // 4), 3),
    ]
    assert [int(r["train_steps"]) for r in rows] == [steps, steps]


def test_only_runs_the_named_datasets_cells(tmp_path, monkeypatch):
    import lcl.trainer

    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    ran = []
    monkeypatch.setattr(lcl.trainer, "train", lambda config: ran.append(config.dataset))
    run_study(path, output_dir=tmp_path / "out", only=["isear"])
    assert ran == ["isear"] * 4  # 2 variants x 2 seeds, none of demo's
    with pytest.raises(ConfigError, match="--only sst5: not a dataset of study mixed"):
        run_study(path, output_dir=tmp_path / "out", only=["sst5", "isear"])


def test_variant_and_seed_pick_cells_across_datasets(tmp_path, monkeypatch, capsys):
    import lcl.trainer

    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    ran = []
    monkeypatch.setattr(
        lcl.trainer, "train", lambda config: ran.append((config.dataset, config.loss, config.seed))
    )
    assert (
        main(
            [
                "study",
                str(path),
                "--output-dir",
                str(tmp_path / "out"),
                "--variant",
                "lcl",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert ran == [("demo", "lcl", 1), ("isear", "lcl", 1)]  # grid order, both datasets
    assert (
        "8 cells; 2 selected (--variant, --seed): 0 finished, 2 to run" in capsys.readouterr().err
    )
    ran.clear()
    run_study(path, output_dir=tmp_path / "out", only=["isear"], variants=["ce"], shard="1/2")
    assert ran == [("isear", "ce", 1)]  # isear's ce cells are seeds 0 and 1; shard 1 takes the 2nd
    with pytest.raises(
        ConfigError, match=r"--variant scl: not a variant of study mixed \(ce, lcl\)"
    ):
        run_study(path, output_dir=tmp_path / "out", variants=["scl"])
    with pytest.raises(ConfigError, match=r"--seed 7: not a seed of study mixed \(0, 1\)"):
        run_study(path, output_dir=tmp_path / "out", seeds=[0, 7])
    assert main(["study", str(path), "--seed", "7"]) == 2  # a message and exit code 2, no traceback
    assert "--seed 7: not a seed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "path",
    sorted(Path(__file__).resolve().parents[1].joinpath("studies").glob("*.yaml")),
    ids=lambda path: path.name,
)
def test_every_committed_study_file_loads(path, tmp_path):
    """A typo in a study file (a dataset, a variant's field) fails here, not hours into a lane."""
    from lcl.data import DATASETS
    from lcl.data.empathetic_dialogues import subset_classes

    study = load_study(path, output_dir=tmp_path)
    assert study.cells
    for name in {c.dataset for c in study.cells}:  # the data is not read: names only
        base, _, subset = name.partition(":")
        assert name in DATASETS or base in DATASETS, f"{path.name}: unknown dataset {name}"
        if name not in DATASETS and subset:
            assert base == "empathetic_dialogues" and subset_classes(subset)


def test_dry_run_shows_how_far_a_partial_cell_got(study_file, tmp_path, capsys):
    from lcl.run_dir import CHECKPOINT_MARKER

    study = load_study(study_file, output_dir=tmp_path / "out")
    cell = study.cells[1]
    cell.run_dir.mkdir(parents=True)
    cell.run.write_config(cell.config)
    checkpoint = cell.run.checkpoint_dir / "checkpoint-30"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(
        json.dumps({"global_step": 30, "max_steps": 80, "epoch": 0.75})
    )
    (checkpoint / "model.safetensors").write_bytes(b"\0" * 2048)
    (checkpoint / CHECKPOINT_MARKER).write_text("{}")
    assert cell.run.checkpoint_progress() == (30, 80, 0.75)
    run_study(study_file, output_dir=tmp_path / "out", dry_run=True)
    listing = capsys.readouterr().err
    assert f"partial  {cell.run_dir}  (step 30 of 80, epoch 0.75; checkpoints: " in listing
    (checkpoint / "trainer_state.json").write_text("{")  # unreadable: the size alone
    assert cell.run.checkpoint_progress() is None
    run_study(study_file, output_dir=tmp_path / "out", dry_run=True)
    listing = capsys.readouterr().err
    assert f"partial  {cell.run_dir}  (checkpoints: " in listing and "refused" not in listing


def test_dry_run_names_a_partial_cell_that_would_be_refused(study_file, tmp_path, capsys):
    """A cell begun elsewhere (a CPU lane's, listed on a GPU machine) under another
    configuration: its worker would stop at it, so the listing says so first."""
    study = load_study(study_file, output_dir=tmp_path / "out")
    cell = study.cells[0]
    cell.run_dir.mkdir(parents=True)
    cell.run.write_config(dataclasses.replace(cell.config, precision="fp32", lam=0.25))
    run_study(study_file, output_dir=tmp_path / "out", dry_run=True)
    line = next(x for x in capsys.readouterr().err.splitlines() if str(cell.run_dir) in x)
    assert "refused: holds an unfinished run of another configuration" in line
    assert "lam (0.25 -> 0.5)" in line and "precision" in line


def test_results_say_how_the_trained_cells_were_computed_when_they_differ():
    from lcl.study import compute_lines

    def row(device, precision, best_epoch=2):
        return {"device": device, "precision": precision, "best_epoch": best_epoch}

    alike = [row("cpu", "fp32"), row("cpu", "fp32"), row("cpu", "", best_epoch=None)]
    assert compute_lines(alike) == []  # one kind of trained cell (the probe is not trained)
    mixed = alike + [row("cuda (NVIDIA H200)", "fp32"), row("cpu", "bf16"), row("", "")]
    line = compute_lines(mixed)[-1]
    assert line.startswith("Trained cells by device and precision: cpu, fp32: 2;")
    assert "cuda (NVIDIA H200), fp32: 1" in line and "cpu, bf16: 1" in line
    assert "device not recorded, precision not recorded: 1" in line
