"""The configuration of one training run: every field is a CLI flag of ``lcl train``.

The recipe fields (learning rates, schedule, epochs, head, pooling, τ, λ, views, batch size)
take their defaults from a *preset* (``--preset``):

- ``paper``: Suresh & Ong (EMNLP 2021, §4 and the published code) exactly: τ = 0.3, λ = 0.5,
  10 texts and their 10 views per batch, AdamW lr 2e-5, weight decay 0.01, linear decay without
  warm-up, gradient-norm clip 1.0, 5 epochs, the architecture's own head on ``[CLS]``.
- ``minilm``: the recipe measured best for the embedded all-MiniLM-L6-v2
  (``studies/recipe-search.yaml``, docs/RESULTS.md).
- ``auto`` (default): the measured recipe of the encoder in use (``minilm`` for every encoder
  until another is measured).

A value given explicitly (flag, YAML, keyword) always wins over the preset; ``config.yaml``
of a run records the preset and every resolved value.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from lcl.errors import LCLError
from lcl.objectives import LOSSES  # the objective registry: its names, nothing heavy

WEIGHTINGS = ("network", "self")
POOLINGS = ("auto", "cls", "mean")
HEADS = ("native", "pooled")
HEAD_INITS = ("random", "probe")
VIEWS = ("synonym", "dropout")  # the one list of view methods (lcl.data.augment uses it)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LENGTH_GROUPS = ("auto", "on", "off")


class ConfigError(LCLError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class _FromPreset:
    """Default of a recipe field: filled in from the preset when the config is made."""

    def __repr__(self) -> str:
        return "from --preset"


FROM_PRESET: Any = _FromPreset()

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "views": "synonym",
        "pooling": "cls",
        "head": "native",
        "head_init": "random",
        "temperature": 0.3,
        "lam": 0.5,
        "batch_size": 10,
        "learning_rate": 2e-5,
        "head_learning_rate": None,
        "warmup_ratio": 0.0,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "epochs": 5,
        "early_stopping_patience": None,
        "evals_per_epoch": 1,
        "weighting": "network",
    },
    "minilm": {
        "views": "synonym",
        "pooling": "auto",
        "head": "pooled",
        "head_init": "probe",
        "temperature": 0.3,
        "lam": 0.5,
        "batch_size": 10,
        "learning_rate": 5e-5,
        "head_learning_rate": 1e-3,
        "warmup_ratio": 0.1,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "epochs": 4,
        "early_stopping_patience": 1,
        "evals_per_epoch": 1,
        # measured in studies/convergence.yaml: level with the weighting network (+0.4 over 21
        # dataset-seed pairs) at about half its time per step
        "weighting": "self",
    },
}
# the measured recipe per encoder alias; encoders not listed get DEFAULT_PRESET. mpnet: the
# recipe round studies/recipe-mpnet.yaml (docs/RESULTS.md) found no change to minilm's that held
MODEL_PRESETS = {"minilm": "minilm", "mpnet": "minilm"}
DEFAULT_PRESET = "minilm"
GPU_BUNDLE_DIR = ".gpu"  # scripts/gpu_bundle.sh: the encoder copy is .gpu/encoder-NAME


def encoder_name(model: str) -> str:
    """The encoder a ``model`` value names: the value itself, except for the float16 copy in a
    GPU bundle (``scripts/gpu_bundle.sh``), ``.gpu/encoder-NAME``, which is ``NAME``; a bundle's
    ``.gpu/encoder``, named so before the encoder's name was in it, always held ``minilm``."""
    path = PurePosixPath(str(model))
    if path.parent.name == GPU_BUNDLE_DIR:
        if path.name == "encoder":
            return "minilm"
        if path.name.startswith("encoder-") and path.name != "encoder-":
            return path.name.removeprefix("encoder-")
    return str(model)


def resolve_preset(preset: str, model: str) -> str:
    if preset != "auto":
        return preset
    return MODEL_PRESETS.get(encoder_name(model), DEFAULT_PRESET)


