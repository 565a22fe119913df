"""The configuration of one training run: every field is a CLI flag of ``lcl train``.

Defaults are the paper's (Suresh & Ong, EMNLP 2021, §4 and the published code): τ = 0.3,
λ = 0.5, 10 texts and their 10 views per batch, AdamW lr 2e-5, weight decay 0.01, linear decay
without warm-up, gradient-norm clip 1.0, 5 epochs, best-validation-accuracy epoch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

LOSSES = ("ce", "scl", "lcl")
WEIGHTINGS = ("network", "self")
POOLINGS = ("cls", "mean")
VIEWS = ("synonym", "dropout")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


@dataclass
class TrainConfig:
    # data
    dataset: str = field(default="demo", metadata={"help": "built-in name (see `lcl datasets`), "
                         "`empathetic_dialogues:SUBSET`, or csv:/tsv:/jsonl:PATH"})
    data_dir: str | None = field(default=None, metadata={"help": "folder of the original dataset "
                                 "files (default: $LCL_DATA_DIR)"})
    text_column: str = field(default="text", metadata={"help": "text column of your own files"})
    label_column: str = field(default="label", metadata={"help": "label column of your own files"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use the first N "
                                          "training texts after a seeded shuffle"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "use the first N "
                                         "validation and test texts after a seeded shuffle"})
    views: Literal["synonym", "dropout"] = field(default="synonym", metadata={
        "help": "second view of each text: WordNet synonym replacement (paper) or the same text "
                "(dropout makes the views differ)"})
    # model
    model: str = field(default="minilm", metadata={"help": "encoder: `minilm` (embedded "
                       "all-MiniLM-L6-v2), a local path or a Hugging Face name"})
    weighting_model: str | None = field(default=None, metadata={"help": "encoder of the "
                                        "weighting network (default: --model)"})
    pooling: Literal["cls", "mean"] = field(default="cls", metadata={
        "help": "contrastive feature: last-layer [CLS] vector (paper) or masked mean"})
    dropout: float | None = field(default=None, metadata={
        "help": "set every dropout probability of the encoders (default: the checkpoint's)"})
    max_length: int = field(default=128, metadata={"help": "truncate texts to this many tokens"})
    # objective
    loss: Literal["ce", "scl", "lcl"] = field(default="lcl", metadata={
        "help": "ce: cross-entropy; scl: λ·CE + (1−λ)·SupCon; lcl: λ·CE + (1−λ)·LCL + λ·CE(weighting)"})
    weighting: Literal["network", "self"] = field(default="network", metadata={
        "help": "LCL weights from a second network (paper) or the main model's detached softmax"})
    detach_weights: bool = field(default=False, metadata={
        "help": "stop the contrastive gradient into the weighting network"})
    temperature: float = field(default=0.3, metadata={"help": "contrastive temperature τ"})
    lam: float = field(default=0.5, metadata={"help": "λ, the cross-entropy share of the objective"})
    memory_size: int = field(default=0, metadata={"help": "label-aware memory of the last K "
                             "features as extra contrastive candidates (0: off)"})
    memory_start_step: int | None = field(default=None, metadata={
        "help": "step from which the memory counts (default: once it is full)"})
    # optimisation
    batch_size: int = field(default=10, metadata={"help": "texts per batch (each brings its view)"})
    eval_batch_size: int = field(default=64, metadata={"help": "texts per evaluation batch"})
    learning_rate: float = field(default=2e-5, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay "
                                "(not on biases and LayerNorm weights)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient-norm clip"})
    epochs: int = field(default=5, metadata={"help": "training epochs"})
    seed: int = field(default=0, metadata={"help": "seed of data order, views and head init"})
    # run
    output_dir: str = field(default="runs/lcl", metadata={"help": "where the run is written"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run in "
                            "--output-dir instead of refusing"})
    keep_checkpoints: bool = field(default=False, metadata={"help": "keep the Trainer "
                                   "checkpoints after a finished run"})
    logging_steps: int = field(default=10, metadata={"help": "log loss parts every N steps"})

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def choice(name: str, allowed: tuple[str, ...]) -> None:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} must be one of "
                                  f"{', '.join(allowed)}, not {getattr(self, name)!r}")

        def at_least(name: str, low: float, value: Any = None) -> None:
            value = getattr(self, name) if value is None else value
            if value is not None and value < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, not {value}")

        choice("loss", LOSSES)
        choice("weighting", WEIGHTINGS)
        choice("pooling", POOLINGS)
        choice("views", VIEWS)
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be positive, not {self.temperature}")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"--lam must lie in [0, 1], not {self.lam}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be positive, not {self.learning_rate}")
        for name in ("batch_size", "eval_batch_size", "epochs", "max_length", "logging_steps",
                     "max_train_samples", "max_eval_samples"):
            at_least(name, 1)
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must lie in [0, 1), not {self.dropout}")
        for name in ("weight_decay", "max_grad_norm", "memory_size", "memory_start_step"):
            at_least(name, 0)
        if not self.dataset:
            raise ConfigError("--dataset must not be empty")

    # --- YAML round trip -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as err:  # e.g. a string where a number belongs, caught by comparisons
            raise ConfigError(f"invalid configuration: {err}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """Read a YAML file; ``overrides`` (e.g. CLI flags the user gave) win over its values."""
        values = read_yaml_mapping(path)
        values.update(overrides)
        return cls.from_dict(values)


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
