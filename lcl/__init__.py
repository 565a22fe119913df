"""lcl: fine-grained text classification with Label-aware Contrastive Loss.

    from lcl import TrainConfig, train, evaluate, predict
    result = train(TrainConfig(dataset="isear", loss="lcl", output_dir="runs/isear"))
    predict(result.output_dir / "model", ["I was so scared of the dark"])

Heavy imports (torch, transformers) happen on first use, so ``lcl --help`` is quick.
"""

from lcl.errors import LCLError
from lcl.training_args import ConfigError, TrainConfig

__version__ = "0.1.0"
__all__ = ["TrainConfig", "ConfigError", "LCLError", "train", "evaluate", "predict", "__version__"]


def __getattr__(name: str):
    if name == "train":
        from lcl.trainer import train

        return train
    if name in ("evaluate", "predict"):
        from lcl import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'lcl' has no attribute {name!r}")