@dataclass
class TrainConfig:
    # data
    dataset: str = field(
        default="demo",
        metadata={
            "help": "built-in name (see `lcl datasets`), "
            "`empathetic_dialogues:SUBSET`, csv:/tsv:/jsonl:PATH, hf:NAME[:CONFIG] "
            "or disk:PATH"
        },
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "folder of the original dataset files (default: $LCL_DATA_DIR)"},
    )
    text_column: str = field(
        default="text", metadata={"help": "text column of your own files and hf:/disk: datasets"}
    )
    label_column: str = field(
        default="label", metadata={"help": "label column of your own files and hf:/disk: datasets"}
    )
    label_separator: str | None = field(
        default=None,
        metadata={
            "help": "split each label of your own files and hf:/disk: datasets at this text "
            "(e.g. ';'): several classes per text, a multi-label dataset (a JSON list as the "
            "label is multi-label without it; default: none)"
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "use the first N training texts after a seeded shuffle"}
    )
    max_train_per_class: int | None = field(
        default=None,
        metadata={
            "help": "keep at most N training texts per class, drawn with --seed (few-shot cuts); "
            "validation and test stay whole"
        },
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={"help": "use the first N validation and test texts after a seeded shuffle"},
    )
    views: Literal[VIEWS] = field(
        default=FROM_PRESET,
        metadata={
            "help": "second view of each text: WordNet synonym replacement (paper) or the same text "
            "(dropout makes the views differ)"
        },
    )
    preset: Literal["auto", "paper", "minilm"] = field(
        default="auto",
        metadata={
            "help": "defaults of the recipe fields: paper (Suresh & Ong exactly), minilm (measured "
            "best for the embedded encoder), auto (the measured recipe of --model)"
        },
    )
    # model
    model: str = field(
        default="minilm",
        metadata={
            "help": "encoder: `minilm` (embedded "
            "all-MiniLM-L6-v2), a local path or a Hugging Face name"
        },
    )
    weighting_model: str | None = field(
        default=None, metadata={"help": "encoder of the weighting network (default: --model)"}
    )
    pooling: Literal["auto", "cls", "mean"] = field(
        default=FROM_PRESET,
        metadata={
            "help": "sentence feature: last-layer [CLS] vector (paper), masked mean, or auto: as the "
            "checkpoint was trained (its sentence-transformers pooling config), else [CLS]"
        },
    )
    head: Literal["native", "pooled"] = field(
        default=FROM_PRESET,
        metadata={
            "help": "classifier head: the architecture's own (paper) or one linear layer on the "
            "pooled, L2-normalised feature (the one the contrastive loss sees)"
        },
    )
    head_init: Literal["random", "probe"] = field(
        default=FROM_PRESET,
        metadata={
            "help": "start of the pooled head (and the weighting network's): random, or the "
            "frozen-encoder logistic regression of `lcl probe` (linear probe, then fine-tune)"
        },
    )
    dropout: float | None = field(
        default=None,
        metadata={
            "help": "set every dropout probability of the encoders (default: the checkpoint's)"
        },
    )
    max_length: int = field(default=128, metadata={"help": "truncate texts to this many tokens"})
    # objective
    loss: Literal[LOSSES] = field(
        default="lcl",
        metadata={
            "help": "ce: cross-entropy; scl: λ·CE + (1−λ)·SupCon; lcl: λ·CE + (1−λ)·LCL + "
            "λ·CE(weighting); probe: no fine-tuning, logistic regression on frozen features"
        },
    )
    weighting: Literal["network", "self"] = field(
        default=FROM_PRESET,
        metadata={
            "help": "LCL weights from a second, jointly trained network (paper) or the main "
            "model's own detached softmax (self: one encoder, CE's cost)"
        },
    )
    detach_weights: bool = field(
        default=False, metadata={"help": "stop the contrastive gradient into the weighting network"}
    )
    temperature: float = field(default=FROM_PRESET, metadata={"help": "contrastive temperature τ"})
    lam: float = field(
        default=FROM_PRESET, metadata={"help": "λ, the cross-entropy share of the objective"}
    )
    memory_size: int = field(
        default=0,
        metadata={
            "help": "label-aware memory of the last K "
            "features as extra contrastive candidates (0: off)"
        },
    )
    memory_start_step: int | None = field(
        default=None,
        metadata={"help": "step from which the memory counts (default: once it is full)"},
    )
    # optimisation
    batch_size: int = field(
        default=FROM_PRESET, metadata={"help": "texts per batch (each brings its view)"}
    )
    samples_per_class: int | None = field(
        default=None,
        metadata={
            "help": "m-per-class batches: each batch holds batch-size/m classes with m texts "
            "each (pytorch-metric-learning's MPerClassSampler), so most anchors have positives "
            "besides their own view; m must divide --batch-size (none: shuffled batches)"
        },
    )
    eval_batch_size: int = field(default=64, metadata={"help": "texts per evaluation batch"})
    learning_rate: float = field(default=FROM_PRESET, metadata={"help": "AdamW learning rate"})
    head_learning_rate: float | None = field(
        default=FROM_PRESET,
        metadata={"help": "learning rate of the classification heads (none: --learning-rate)"},
    )
    warmup_ratio: float = field(
        default=FROM_PRESET,
        metadata={"help": "share of the training steps with a linear learning-rate warm-up"},
    )
    weight_decay: float = field(
        default=FROM_PRESET,
        metadata={"help": "AdamW weight decay (not on biases and LayerNorm weights)"},
    )
    max_grad_norm: float = field(default=FROM_PRESET, metadata={"help": "gradient-norm clip"})
    epochs: float = field(
        default=FROM_PRESET,
        metadata={
            "help": "training epochs; a fraction (e.g. 0.5) trains part of an epoch, the "
            "learning-rate schedule fitted to it (epochs x --evals-per-epoch must be whole)"
        },
    )
    evals_per_epoch: int = field(
        default=FROM_PRESET,
        metadata={
            "help": "validation evaluations (and checkpoints) per epoch; the best one is kept"
        },
    )
    early_stopping_patience: int | None = field(
        default=FROM_PRESET,
        metadata={
            "help": "stop after N evaluations in a row without a strictly better validation "
            "accuracy (a tie counts as not better; none: never)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of data order, views and head init"})
    # run
    output_dir: str = field(default="runs/lcl", metadata={"help": "where the run is written"})
    overwrite: bool = field(
        default=False,
        metadata={"help": "replace a finished run in --output-dir instead of refusing"},
    )
    keep_checkpoints: bool = field(
        default=False, metadata={"help": "keep the Trainer checkpoints after a finished run"}
    )
    checkpoint_minutes: float | None = field(
        default=30.0,
        metadata={
            "help": "between evaluations, also save a resume checkpoint every X minutes of "
            "training, so a killed run loses at most that much (none: at evaluations only); "
            "it changes no result"
        },
    )
    logging_steps: int = field(default=10, metadata={"help": "log loss parts every N steps"})
    report_to: str = field(
        default="tensorboard",
        metadata={
            "help": "where the training logs go: tensorboard (into the run folder), none, or a "
            "comma-separated list of the Trainer's integrations (wandb, mlflow, comet_ml, ...), "
            "each when installed; the loss parts go to all of them"
        },
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto",
        metadata={
            "help": "mixed precision of training: auto (bf16 on a GPU or CPU that supports it "
            "natively, else fp32), fp32, bf16 or fp16 (GPU only); the losses compute in float32 "
            "throughout"
        },
    )
    length_groups: Literal[LENGTH_GROUPS] = field(
        default="auto",
        metadata={
            "help": "run each batch through the encoders in groups of texts of similar length, "
            "each padded only to its own longest, so far fewer padding tokens are computed "
            "(training steps 1.3-1.6x faster on a CPU); auto: on a CPU, off on a GPU. "
            "Predictions are the same either way; in training only dropout's draws differ"
        },
    )

    def __post_init__(self) -> None:
        hints = _type_hints()
        for f in fields(self):  # YAML and keyword values to the field's type (flags are typed)
            value = getattr(self, f.name)
            if value is not FROM_PRESET:
                setattr(self, f.name, _coerce(f.name, value, hints[f.name]))
        if self.preset not in ("auto", *PRESETS):
            raise ConfigError(
                f"--preset must be one of auto, {', '.join(PRESETS)}, not {self.preset!r}"
            )
        if self.preset == "auto":
            self.preset = resolve_preset(self.preset, self.model)
        for name, value in PRESETS[self.preset].items():
            if getattr(self, name) is FROM_PRESET:
                setattr(self, name, value)
        if isinstance(self.epochs, float) and self.epochs.is_integer():
            self.epochs = int(self.epochs)  # whole epochs stay integers in config.yaml
        self.validate()

    def validate(self) -> None:
        def choice(name: str, allowed: tuple[str, ...]) -> None:
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{_opt(name)} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}"
                )

        def at_least(name: str, low: float, value: Any = None) -> None:
            value = getattr(self, name) if value is None else value
            if value is not None and value < low:
                raise ConfigError(f"{_opt(name)} must be at least {low}, not {value}")

        hints = _type_hints()
        for f in fields(self):  # every number: of its type and finite (NaN and inf refused)
            value = getattr(self, f.name)
            base = _base_type(hints[f.name])
            if value is None and _optional(hints[f.name]):
                continue
            if base in (int, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"{_opt(f.name)} must be a number, not {value!r}")
                if base is int and not isinstance(value, int):
                    raise ConfigError(f"{_opt(f.name)} must be an integer, not {value!r}")
                if not math.isfinite(value):
                    raise ConfigError(f"{_opt(f.name)} must be a finite number, not {value}")
            elif value is None:
                raise ConfigError(f"{_opt(f.name)} needs a value (`{f.name}:` is null)")
        choice("loss", LOSSES)
        choice("weighting", WEIGHTINGS)
        choice("pooling", POOLINGS)
        choice("head", HEADS)
        choice("head_init", HEAD_INITS)
        if self.head_init == "probe" and self.head != "pooled":
            raise ConfigError(
                "--head-init probe needs --head pooled (the probe is a linear "
                "layer on the pooled feature)"
            )
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:
            raise ConfigError(
                f"--head-learning-rate must be positive, not {self.head_learning_rate}"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"--warmup-ratio must lie in [0, 1), not {self.warmup_ratio}")
        choice("views", VIEWS)
        choice("precision", PRECISIONS)
        choice("length_groups", LENGTH_GROUPS)
        if self.samples_per_class is not None and (
            self.samples_per_class < 1 or self.batch_size % self.samples_per_class
        ):
            raise ConfigError(
                f"--samples-per-class must be a positive divisor of --batch-size "
                f"({self.batch_size}), not {self.samples_per_class}"
            )
        reporters = [r.strip() for r in str(self.report_to).split(",") if r.strip()]
        if not reporters or ("none" in reporters and len(reporters) > 1):
            raise ConfigError(
                f"--report-to must be none or a list of integrations, not {self.report_to!r}"
            )
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be positive, not {self.temperature}")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"--lam must lie in [0, 1], not {self.lam}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be positive, not {self.learning_rate}")
        for name in (
            "batch_size",
            "eval_batch_size",
            "max_length",
            "logging_steps",
            "max_train_samples",
            "max_eval_samples",
            "early_stopping_patience",
            "max_train_per_class",
            "evals_per_epoch",
        ):
            at_least(name, 1)
        if self.checkpoint_minutes is not None and not self.checkpoint_minutes > 0:
            raise ConfigError(
                f"--checkpoint-minutes must be positive (or none), not {self.checkpoint_minutes}"
            )
        if not self.epochs > 0:
            raise ConfigError(f"--epochs must be positive, not {self.epochs}")
        evaluations = self.epochs * self.evals_per_epoch
        if abs(evaluations - round(evaluations)) > 1e-9:
            raise ConfigError(
                f"--epochs {self.epochs} x --evals-per-epoch {self.evals_per_epoch} must be a "
                "whole number of evaluations, so that the last one falls at the end of training"
            )
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must lie in [0, 1), not {self.dropout}")
        for name in ("weight_decay", "max_grad_norm", "memory_size", "memory_start_step"):
            at_least(name, 0)
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must lie in [0, 2**32), not {self.seed}")
        if not self.dataset:
            raise ConfigError("--dataset must not be empty")
        if self.label_separator is not None and not self.label_separator:
            raise ConfigError("--label-separator must not be empty (leave it out for none)")
        if not str(self.output_dir).strip():
            raise ConfigError("--output-dir must not be empty (a run needs a folder of its own)")

    # --- YAML round trip -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as err:  # e.g. a string where a number belongs, caught by comparisons
            raise ConfigError(f"invalid configuration: {err}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a YAML file; ``overrides`` (e.g. CLI flags the user gave) win over its values."""
        values = read_yaml_mapping(path)
        values.update(overrides)
        return cls.from_dict(values)


def _opt(name: str) -> str:
    return "--" + name.replace("_", "-")


_HINTS: dict[str, Any] = {}


def _type_hints() -> dict[str, Any]:
    if not _HINTS:
        _HINTS.update(typing.get_type_hints(TrainConfig))
    return _HINTS


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _base_type(hint: Any) -> Any:
    """``int`` of ``int | None``; ``str`` of a ``Literal`` of strings."""
    if typing.get_origin(hint) is Literal:
        return str
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 and _optional(hint) else hint


_INT_TEXT = re.compile(r"[+-]?\d+")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type: a quoted number (``seed: "3"``) and PyYAML's string
    ``2e-5`` are numbers; null is refused, naming the key, where the field needs a value."""
    if value is None or (
        _optional(hint) and isinstance(value, str) and value.strip().lower() in ("none", "null")
    ):
        if _optional(hint):
            return None  # YAML null, or "none" on the command line
        raise ConfigError(f"{_opt(name)} needs a value (`{name}:` is null)")
    base = _base_type(hint)
    if base is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if isinstance(value, (int, str)) and text in _TRUE + _FALSE:
            return text in _TRUE
        raise ConfigError(f"{_opt(name)} must be true or false, not {value!r}")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            return int(value.strip())
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None and math.isfinite(number) and number.is_integer():
                return int(number)
        raise ConfigError(f"{_opt(name)} must be an integer, not {value!r}")
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{_opt(name)} must be a number, not {value!r}")
    if base is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{_opt(name)} must be a text, not {value!r}")
    return value


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in values.items()}
