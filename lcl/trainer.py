"""Training: dataset -> views -> Hugging Face ``Trainer`` -> best epoch -> outputs on disk.

``train(config)`` is the whole pipeline behind ``lcl train``. The ``Trainer`` brings progress
bars, TensorBoard logs, checkpoints, resume after a kill and ``torchrun`` multi-process launch;
what is ours is the collator (texts with their views), the objective (``LCLModel``) and the
outputs a run leaves in ``output_dir`` (its files, lock, resume and overwrite rules are
:mod:`lcl.run_dir`'s). Checkpoints count only once complete (:meth:`LCLTrainer._save_checkpoint`
marks them after every file is on disk), so a kill while saving never breaks a resume.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from lcl.compare import texts_fingerprint
from lcl.data import add_views, is_multilabel, load_dataset, multi_hot
from lcl.data import label_names as split_label_names
from lcl.inference import run_classifier
from lcl.metrics import (
    choose_thresholds,
    classification_metrics,
    headline_metric,
    multilabel_metrics,
    trainer_metrics,
)
from lcl.modeling import LCLModel, load_tokenizer, save_classifier
from lcl.objectives import TRAINED_LOSSES
from lcl.run_dir import (
    RUN_FILES,  # noqa: F401  (kept importable from here)
    CheckpointWriteError,
    RunDir,
    RunExistsError,  # noqa: F401
    RunStart,
    format_bytes,
    start_run,
)
from lcl.training_args import ConfigError, TrainConfig

logger = logging.getLogger(__name__)

# errors of writing a file: a full disk shows as OSError, or as SafetensorError from safetensors
try:
    from safetensors import SafetensorError as _SafetensorError
except ImportError:  # pragma: no cover
    _SafetensorError = OSError
WRITE_ERRORS = (OSError, _SafetensorError)


class PairedViewCollator:
    """Tokenises a batch, padded to its longest text.

    Training rows carry a ``view``: the batch becomes ``[texts..., views...]`` with labels
    repeated, so text ``i`` and its view ``i + B`` share label ``labels[i]``. Rows without a
    view (evaluation) are tokenised as they are. With ``num_labels`` (multi-label data, each
    label a list of class indices) the labels become (rows, C) float multi-hot rows.
    """

    def __init__(self, tokenizer, max_length: int = 128, num_labels: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.num_labels = num_labels

    def __call__(self, rows: list[dict]) -> dict:
        texts = [r["text"] for r in rows]
        labels = [r["label"] for r in rows]
        if rows and "view" in rows[0]:
            texts = texts + [r["view"] for r in rows]
            labels = labels + labels
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        if self.num_labels is not None:
            batch["labels"] = torch.from_numpy(multi_hot(labels, self.num_labels))
        else:
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return dict(batch)


class LCLTrainer(Trainer):
    """``Trainer`` that also logs the objective's parts (CE, contrastive, weighting CE)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._part_sums: dict[str, torch.Tensor] = {}
        self._part_count = 0

    def _get_train_sampler(self, train_dataset=None):
        """Shuffled batches, or m-per-class batches with ``samples_per_class``."""
        config: TrainConfig = self.model.train_config
        m = config.samples_per_class
        if not m:
            return super()._get_train_sampler(train_dataset)
        from pytorch_metric_learning.samplers import MPerClassSampler

        dataset = train_dataset if train_dataset is not None else self.train_dataset
        labels = list(dataset["label"])
        if self.args.world_size > 1:
            raise ConfigError("--samples-per-class works in one process only (not under torchrun)")
        if m * len(set(labels)) < config.batch_size:
            raise ConfigError(
                f"--samples-per-class {m}: {len(set(labels))} classes x {m} texts cannot fill a "
                f"batch of {config.batch_size}; raise it or lower --batch-size"
            )
        # one "epoch" draws as many texts as the training set holds (np.random: seeded by the
        # Trainer's set_seed, so a run is reproducible; a resumed run draws anew)
        return MPerClassSampler(
            labels, m, batch_size=config.batch_size, length_before_new_iter=len(labels)
        )

    def create_optimizer(self, model=None):
        """AdamW as the Trainer builds it, with the heads at ``head_learning_rate`` if set."""
        config: TrainConfig = self.model.train_config
        if self.optimizer is not None or config.head_learning_rate is None:
            return super().create_optimizer(*([model] if model is not None else []))
        net = model if model is not None else self.model
        decay = set(self.get_decay_parameter_names(net))
        head_ids = (
            {id(p) for h in net.heads() for p in h.parameters()} if hasattr(net, "heads") else set()
        )
        head_ids |= {id(p) for name, p in net.named_parameters() if _is_native_head(name)}
        groups: dict[tuple[bool, bool], list] = {}
        for name, param in net.named_parameters():
            if param.requires_grad:
                groups.setdefault((id(param) in head_ids, name in decay), []).append(param)
        optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, net)
        self.optimizer = optimizer_cls(
            [
                {
                    "params": params,
                    "weight_decay": self.args.weight_decay if decays else 0.0,
                    "lr": config.head_learning_rate if is_head else self.args.learning_rate,
                }
                for (is_head, decays), params in groups.items()
            ],
            **kwargs,
        )
        return self.optimizer

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, marked complete once every file is on disk; older ones are
        rotated out only after that, so a kill or a full disk leaves the last complete one."""
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

        run_dir = self._get_output_dir(trial=trial)
        folder = Path(run_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        limit = self.args.save_total_limit
        self.args.save_total_limit = None  # rotation waits for the marker below
        try:
            super()._save_checkpoint(model, trial)
        except WRITE_ERRORS + (RuntimeError,) as err:  # torch.save: RuntimeError on a full disk
            if (
                isinstance(err, RuntimeError)
                and not isinstance(err, WRITE_ERRORS)
                and not (re.search(r"writ|space|file", str(err), re.I))
            ):
                raise  # not a write failure (e.g. a collective): a bug, with its traceback
            if self.args.should_save:
                shutil.rmtree(folder, ignore_errors=True)
            last = RunDir(Path(run_dir).parent).last_checkpoint()
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            kept = (
                (
                    f"the last complete checkpoint ({last.name}) is kept: free some space and "
                    "start the same command again to resume from it"
                )
                if last
                else ("no earlier checkpoint to keep")
            )
            raise CheckpointWriteError(
                f"cannot write checkpoint {folder} ({reason}); {kept}"
            ) from err
        finally:
            self.args.save_total_limit = limit
        if self.args.should_save:
            RunDir.mark_checkpoint_complete(folder)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            for key, value in outputs.get("loss_parts", {}).items():  # tensors: no sync per step
                self._part_sums[key] = self._part_sums.get(key, 0.0) + value.double()
            self._part_count += 1
        loss = outputs["loss"]
        outputs = {"loss": loss, "logits": outputs["logits"]}
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, start_time: float | None = None) -> None:
        if "loss" in logs and self._part_count:
            keys = sorted(self._part_sums)
            sums = torch.stack([self._part_sums[k] for k in keys]).to(self.args.device)
            # every rank logs at the same steps; the mean over ranks is the global batch's part
            # (the contrastive parts are scaled for that), like "loss", not rank 0's shard
            sums = self.accelerator.reduce(sums, reduction="mean")
            logs.update({k: round(v / self._part_count, 6) for k, v in zip(keys, sums.tolist())})
            self._part_sums, self._part_count = {}, 0
        super().log(logs, start_time)


class TimedCheckpoint(TrainerCallback):
    """A resume checkpoint every ``minutes`` of training between evaluations.

    Checkpoints come with evaluations (once an epoch by default), so a kill loses up to an
    evaluation interval: on a CPU, most of an hour of a large dataset's epoch. This one saves in
    between as well, at a logging step once ``minutes`` have passed since the last checkpoint of
    either kind. It does not evaluate, so the best evaluation still picks the model, and saving
    only reads the random states, so results are the same with it or without it; a run resumed
    from it skips the batches already trained, as from any checkpoint. Under ``torchrun`` rank
    0's clock decides for every rank (they must all save together).
    """

    def __init__(self, minutes: float, clock=time.monotonic) -> None:
        self.interval = minutes * 60
        self.clock = clock
        self.last = clock()
        self.steps_per_epoch = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = self.clock()
        by_epoch = str(getattr(args.save_strategy, "value", args.save_strategy)) == "epoch"
        epochs = args.num_train_epochs
        if by_epoch and state.max_steps and float(epochs).is_integer():
            self.steps_per_epoch = max(1, round(state.max_steps / epochs))

    def on_save(self, args, state, control, **kwargs):
        self.last = self.clock()  # every checkpoint restarts the clock

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if control.should_save or control.should_training_stop or step % args.logging_steps:
            return  # saving anyway, stopping, or not a step to look at the clock
        if self.steps_per_epoch and step % self.steps_per_epoch == 0:
            return  # the epoch's own checkpoint comes right after this step
        due = self.clock() - self.last >= self.interval
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([int(due)], device=args.device)
            torch.distributed.broadcast(flag, src=0)
            due = bool(flag.item())
        if due:
            control.should_save = True


def _is_native_head(name: str) -> bool:
    """Parameters of an architecture's own classification head (``classifier``, ``score``)."""
    parts = name.split(".")
    return (
        len(parts) >= 3
        and parts[0] in ("classifier", "weighting")
        and parts[1] in ("classifier", "score", "pre_classifier")
    )


