"""Training: dataset -> views -> Hugging Face ``Trainer`` -> best epoch -> outputs on disk.

``train(config)`` is the whole pipeline behind ``lcl train``. The ``Trainer`` brings progress
bars, TensorBoard logs, checkpoints, resume after a kill and ``torchrun`` multi-process launch;
what is ours is the collator (texts with their views), the objective (``LCLModel``) and the
outputs a run leaves in ``output_dir``:

    model/               the main classifier, a standard Hugging Face directory
    metrics.json         validation and test metrics of the best epoch (written last)
    config.yaml          the resolved configuration
    predictions.jsonl    test texts, gold, predicted label and probabilities
    history.json         the Trainer's log history (loss parts per step, eval per epoch)
    confusability.json   mean weighting softmax per true class on validation
    test_embeddings.npy  the contrastive feature of every test text
    tensorboard/         TensorBoard event files
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from lcl.data import add_views, load_dataset
from lcl.errors import LCLError
from lcl.inference import run_classifier
from lcl.io import atomic_save_npy, atomic_write_json, atomic_write_jsonl, atomic_write_text
from lcl.metrics import classification_metrics, trainer_metrics
from lcl.modeling import LCLModel, load_tokenizer, save_classifier
from lcl.training_args import TrainConfig

logger = logging.getLogger(__name__)

RUN_FILES = ("metrics.json", "config.yaml", "predictions.jsonl", "history.json",
             "confusability.json", "test_embeddings.npy", "model", "tensorboard", "checkpoints")


class RunExistsError(LCLError, FileExistsError):
    """The output folder already holds a finished run."""


class PairedViewCollator:
    """Tokenises a batch, padded to its longest text.

    Training rows carry a ``view``: the batch becomes ``[texts..., views...]`` with labels
    repeated, so text ``i`` and its view ``i + B`` share label ``labels[i]``. Rows without a
    view (evaluation) are tokenised as they are.
    """

    def __init__(self, tokenizer, max_length: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, rows: list[dict]) -> dict:
        texts = [r["text"] for r in rows]
        labels = [r["label"] for r in rows]
        if rows and "view" in rows[0]:
            texts = texts + [r["view"] for r in rows]
            labels = labels + labels
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return dict(batch)


class LCLTrainer(Trainer):
    """``Trainer`` that also logs the objective's parts (CE, contrastive, weighting CE)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._part_sums: dict[str, torch.Tensor] = {}
        self._part_count = 0

    def create_optimizer(self, model=None):
        """AdamW as the Trainer builds it, with the heads at ``head_learning_rate`` if set."""
        config: TrainConfig = self.model.train_config
        if self.optimizer is not None or config.head_learning_rate is None:
            return super().create_optimizer(*([model] if model is not None else []))
        net = model if model is not None else self.model
        decay = set(self.get_decay_parameter_names(net))
        head_ids = {id(p) for h in net.heads() for p in h.parameters()} if hasattr(net, "heads") else set()
        head_ids |= {id(p) for name, p in net.named_parameters() if _is_native_head(name)}
        groups: dict[tuple[bool, bool], list] = {}
        for name, param in net.named_parameters():
            if param.requires_grad:
                groups.setdefault((id(param) in head_ids, name in decay), []).append(param)
        optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, net)
        self.optimizer = optimizer_cls([
            {"params": params, "weight_decay": self.args.weight_decay if decays else 0.0,
             "lr": config.head_learning_rate if is_head else self.args.learning_rate}
            for (is_head, decays), params in groups.items()], **kwargs)
        return self.optimizer

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


def _is_native_head(name: str) -> bool:
    """Parameters of an architecture's own classification head (``classifier``, ``score``)."""
    parts = name.split(".")
    return len(parts) >= 3 and parts[0] in ("classifier", "weighting") and parts[1] in (
        "classifier", "score", "pre_classifier")


@dataclass
class TrainResult:
    metrics: dict
    output_dir: Path


