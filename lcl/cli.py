"""``lcl`` command line: a thin layer over the Python API (train, evaluate, predict, report, study,
export).

Errors a user can cause (bad flag, unknown dataset, missing file, unknown model) print one line
on stderr and exit with status 2; nothing is left half-written. Those are exactly the
:class:`~lcl.errors.LCLError` subclasses and the ``OSError`` of a file the user named (not
found, not permitted, a folder where a file was expected); anything else is a bug and shows its
traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import typing
from pathlib import Path

from lcl.errors import LCLError, UsageError
from lcl.training_args import TrainConfig

EXIT_USAGE = 2
# OSErrors about a path the user gave (they carry its file name): one line, like an LCLError
USER_PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per ``TrainConfig`` field; unset flags stay absent so YAML values survive."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = TrainConfig.__dataclass_fields__
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        hint = hints[f.name]
        default = defaults[f.name].default
        help_text = f.metadata.get("help", "")
        if "default" not in help_text:
            help_text += f" (default: {default})"
        if getattr(default, "__class__", None).__name__ == "_FromPreset":
            from lcl.training_args import PRESETS

            shown = ", ".join(f"{k} {PRESETS[k][f.name]}" for k in PRESETS)
            help_text = help_text.replace(
                "(default: from --preset)", f"(default by preset: {shown})"
            )
        kwargs: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        args = typing.get_args(hint)
        if hint is bool:
            parser.add_argument(_flag(f.name), action="store_true", **kwargs)
            continue
        if typing.get_origin(hint) is typing.Literal:
            kwargs["choices"] = list(args)
        else:
            base = next((a for a in args if a is not type(None)), hint)
            # an optional number also takes "none" (TrainConfig turns the text into its type)
            kwargs["type"] = base if base in (int, float) and type(None) not in args else str
            kwargs["metavar"] = {int: "N", float: "X"}.get(base, "STR")
        parser.add_argument(_flag(f.name), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lcl",
        description="Fine-grained text classification with Label-aware Contrastive Loss "
        "(Suresh & Ong, EMNLP 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="fine-tune a classifier with CE, SupCon or LCL",
        description="Fine-tune a classifier; flags override --config values.",
    )
    p.add_argument("--config", metavar="YAML", help="YAML file of options (flags override it)")
    _add_config_flags(p)

    p = sub.add_parser(
        "probe",
        help="the frozen-encoder baseline: logistic regression on "
        "pooled sentence features (the bar fine-tuning must clear)",
        description="Same data and model flags as `lcl train`; --loss is probe.",
    )
    p.add_argument("--config", metavar="YAML", help="YAML file of options (flags override it)")
    _add_config_flags(p, skip=("loss",))

    p = sub.add_parser("evaluate", help="metrics of a saved model on a dataset split")
    p.add_argument(
        "--model",
        required=True,
        help="a run's model/ directory, or a folder written by lcl export --onnx",
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="dataset name, csv:/tsv:/jsonl:PATH, hf:NAME[:CONFIG] or disk:PATH",
    )
    p.add_argument("--data-dir", help="folder of the original dataset files")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument(
        "--text-column", default="text", help="text column of your own files or hf:/disk: datasets"
    )
    p.add_argument(
        "--label-column",
        default="label",
        help="label column of your own files or hf:/disk: datasets",
    )
    p.add_argument(
        "--label-separator",
        help="split each label at this text (e.g. ';'): several classes per text "
        "(multi-label; as for lcl train)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="texts per batch (default: 64; 16 for an ONNX folder, faster on a CPU)",
    )
    p.add_argument(
        "--output",
        help="write the metrics here as JSON (default: eval_<split>.json "
        "beside the model directory; eval_<split>_onnx.json for "
        "an ONNX folder named onnx)",
    )

    p = sub.add_parser(
        "predict",
        help="label and probability for each text (a multi-label model: every label above "
        "its threshold)",
    )
    p.add_argument(
        "--model",
        required=True,
        help="a run's model/ directory, or a folder written by lcl export --onnx",
    )
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--input", help="file of texts, one per line (or - for stdin)")
    p.add_argument(
        "--batch-size",
        type=int,
        help="texts per batch (default: 64; 16 for an ONNX folder, faster on a CPU)",
    )

    p = sub.add_parser("report", help="HTML report of one run or several side by side")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="output folders of lcl train")
    p.add_argument("--output-dir", help="where report.html and the PNGs go")

    p = sub.add_parser("study", help="run a resumable grid of datasets x objectives x seeds")
    p.add_argument("study", help="study YAML file (see studies/)")
    p.add_argument("--output-dir", help="folder of the study's runs (default: from the YAML)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="run nothing: list the cells and their "
        "state, and rewrite the results files from the finished ones",
    )
    p.add_argument(
        "--only",
        metavar="DATASET",
        action="append",
        help="run only this dataset's cells (repeatable; results still cover the whole study)",
    )
    p.add_argument(
        "--variant",
        metavar="NAME",
        action="append",
        help="run only this variant's cells (repeatable; combines with --only and --seed)",
    )
    p.add_argument(
        "--seed",
        type=int,
        action="append",
        help="run only this seed's cells (repeatable)",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run only every N-th cell from the I-th (several workers on one machine)",
    )
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        metavar="M",
        help="save a resume checkpoint every M minutes of each cell's training, over the "
        "study file's value (lanes that may be killed; no result changes)",
    )

    p = sub.add_parser(
        "export",
        help="export a run's classifier to ONNX for fast CPU inference",
        description="Write RUN_DIR/onnx/ (or onnx-int8/): model.onnx, tokenizer, "
        "config.json; `lcl predict --model` takes that folder.",
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run folder (with model/) or a model folder"
    )
    p.add_argument("--onnx", action="store_true", help="export to ONNX (the one format so far)")
    p.add_argument(
        "--quantize",
        choices=["int8"],
        help="dynamic int8 quantization of the "
        "encoder's weights (faster, smaller, slightly different probabilities)",
    )
    p.add_argument("--output", help="folder to write (default: RUN_DIR/onnx, or onnx-int8)")

    p = sub.add_parser("export-encoder", help="save a copy of an encoder, e.g. in float16")
    p.add_argument("model", help="`minilm`, a local path or a Hugging Face name")
    p.add_argument("output", help="folder to write (a Hugging Face model directory)")
    p.add_argument(
        "--dtype",
        choices=["float16", "bfloat16", "float32"],
        default="float16",
        help="weight precision of the copy (default: float16, half the size)",
    )

    p = sub.add_parser("card", help="(re)write a run's model card, model/README.md")
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of a finished run")
    p.add_argument("--output", help="write the card here instead (e.g. for a run without model/)")

    p = sub.add_parser("push", help="upload a run's model/ (with its card) to the Hugging Face Hub")
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of a finished run")
    p.add_argument("repo_id", metavar="REPO_ID", help="model repository, NAME or OWNER/NAME")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the saved login)")

    p = sub.add_parser(
        "clean",
        help="delete a run's checkpoints (a killed run: all it left)",
        description="Delete the checkpoints of RUN_DIR; of an unfinished (killed) "
        "run, everything it wrote. Refused while a live run owns the folder.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="an output folder of lcl train")

    p = sub.add_parser("compare", help="paired test of two runs on the same test texts")
    p.add_argument("run_a", metavar="RUN_A", help="a finished run (the reference)")
    p.add_argument("run_b", metavar="RUN_B", help="a finished run on the same test set")
    p.add_argument(
        "--per-class",
        action="store_true",
        help="also pair the runs class by class: test F1 of each (most missed by RUN_A on "
        "validation first), a sign test over classes, and whether RUN_B gains most where "
        "RUN_A errs most (Spearman)",
    )

    sub.add_parser("datasets", help="list the built-in datasets and the other kinds of --dataset")
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from lcl.trainer import train

    given = {k: v for k, v in vars(args).items() if k in TrainConfig.field_names()}
    if args.command == "probe":
        given["loss"] = "probe"
    config = (
        TrainConfig.from_yaml(args.config, **given) if args.config else TrainConfig.from_dict(given)
    )
    result = train(config)
    if result.metrics:
        _print_summary(result.metrics, result.output_dir)
    return 0


# the metrics a finished run prints, headline first: one class per text, several
SUMMARY_COLUMNS = {
    False: (("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("weighted_f1", "weighted F1")),
    True: (
        ("macro_f1", "macro F1"),
        ("micro_f1", "micro F1"),
        ("subset_accuracy", "subset accuracy"),
        ("hamming_loss", "Hamming loss"),
    ),
}


def _print_summary(metrics: dict, output_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from lcl.metrics import still_improving

    table = Table(
        title=f"{metrics['dataset']} · {metrics['loss']} · seed {metrics['seed']} · "
        f"best epoch {metrics['best_epoch']}"
    )
    columns = SUMMARY_COLUMNS[bool(metrics.get("multilabel"))]
    table.add_column("split")
    for _, title in columns:
        table.add_column(title, justify="right")
    for split in ("validation", "test"):
        m = metrics[split]
        table.add_row(split, *(f"{m[key]:.4f}" for key, _ in columns))
    console = Console()
    console.print(table)
    if still_improving(metrics):
        epochs = metrics["epochs"]
        console.print(
            f"[yellow]validation {metrics.get('headline_metric', 'accuracy')} was highest at the "
            f"last evaluation (epoch {metrics['best_epoch']} of {epochs:g}): the epoch cap, not "
            f"early stopping, ended training; more epochs (--epochs {2 * epochs:g}) may give a "
            "better model[/]"
        )
    console.print(f"run written to {output_dir} in {metrics['runtime_seconds']:.0f} s")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from lcl.inference import evaluate
    from lcl.io import atomic_write_json

    metrics = evaluate(
        args.model,
        args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        text_column=args.text_column,
        label_column=args.label_column,
        label_separator=args.label_separator,
    )
    from lcl.export import onnx_file

    model = Path(args.model).resolve()
    name = f"eval_{args.split}_{model.name}.json" if onnx_file(model) else f"eval_{args.split}.json"
    output = Path(args.output) if args.output else model.parent / name
    atomic_write_json(output, metrics)
    multilabel = metrics.get("headline_metric") == "macro_f1"
    keys = [key for key, _ in SUMMARY_COLUMNS[multilabel]]
    short = {k: metrics[k] for k in ("dataset", "split", *keys, "num_examples")}
    print(json.dumps(short, indent=2))
    print(f"metrics written to {output}", file=sys.stderr)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from lcl.export import onnx_file

    if onnx_file(args.model):  # an exported folder: ONNX Runtime, torch is not imported
        from lcl.export import predict
    else:
        from lcl.inference import predict

    texts = list(args.texts)
    if args.input:
        handle = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
        with handle:
            texts += [line.rstrip("\n") for line in handle if line.strip()]
    if not texts:
        raise UsageError("no texts to classify: give them as arguments or with --input FILE")
    for row in predict(args.model, texts, batch_size=args.batch_size):
        # one class and its probability; a multi-label model: every class above its threshold
        keys = ("text", "labels", "scores") if "labels" in row else ("text", "label", "score")
        print(json.dumps({k: row[k] for k in keys}, ensure_ascii=False))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from lcl.report import build_report

    path = build_report(args.run_dirs, args.output_dir)
    print(f"report written to {path}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from lcl.study import run_study

    run_study(
        args.study,
        output_dir=args.output_dir,
        dry_run=args.dry_run,
        shard=args.shard,
        only=args.only,
        variants=args.variant,
        seeds=args.seed,
        checkpoint_minutes=args.checkpoint_minutes,
    )
    return 0


def _cmd_export_encoder(args: argparse.Namespace) -> int:
    from lcl.modeling import export_encoder

    path = export_encoder(args.model, args.output, dtype=args.dtype)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    print(f"encoder written to {path} ({size:.1f} MiB)")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from lcl.model_card import write_model_card

    print(f"model card written to {write_model_card(args.run_dir, output=args.output)}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from lcl.hub import push

    url = push(args.run_dir, args.repo_id, private=args.private, token=args.token)
    print(f"uploaded {Path(args.run_dir) / 'model'} to {args.repo_id}: {url}")
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from lcl.run_dir import clean, format_bytes

    freed = clean(args.run_dir)
    print(f"cleaned {args.run_dir}: {format_bytes(freed)} freed")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from lcl.export import META_FILE, export_onnx

    if not args.onnx:
        raise UsageError(
            "say which format: --onnx (the only one so far); for a PyTorch copy "
            "of an encoder, see lcl export-encoder"
        )
    path = export_onnx(args.run_dir, args.output, quantize=args.quantize)
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    size = sum(f.stat().st_size for f in path.glob("*.onnx")) / 2**20
    print(
        f"ONNX model written to {path} ({size:.1f} MiB, {args.quantize or 'float32'}); "
        f"largest logit difference to PyTorch on {meta['probe_texts']} texts: "
        f"{meta['max_abs_logit_diff']:.2g}"
    )
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from lcl.compare import compare_classes, compare_runs, run_correct, standard_error

    result = compare_runs(args.run_a, args.run_b)
    for name in (args.run_a, args.run_b):
        _, correct, metrics = run_correct(name)
        acc = sum(correct) / len(correct)
        # a multi-label text is right when its whole label set is (lcl.compare.run_correct)
        what = "subset accuracy" if metrics.get("multilabel") else "accuracy"
        print(
            f"{name}: test {what} {100 * acc:.1f} (± {100 * standard_error(acc, len(correct)):.1f})"
        )
    print(
        f"only {args.run_a} right: {result.only_a} texts; only {args.run_b} right: "
        f"{result.only_b}; exact McNemar p = {result.p:.3g} over {result.n} test texts"
    )
    if args.per_class:
        _print_class_comparison(compare_classes(args.run_a, args.run_b))
    return 0


def _print_class_comparison(result) -> None:
    width = max(len("class"), *(len(c.name) for c in result.classes))
    print(
        f"\n{'class':{width}s}  texts  A misses (val)  F1 A   F1 B   B - A  "
        "A's commonest mistake (val)"
    )
    for c in result.classes:
        missed = "-" if c.missed_a is None else f"{100 * c.missed_a:.1f}%"
        print(
            f"{c.name:{width}s}  {c.support:5d}  {missed:>14s}  {100 * c.f1_a:5.1f}  "
            f"{100 * c.f1_b:5.1f}  {100 * (c.f1_b - c.f1_a):+5.1f}  {c.confused_with_a or '-'}"
        )
    s = result.f1
    line = (
        f"F1 of B higher on {s.wins} classes, lower on {s.losses}, level on {s.ties} "
        f"(mean {100 * s.mean_difference:+.1f} points, sign test p = {s.p:.3g}); "
    )
    if math.isnan(result.rho):
        line += "no rank correlation with A's validation miss rate (not recorded, or constant)"
    else:
        line += (
            f"Spearman rho between A's validation miss rate and B - A: {result.rho:+.2f} "
            f"(p = {result.rho_p:.3g})"
        )
    print(line)


def _cmd_datasets(args: argparse.Namespace) -> int:
    from lcl.data import DATASETS

    for name, info in DATASETS.items():
        print(f"{name:22s} {info.num_classes:3d} classes  {info.description}")
    for name, what in (
        (
            "csv:PATH",
            "your CSV file, or a folder of train/validation/test files (also "
            "tsv:PATH, jsonl:PATH); --text-column, --label-column; multi-label: a JSON "
            "list as label, or --label-separator",
        ),
        (
            "hf:NAME[:CONFIG]",
            "any Hugging Face dataset through datasets.load_dataset "
            "(Hub or cache); --text-column, --label-column",
        ),
        ("disk:PATH", "a dataset saved with save_to_disk (DatasetDict or one Dataset)"),
    ):
        print(f"{name:22s} {'any':>3s} classes  {what}")
    return 0


COMMANDS = {
    "train": _cmd_train,
    "probe": _cmd_train,
    "evaluate": _cmd_evaluate,
    "predict": _cmd_predict,
    "report": _cmd_report,
    "study": _cmd_study,
    "datasets": _cmd_datasets,
    "export": _cmd_export,
    "export-encoder": _cmd_export_encoder,
    "card": _cmd_card,
    "push": _cmd_push,
    "clean": _cmd_clean,
    "compare": _cmd_compare,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("lcl: interrupted", file=sys.stderr)
        return 130
    except (LCLError, *USER_PATH_ERRORS) as err:
        if not isinstance(err, LCLError) and err.filename is None:
            raise  # an OSError about no file of the user's: a bug, show it
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"lcl: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        _close_process_group()


def _close_process_group() -> None:
    """Under torchrun the Trainer opened a process group; close it before exit (NCCL warns)."""
    if "torch" not in sys.modules:  # e.g. predict from an ONNX folder: no torch, no group
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
