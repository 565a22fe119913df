"""A sequence classifier whose head reads the pooled, L2-normalised sentence feature.

``PooledEncoderForSequenceClassification`` = any ``AutoModel`` encoder + masked-mean (or
``[CLS]``) pooling + L2 normalisation + one linear layer. It is the classifier of ``lcl probe``
(the logistic regression's weights are its linear layer) and, with ``--head pooled``, of
``lcl train``: the head then reads the same feature the contrastive loss sees, pooled the way
the checkpoint was trained (sentence-transformers checkpoints such as all-MiniLM-L6-v2 use the
mean), and can start from the probe's solution (linear probing, then fine-tuning).

This file imports nothing from ``lcl``: it is copied into every saved model folder as
``modeling_lcl_pooled.py`` and named in ``config.json``'s ``auto_map``, so that without
``lcl`` installed::

    transformers.pipeline("text-classification", model="RUN/model", trust_remote_code=True)

loads it. ``lcl`` itself loads such folders without remote code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

ARCHITECTURE = "PooledEncoderForSequenceClassification"
POOLING_KEY = "lcl_pooling"
MULTI_LABEL = "multi_label_classification"  # transformers' problem_type: sigmoid per label


def masked_pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N, L, H) last hidden states -> (N, H), before normalisation."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def contrastive_feature(
    hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str
) -> torch.Tensor:
    """The contrastive feature: (N, L, H) last hidden states -> (N, H) pooled, float32,
    L2-normalised. The one definition used in training, inference, the probe and the pooled head."""
    return F.normalize(masked_pool(hidden, attention_mask, pooling).float(), dim=-1)


class PooledEncoderForSequenceClassification(PreTrainedModel):
    """``logits = W · normalize(pool(encoder(x))) + b``; the config is the encoder's own, plus
    ``lcl_pooling`` (``mean`` or ``cls``), ``num_labels``, ``id2label`` and ``label2id``, and
    for several labels per text ``problem_type: multi_label_classification`` (the loss is then
    binary cross-entropy per label, and ``pipeline`` applies a sigmoid)."""

    config_class = PretrainedConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True

    def __init__(self, config: PretrainedConfig, encoder: nn.Module | None = None) -> None:
        super().__init__(config)
        self.encoder = encoder if encoder is not None else AutoModel.from_config(config)
        if getattr(self.encoder, "pooler", None) is not None:
            # the architecture's own pooler (BERT, MPNet: dense + tanh on [CLS]) is not used here;
            # left in, its weights would get no gradient (DDP refuses such parameters)
            self.encoder.pooler = None
        self.pooling = getattr(config, POOLING_KEY, "mean")
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:  # weights come from the checkpoint
        pass

    @classmethod
    def from_encoder(
        cls,
        name_or_path: str,
        label_names: list[str],
        pooling: str = "mean",
        problem_type: str | None = None,
        **kwargs,
    ) -> PooledEncoderForSequenceClassification:
        """A new classifier on a pre-trained encoder (the head starts at random)."""
        config = AutoConfig.from_pretrained(name_or_path)
        encoder = AutoModel.from_pretrained(name_or_path, config=config, **kwargs)
        config.problem_type = problem_type
        config.num_labels = len(label_names)
        config.id2label = dict(enumerate(label_names))
        config.label2id = {n: i for i, n in enumerate(label_names)}
        setattr(config, POOLING_KEY, pooling)
        config.architectures = [ARCHITECTURE]
        config.auto_map = {
            "AutoModelForSequenceClassification": f"modeling_lcl_pooled.{ARCHITECTURE}"
        }
        return cls(config, encoder=encoder)

    @classmethod
    def from_encoder_loader(
        cls, label_names: list[str], pooling: str = "mean", problem_type: str | None = None
    ):
        """An object with ``from_pretrained(name, **kwargs)`` building a new classifier on that
        encoder, for loaders that take a class."""

        class _Loader:
            @staticmethod
            def from_pretrained(name_or_path, **kwargs):
                return cls.from_encoder(name_or_path, label_names, pooling, problem_type, **kwargs)

        return _Loader

    @classmethod
    def from_pretrained(cls, path, *args, **kwargs):
        """Load a saved folder: the encoder's config class is read from its ``config.json``."""
        config = kwargs.pop("config", None) or AutoConfig.from_pretrained(path)
        return super().from_pretrained(path, *args, config=config, **kwargs)

    def features(self, input_ids, attention_mask, token_type_ids=None, output_hidden_states=False):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states,
            **extra,
        )
        return contrastive_feature(out.last_hidden_state, attention_mask, self.pooling), out

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        **_ignored,
    ):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        feats, out = self.features(
            input_ids,
            attention_mask,
            token_type_ids,
            output_hidden_states=bool(output_hidden_states),
        )
        logits = self.classifier(feats.to(self.classifier.weight.dtype))
        loss = None
        if labels is not None and getattr(self.config, "problem_type", None) == MULTI_LABEL:
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        elif labels is not None:
            loss = F.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=out.hidden_states if output_hidden_states else None,
        )