def prepare_data(config: TrainConfig, views: bool = True):
    """The run's splits: train with a ``view`` column (unless ``views`` is false), validation
    and test as loaded."""
    ds = load_dataset(config.dataset, data_dir=config.data_dir, text_column=config.text_column,
                      label_column=config.label_column, seed=config.seed)
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


def _training_arguments(config: TrainConfig, checkpoint_dir: Path) -> TrainingArguments:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    on_cpu = distributed and not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float < 1 is a share of the total steps
        max_grad_norm=config.max_grad_norm,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,  # with load_best_model_at_end the best one is kept as well
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",  # TensorBoard is attached by hand to choose its folder
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # without use_cpu, accelerate finds no device type for a CPU multi-process run and
        # silently skips DDP: each process would train its own replica on its shard
        use_cpu=on_cpu,
        ddp_backend=("gloo" if on_cpu else "nccl") if distributed else None,
        ddp_find_unused_parameters=False,
        disable_tqdm=False,
    )


def _tensorboard_callback(output_dir: Path):
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(output_dir / "tensorboard")))


def _best_epoch(history: list[dict]) -> int | None:
    """The epoch of the first highest validation accuracy (the Trainer's own choice)."""
    evals = [h for h in history if "eval_accuracy" in h]
    if not evals:
        return None
    best = max(evals, key=lambda h: h["eval_accuracy"])  # max keeps the first of equals
    return int(round(best["epoch"]))


def _prepare_output_dir(config: TrainConfig, out: Path, is_main: bool) -> None:
    if (out / "metrics.json").exists():
        if not config.overwrite:
            raise RunExistsError(f"{out} already holds a finished run (metrics.json); "
                                 "choose another --output-dir or pass --overwrite")
        if is_main:
            for name in RUN_FILES:
                target = out / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()


def train(config: TrainConfig) -> TrainResult:
    """Fine-tune with ``config.loss``, keep the best validation epoch, write the run's outputs."""
    config.validate()
    if config.loss == "probe":
        from lcl.probe import run_probe

        return run_probe(config)
    started = time.time()
    out = Path(config.output_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0
    checkpoint_dir = out / "checkpoints"
    args = _training_arguments(config, checkpoint_dir)  # under torchrun: joins the process group
    # rank 0 clears a finished run (--overwrite) before other ranks look for it or its checkpoints
    with args.main_process_first(local=False, desc="output folder"):
        _prepare_output_dir(config, out, is_main)

    ds = prepare_data(config)
    label_names = ds["train"].features["label"].names
    set_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    model = LCLModel.from_config(config, label_names)
    last = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if config.head_init == "probe" and not last:
        init_heads_from_probe(model, config, ds, len(label_names))
    callbacks = [_tensorboard_callback(out)] if is_main else []
    if config.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))

    trainer = LCLTrainer(
        model=model,
        args=args,
        data_collator=PairedViewCollator(tokenizer, config.max_length),
        train_dataset=ds["train"],
        eval_dataset=ds["validation"],
        compute_metrics=trainer_metrics,
        callbacks=callbacks,
    )
    if is_main:
        atomic_write_text(out / "config.yaml", config.to_yaml())
    if last:
        logger.info("resuming from %s", last)
    trainer.train(resume_from_checkpoint=last)
    # every rank has loaded the best checkpoint before rank 0 may delete it; rank 0's outputs
    # below need no collective, so the other ranks leave now instead of idling in a barrier
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return TrainResult(metrics={}, output_dir=out)

    metrics = write_outputs(config, trainer, tokenizer, ds, label_names, out, started)
    if not config.keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return TrainResult(metrics=metrics, output_dir=out)