@dataclass
class TrainResult:
    metrics: dict
    output_dir: Path


def prepare_data(config: TrainConfig, views: bool = True):
    """The run's splits: train with a ``view`` column (unless ``views`` is false), validation
    and test as loaded."""
    ds = load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        text_column=config.text_column,
        label_column=config.label_column,
        seed=config.seed,
        label_separator=config.label_separator,
    )
    if is_multilabel(ds["train"].features):
        for name in ("max_train_per_class", "samples_per_class"):
            if getattr(config, name):
                raise ConfigError(
                    f"--{name.replace('_', '-')} needs one class per text; "
                    f"{config.dataset} is multi-label"
                )
    if config.max_train_per_class:
        ds["train"] = per_class_cut(ds["train"], config.max_train_per_class, config.seed)
    if config.max_train_samples:
        ds["train"] = _head(ds["train"], config.max_train_samples, config.seed)
    if config.max_eval_samples:
        for split in ("validation", "test"):
            ds[split] = _head(ds[split], config.max_eval_samples, config.seed)
    if views:
        ds["train"] = add_views(ds["train"], method=config.views, seed=config.seed)
    return ds


def per_class_cut(split, n: int, seed: int):
    """At most ``n`` texts of each class, drawn with ``seed``, in the split's original order."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(split["label"])
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.extend(rng.permutation(idx)[:n].tolist())
    return split.select(sorted(keep))


def _head(split, n: int, seed: int):
    return split.shuffle(seed=seed).select(range(min(n, len(split))))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX). There bf16 autocast
    trains 1.4-1.5x faster than fp32 on one thread (benchmarks/bench_precision.py); a CPU without
    them emulates bf16, which is usually slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str) -> str:
    """``auto`` -> ``bf16`` on a CUDA GPU that supports it and on a CPU with native bf16
    (:func:`cpu_has_native_bf16`), else ``fp32``; ``fp16`` needs a CUDA GPU."""
    cuda = torch.cuda.is_available()
    if precision == "auto":
        native = torch.cuda.is_bf16_supported() if cuda else cpu_has_native_bf16()
        return "bf16" if native else "fp32"
    if precision == "fp16" and not cuda:
        raise ConfigError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on a CPU")
    return precision


def reporters(config: TrainConfig) -> list[str]:
    """The integrations of ``--report-to`` (``tensorboard`` included), or [] for none."""
    names = [r.strip() for r in config.report_to.split(",") if r.strip()]
    return [] if names == ["none"] else names


def _training_arguments(config: TrainConfig, checkpoint_dir: Path) -> TrainingArguments:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    on_cpu = distributed and not torch.cuda.is_available()
    precision = resolve_precision(config.precision)
    # TensorBoard is attached by hand (to write into the run folder); the others go through
    others = [r for r in reporters(config) if r != "tensorboard"]
    by_epoch = config.evals_per_epoch == 1 and isinstance(config.epochs, int)
    # the interval as a share of all steps; the Trainer reads 1.0 as "every step", so a single
    # evaluation (half an epoch, evaluated twice per epoch) is a share just under 1
    share = min(1 / (config.epochs * config.evals_per_epoch), 1 - 1e-9)
    return TrainingArguments(
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float < 1 is a share of the total steps
        max_grad_norm=config.max_grad_norm,
        # k evaluations per epoch: every 1/k epoch (a float < 1 is a share of all steps);
        # a fraction of an epoch has no epoch end to evaluate at, so it counts steps too
        eval_strategy="epoch" if by_epoch else "steps",
        save_strategy="epoch" if by_epoch else "steps",
        eval_steps=None if by_epoch else share,
        save_steps=None if by_epoch else share,
        save_total_limit=1,  # with load_best_model_at_end the best one is kept as well
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        report_to=others or "none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # without use_cpu, accelerate finds no device type for a CPU multi-process run and
        # silently skips DDP: each process would train its own replica on its shard
        # (and bf16 autocast on a CPU is refused unless the Trainer is told it runs on the CPU)
        use_cpu=on_cpu or (precision == "bf16" and not torch.cuda.is_available()),
        ddp_backend=("gloo" if on_cpu else "nccl") if distributed else None,
        ddp_find_unused_parameters=False,
        disable_tqdm=False,
    )


def _tensorboard_callback(output_dir: Path):
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(output_dir / "tensorboard")))


def _best_epoch(history: list[dict], metric: str = "accuracy") -> int | float | None:
    """The epoch of the first highest validation ``metric`` (the Trainer's own choice): a whole
    number, or a fraction (2 decimals) with several evaluations per epoch."""
    key = f"eval_{metric}"
    evals = [h for h in history if key in h]
    if not evals:
        return None
    best = max(evals, key=lambda h: h[key])  # max keeps the first of equals
    epoch = float(best["epoch"])
    return int(round(epoch)) if abs(epoch - round(epoch)) < 1e-6 else round(epoch, 2)


def train(config: TrainConfig) -> TrainResult:
    """Fine-tune with ``config.loss``, keep the best validation epoch, write the run's outputs.

    The run folder is claimed first (:func:`lcl.run_dir.start_run`: lock, resume rules,
    ``--overwrite`` moving the old run aside until data and model are loaded)."""
    config.validate()
    if config.loss not in TRAINED_LOSSES:  # the probe trains nothing
        from lcl.probe import run_probe

        return run_probe(config)
    started = time.time()
    out = Path(config.output_dir)
    run = RunDir(out)
    is_main = int(os.environ.get("RANK", "0")) == 0
    args = _training_arguments(config, run.checkpoint_dir)  # under torchrun: joins the group
    # rank 0 claims and prepares the folder before other ranks look for its checkpoints
    with args.main_process_first(local=False, desc="output folder"):
        start = start_run(config, is_main)
    finished = False
    try:
        result = _train(config, args, run, start, is_main, started)
        finished = True
        return result
    except KeyboardInterrupt:
        if is_main and run.last_checkpoint() is not None:
            logger.warning(
                "interrupted: start the same command again to resume from %s; %s",
                run.last_checkpoint().name,
                run.cleanup_hint(),
            )
        raise
    finally:
        start.close(ok=finished)


def _train(
    config: TrainConfig,
    args: TrainingArguments,
    run: RunDir,
    start: RunStart,
    is_main: bool,
    started: float,
) -> TrainResult:
    out = run.path
    ds = prepare_data(config)
    label_names = split_label_names(ds["train"].features)
    multilabel = is_multilabel(ds["train"].features)
    # the best evaluation (and early stopping) by the headline metric: macro-F1 for multi-label
    args.metric_for_best_model = headline_metric(multilabel)
    set_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    model = LCLModel.from_config(config, label_names, multilabel=multilabel)
    last = start.resume_from if is_main else run.last_checkpoint()
    if config.head_init == "probe" and not last:
        init_heads_from_probe(model, config, ds, len(label_names), args.device)
    if is_main:
        start.commit()  # data and model loaded: a run replaced by --overwrite goes now
        run.write_config(config)  # before any other file: a killed run is always recognised
    callbacks = (
        [_tensorboard_callback(out)] if is_main and "tensorboard" in reporters(config) else []
    )
    if config.checkpoint_minutes:
        callbacks.append(TimedCheckpoint(config.checkpoint_minutes))
    if config.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)
        )

    trainer = LCLTrainer(
        model=model,
        args=args,
        data_collator=PairedViewCollator(
            tokenizer, config.max_length, len(label_names) if multilabel else None
        ),
        train_dataset=ds["train"],
        eval_dataset=ds["validation"],
        compute_metrics=trainer_metrics,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    # every rank has loaded the best checkpoint before rank 0 may delete it; rank 0's outputs
    # below need no collective, so the other ranks leave now instead of idling in a barrier
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return TrainResult(metrics={}, output_dir=out)

    try:
        metrics = write_outputs(
            config,
            trainer,
            tokenizer,
            ds,
            label_names,
            out,
            started,
            resumed_step=RunDir.checkpoint_step(last),
        )
    except _SafetensorError as err:  # a full disk while saving model/: one line, exit 2
        raise OSError(
            f"cannot write {run.model_dir} ({err}); the checkpoints are kept: free "
            "some space and start the same command again"
        ) from err
    if not config.keep_checkpoints:
        size = run.remove_checkpoints()
        logger.debug("removed %s of checkpoints", format_bytes(size))
    return TrainResult(metrics=metrics, output_dir=out)


def init_heads_from_probe(
    model: LCLModel, config: TrainConfig, ds, num_classes: int, device=None
) -> dict:
    """Set the pooled heads to the frozen-encoder logistic regression (fitted on the training
    texts, ``C`` chosen on validation): linear probing, then fine-tuning. ``device``: where the
    features are computed (the training device; None: the GPU when there is one)."""
    from lcl.probe import encode, fit_probe

    def feats(split):
        return encode(
            config.model,
            list(ds[split]["text"]),
            model.pooling,
            config.max_length,
            config.eval_batch_size,
            progress=f"probe features {split}",
            device=device,
        )

    fit = fit_probe(
        feats("train"),
        gold_labels(ds["train"], num_classes),
        feats("validation"),
        gold_labels(ds["validation"], num_classes),
        num_classes,
        seed=config.seed,
    )
    logger.info(
        "heads initialised from the probe (C=%g, validation %s %.4f)",
        fit.C,
        fit.metric,
        fit.val_score,
    )
    with torch.no_grad():
        for head in model.heads():
            head.weight.copy_(torch.from_numpy(fit.weight))
            head.bias.copy_(torch.from_numpy(fit.bias))
    return {"C": fit.C, f"val_{fit.metric}": fit.val_score}


def gold_labels(split, num_classes: int) -> np.ndarray:
    """A split's labels: (N,) class ids, or (N, C) 0/1 rows for multi-label data."""
    labels = list(split["label"])
    if is_multilabel(split.features):
        return multi_hot(labels, num_classes)
    return np.asarray(labels)


def set_thresholds(model, val_gold: np.ndarray, val_probs: np.ndarray, names: list[str]):
    """For a multi-label model: choose its decision thresholds on validation and put them in
    its config (``lcl_thresholds``, saved in ``config.json`` with the model); None otherwise."""
    if val_gold.ndim != 2:
        return None
    thresholds = choose_thresholds(val_gold, val_probs, names)
    model.config.lcl_thresholds = thresholds
    return thresholds


def _device_name(device: torch.device) -> str:
    """``cpu`` or e.g. ``cuda (NVIDIA H200)``: results from different hardware stay told apart."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def write_outputs(
    config: TrainConfig,
    trainer: LCLTrainer,
    tokenizer,
    ds,
    label_names,
    out: Path,
    started: float,
    resumed_step: int = 0,
) -> dict:
    """Evaluate the best epoch's model and write every output; ``metrics.json`` goes last.
    ``resumed_step``: the checkpoint step this process resumed from (0: trained from the
    start); the run times in ``metrics.json`` are this process's, so it says which steps they
    cover."""
    model: LCLModel = trainer.model
    classifier = model.classifier

    def run(net, split, pooling=None):
        return run_classifier(
            net,
            tokenizer,
            list(ds[split]["text"]),
            config.eval_batch_size,
            config.max_length,
            pooling=pooling,
            progress=f"predict {split}",
        )

    val_probs, _ = run(classifier, "validation")
    test_probs, test_feats = run(classifier, "test", pooling=model.pooling)
    num_classes = len(label_names)
    thresholds = set_thresholds(
        classifier, gold_labels(ds["validation"], num_classes), val_probs, label_names
    )
    save_classifier(classifier, tokenizer, RunDir(out).model_dir)
    # the weights LCL used: mean weighting softmax per true class (main model when no network)
    if model.weighting is not None:
        weight_probs, source = run(model.weighting, "validation")[0], "weighting_network"
    else:
        weight_probs, source = val_probs, "main_model"
    history = trainer.state.log_history
    RunDir(out).write_history(history)
    return write_run_files(
        config,
        ds,
        label_names,
        out,
        val_probs,
        test_probs,
        test_feats,
        weight_probs,
        source,
        started,
        {
            "best_epoch": _best_epoch(history, headline_metric(model.multilabel)),
            "device": _device_name(trainer.args.device),
            "precision": resolve_precision(config.precision),
            "train_runtime_seconds": next(
                (h["train_runtime"] for h in reversed(history) if "train_runtime" in h), None
            ),
            "train_steps_timed": trainer.state.global_step - resumed_step,
            "resumed_from_step": resumed_step,
            **({"thresholds": thresholds} if thresholds else {}),
        },
    )


def write_run_files(
    config: TrainConfig,
    ds,
    label_names: list[str],
    out: Path,
    val_probs,
    test_probs,
    test_feats,
    weight_probs,
    weight_source: str,
    started: float,
    extra: dict,
) -> dict:
    """The files every run leaves (fine-tuned or probe): confusability, test embeddings,
    predictions, then ``metrics.json`` last.

    Multi-label runs (labels lists of classes, probabilities per-label sigmoids) are judged at
    the decision thresholds saved with the model (``lcl_thresholds``, chosen on validation,
    :func:`set_thresholds`): metrics of :func:`~lcl.metrics.multilabel_metrics`, predictions
    as label lists, ``test_correct`` per text meaning all its labels right."""
    multilabel = is_multilabel(ds["train"].features)
    num_classes = len(label_names)
    val_gold = gold_labels(ds["validation"], num_classes)
    test_gold = gold_labels(ds["test"], num_classes)
    carriers = [
        (val_gold[:, c] == 1) if multilabel else (val_gold == c) for c in range(num_classes)
    ]
    confusability = np.stack(
        [
            weight_probs[rows].mean(axis=0) if rows.any() else np.full(num_classes, np.nan)
            for rows in carriers
        ]
    )
    run = RunDir(out)
    run.write_confusability(
        {
            "label_names": label_names,
            "matrix": np.nan_to_num(confusability).tolist(),
            "source": weight_source,
            "split": "validation",
        }
    )
    run.write_embeddings(test_feats.astype(np.float32))
    if multilabel:
        return _write_multilabel_files(
            config, ds, label_names, run, val_gold, val_probs, test_gold, test_probs, started, extra
        )
    run.write_predictions(
        [
            {
                "text": text,
                "label": label_names[g],
                "pred": label_names[int(p.argmax())],
                "probs": {n: round(float(v), 6) for n, v in zip(label_names, p)},
            }
            for text, g, p in zip(list(ds["test"]["text"]), test_gold, test_probs)
        ]
    )
    metrics = {
        **_run_summary(config, ds, label_names, started, extra, multilabel=False),
        "validation": classification_metrics(val_gold, val_probs, label_names),
        "test": classification_metrics(test_gold, test_probs, label_names),
        # one character per test text, in file order: paired (McNemar) tests need no predictions
        "test_correct": "".join(
            "1" if int(p.argmax()) == int(g) else "0" for p, g in zip(test_probs, test_gold)
        ),
        **extra,
    }
    run.write_metrics(metrics)  # last: the run is finished
    write_card(run.path)
    return metrics


def _run_summary(config, ds, label_names, started, extra, multilabel: bool) -> dict:
    """The head of metrics.json, the same for both kinds of run (``extra``'s training facts are
    taken out of it)."""
    return {
        "dataset": config.dataset,
        "loss": config.loss,
        "seed": config.seed,
        **({"multilabel": True} if multilabel else {}),
        "headline_metric": headline_metric(multilabel),
        "label_names": label_names,
        "best_epoch": extra.pop("best_epoch", None),
        "epochs": config.epochs,
        "train_examples": len(ds["train"]),
        # which texts the test figures are on (paired tests check it: lcl.compare)
        "test_texts_sha256": texts_fingerprint(ds["test"]["text"]),
        "device": extra.pop("device", "cpu"),
        "runtime_seconds": round(time.time() - started, 1),
        "train_runtime_seconds": extra.pop("train_runtime_seconds", None),
        # a fine-tuned run: the steps train_runtime_seconds covers (a resumed run's last process
        # trained only those after its checkpoint; resumed_from_step is written for it)
        **{k: v for k in ("train_steps_timed", "resumed_from_step") if (v := extra.pop(k, 0))},
    }


def _write_multilabel_files(
    config, ds, label_names, run: RunDir, val_gold, val_probs, test_gold, test_probs, started, extra
) -> dict:
    from lcl.export import threshold_vector

    thresholds = extra.pop("thresholds")
    cut = threshold_vector(thresholds, label_names)
    test_pred = test_probs >= cut
    run.write_predictions(
        [
            {
                "text": text,
                "labels": [label_names[c] for c in np.flatnonzero(g)],
                "pred": [label_names[c] for c in np.flatnonzero(p)],
                "probs": {n: round(float(v), 6) for n, v in zip(label_names, probs)},
            }
            for text, g, p, probs in zip(list(ds["test"]["text"]), test_gold, test_pred, test_probs)
        ]
    )
    test = multilabel_metrics(test_gold, test_probs, label_names, cut)
    # the same model at the other thresholds, to see what the per-label choice bought
    test["macro_f1_at_threshold"] = {
        "0.5": multilabel_metrics(test_gold, test_probs, label_names, 0.5)["macro_f1"],
        "global": multilabel_metrics(test_gold, test_probs, label_names, thresholds["global"])[
            "macro_f1"
        ],
        "per_label": test["macro_f1"],
    }
    metrics = {
        **_run_summary(config, ds, label_names, started, extra, multilabel=True),
        "thresholds": thresholds,
        "validation": multilabel_metrics(val_gold, val_probs, label_names, cut),
        "test": test,
        # one character per test text: 1 where every label is right (subset accuracy)
        "test_correct": "".join(
            "1" if (p == (g == 1)).all() else "0" for p, g in zip(test_pred, test_gold)
        ),
        **extra,
    }
    run.write_metrics(metrics)  # last: the run is finished
    write_card(run.path)
    return metrics


def write_card(path: Path) -> None:
    """The model card of a finished run (``model/README.md``); a failure costs only the card."""
    from lcl.model_card import write_model_card

    try:
        write_model_card(path)
    except Exception as err:  # noqa: BLE001 - the run itself is finished and valid
        logger.warning("model card not written (%s); `lcl card %s` writes it", err, path)