def init_heads_from_probe(model: LCLModel, config: TrainConfig, ds, num_classes: int) -> dict:
    """Set the pooled heads to the frozen-encoder logistic regression (fitted on the training
    texts, ``C`` chosen on validation): linear probing, then fine-tuning."""
    from lcl.probe import encode, fit_probe

    def feats(split):
        return encode(config.model, list(ds[split]["text"]), model.pooling, config.max_length,
                      config.eval_batch_size, progress=f"probe features {split}")

    fit = fit_probe(feats("train"), np.asarray(ds["train"]["label"]), feats("validation"),
                    np.asarray(ds["validation"]["label"]), num_classes, seed=config.seed)
    logger.info("heads initialised from the probe (C=%g, validation accuracy %.4f)",
                fit.C, fit.val_accuracy)
    with torch.no_grad():
        for head in model.heads():
            head.weight.copy_(torch.from_numpy(fit.weight))
            head.bias.copy_(torch.from_numpy(fit.bias))
    return {"C": fit.C, "val_accuracy": fit.val_accuracy}


def _device_name(device: torch.device) -> str:
    """``cpu`` or e.g. ``cuda (NVIDIA H200)``: results from different hardware stay told apart."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def write_outputs(config: TrainConfig, trainer: LCLTrainer, tokenizer, ds, label_names,
                  out: Path, started: float) -> dict:
    """Evaluate the best epoch's model and write every output; ``metrics.json`` goes last."""
    model: LCLModel = trainer.model
    classifier = model.classifier
    save_classifier(classifier, tokenizer, out / "model")

    def run(net, split, pooling=None):
        return run_classifier(net, tokenizer, list(ds[split]["text"]), config.eval_batch_size,
                              config.max_length, pooling=pooling, progress=f"predict {split}")

    val_probs, _ = run(classifier, "validation")
    test_probs, test_feats = run(classifier, "test", pooling=model.pooling)
    # the weights LCL used: mean weighting softmax per true class (main model when no network)
    if model.weighting is not None:
        weight_probs, source = run(model.weighting, "validation")[0], "weighting_network"
    else:
        weight_probs, source = val_probs, "main_model"
    history = trainer.state.log_history
    atomic_write_json(out / "history.json", history)
    return write_run_files(config, ds, label_names, out, val_probs, test_probs, test_feats,
                           weight_probs, source, started, {
                               "best_epoch": _best_epoch(history),
                               "device": _device_name(trainer.args.device),
                               "train_runtime_seconds": next((h["train_runtime"] for h in reversed(history)
                                                              if "train_runtime" in h), None)})


def write_run_files(config: TrainConfig, ds, label_names: list[str], out: Path, val_probs,
                    test_probs, test_feats, weight_probs, weight_source: str, started: float,
                    extra: dict) -> dict:
    """The files every run leaves (fine-tuned or probe): confusability, test embeddings,
    predictions, then ``metrics.json`` last."""
    val_gold = np.asarray(list(ds["validation"]["label"]))
    test_gold = np.asarray(list(ds["test"]["label"]))
    confusability = np.stack([
        weight_probs[val_gold == c].mean(axis=0) if (val_gold == c).any()
        else np.full(len(label_names), np.nan) for c in range(len(label_names))])
    atomic_write_json(out / "confusability.json", {
        "label_names": label_names, "matrix": np.nan_to_num(confusability).tolist(),
        "source": weight_source, "split": "validation"})
    atomic_save_npy(out / "test_embeddings.npy", test_feats.astype(np.float32))
    atomic_write_jsonl(out / "predictions.jsonl", [
        {"text": text, "label": label_names[g], "pred": label_names[int(p.argmax())],
         "probs": {n: round(float(v), 6) for n, v in zip(label_names, p)}}
        for text, g, p in zip(list(ds["test"]["text"]), test_gold, test_probs)])
    metrics = {
        "dataset": config.dataset,
        "loss": config.loss,
        "seed": config.seed,
        "label_names": label_names,
        "best_epoch": extra.pop("best_epoch", None),
        "epochs": config.epochs,
        "train_examples": len(ds["train"]),
        "device": extra.pop("device", "cpu"),
        "runtime_seconds": round(time.time() - started, 1),
        "train_runtime_seconds": extra.pop("train_runtime_seconds", None),
        "validation": classification_metrics(val_gold, val_probs, label_names),
        "test": classification_metrics(test_gold, test_probs, label_names),
        **extra,
    }
    atomic_write_json(out / "metrics.json", metrics)
    return metrics
