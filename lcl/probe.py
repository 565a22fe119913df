"""``lcl probe``: the frozen-encoder baseline, a logistic regression on pooled sentence features.

The encoder is not trained. Each text becomes the checkpoint's own sentence feature (pooled as
the checkpoint was trained, see :func:`checkpoint_pooling`, then L2-normalised); a multinomial
logistic regression (scikit-learn) is fitted on the training texts for every ``C`` of the grid
and the ``C`` with the best validation accuracy is kept. It is the bar fine-tuning must clear,
and the starting point of ``--head-init probe`` (linear probing, then fine-tuning: Kumar et al.,
"Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution", ICLR 2022).

Features are cached in ``~/.cache/lcl/features`` (``LCL_CACHE_DIR``), keyed by the encoder's
weights file, pooling, length limit and the texts, so repeated probes and head initialisations
of the same data encode once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

C_GRID = (0.0625, 0.25, 1.0, 4.0, 16.0, 64.0)


def checkpoint_pooling(model_dir: str | Path) -> str | None:
    """``mean`` or ``cls`` as a sentence-transformers checkpoint declares it in
    ``1_Pooling/config.json`` (``modules.json`` names that folder); ``None`` if it says nothing."""
    folder = Path(model_dir)
    pooling_dir = folder / "1_Pooling"
    modules = folder / "modules.json"
    if modules.exists():
        try:
            for module in json.loads(modules.read_text(encoding="utf-8")):
                if module.get("type", "").endswith("Pooling"):
                    pooling_dir = folder / module.get("path", "1_Pooling")
        except (ValueError, AttributeError):
            pass
    config = pooling_dir / "config.json"
    if not config.exists():
        return None
    try:
        flags = json.loads(config.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if flags.get("pooling_mode_mean_tokens"):
        return "mean"
    if flags.get("pooling_mode_cls_token"):
        return "cls"
    return None


def _cache_dir() -> Path:
    return Path(os.environ.get("LCL_CACHE_DIR") or Path.home() / ".cache" / "lcl") / "features"


def _weights_id(model_dir: Path) -> str:
    """Identity of an encoder's weights without hashing gigabytes: names, sizes and mtimes."""
    parts = []
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return "|".join(parts) or str(model_dir.resolve())


@torch.no_grad()
def encode(
    model_name: str,
    texts: list[str],
    pooling: str,
    max_length: int = 128,
    batch_size: int = 64,
    progress: str | None = None,
    cache: bool = True,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """L2-normalised pooled features (N, H) of a frozen encoder, cached on disk.

    ``device``: where the encoder runs; None takes the GPU when there is one (the features of a
    large training split on a GPU machine's CPU took minutes while the GPU idled)."""
    from transformers import AutoModel

    from lcl.inference import length_sorted_batches
    from lcl.io import atomic_save_npy
    from lcl.modeling import _load, load_tokenizer, resolve_model_name
    from lcl.pooled_model import contrastive_feature

    resolved = Path(resolve_model_name(model_name))
    key = hashlib.sha256(
        "\n".join(
            [
                _weights_id(resolved) if resolved.is_dir() else str(resolved),
                pooling,
                str(max_length),
                *texts,
            ]
        ).encode("utf-8")
    ).hexdigest()[:24]
    path = _cache_dir() / f"{key}.npy"
    if cache and path.exists():
        return np.load(path)
    tokenizer = load_tokenizer(model_name)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = _load(AutoModel, model_name, dtype=torch.float32).eval().to(device)
    feats = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    for idx, enc in length_sorted_batches(tokenizer, texts, batch_size, max_length, progress):
        enc = enc.to(device)
        hidden = encoder(**enc).last_hidden_state
        feats[idx] = contrastive_feature(hidden, enc["attention_mask"], pooling).cpu().numpy()
    if cache:
        atomic_save_npy(path, feats)
    return feats


@dataclass
class ProbeFit:
    """The chosen logistic regression as a linear layer: ``logits = x @ weight.T + bias``
    (softmax over the classes; for multi-label data a sigmoid per class)."""

    weight: np.ndarray  # (C, H)
    bias: np.ndarray  # (C,)
    C: float
    val_score: float  # the validation value of ``metric`` at the chosen C
    search: list[dict]  # every C tried with its validation score (``val_<metric>``)
    metric: str = "accuracy"  # accuracy; macro_f1 for multi-label data

    @property
    def val_accuracy(self) -> float | None:
        return self.val_score if self.metric == "accuracy" else None


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    num_classes: int,
    c_grid=C_GRID,
    seed: int = 0,
) -> ProbeFit:
    """Multinomial logistic regression for each ``C``; the best validation accuracy wins
    (the smaller ``C`` of equals: the simpler model). Multi-label labels ((N, C) 0/1 rows):
    :func:`fit_multilabel_probe`."""
    from sklearn.linear_model import LogisticRegression

    if np.ndim(train_y) == 2:
        return fit_multilabel_probe(train_x, train_y, val_x, val_y, c_grid, seed)
    best, search = None, []
    for c in sorted(c_grid):
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        clf.fit(train_x, train_y)
        acc = float((clf.predict(val_x) == val_y).mean())
        search.append({"C": c, "val_accuracy": acc})  # the key is val_<metric>
        logger.info("probe C=%g: validation accuracy %.4f", c, acc)
        if best is None or acc > best[1]:
            best = (clf, acc, c)
    clf, acc, c = best
    weight = np.zeros((num_classes, train_x.shape[1]), dtype=np.float32)
    bias = np.full(
        num_classes, -1e4, dtype=np.float32
    )  # a class absent from train: never predicted
    if len(clf.classes_) == 2 and num_classes >= 2:  # scikit-learn keeps one row for two classes
        rows = np.stack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
        offsets = np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    else:
        rows, offsets = clf.coef_, clf.intercept_
    for k, cls in enumerate(clf.classes_):
        weight[int(cls)] = rows[k]
        bias[int(cls)] = offsets[k]
    return ProbeFit(weight=weight, bias=bias, C=c, val_score=acc, search=search)


def fit_multilabel_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    c_grid=C_GRID,
    seed: int = 0,
) -> ProbeFit:
    """One-vs-rest logistic regression (scikit-learn's ``OneVsRestClassifier``: one binary
    regression per class, its sigmoid the class's probability) for each ``C``; the best
    validation macro-F1, at the best single threshold of
    :data:`~lcl.metrics.THRESHOLD_GRID`, wins (the smaller ``C`` of equals). A class that is
    constant in train gets a zero weight and a bias that always (or never) predicts it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from lcl.metrics import choose_thresholds, multilabel_metrics

    train_y = np.asarray(train_y, dtype=int)
    val_y = np.asarray(val_y, dtype=int)
    names = [str(i) for i in range(train_y.shape[1])]
    best, search = None, []
    for c in sorted(c_grid):
        clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000, random_state=seed))
        clf.fit(train_x, train_y)
        probs = clf.predict_proba(val_x)
        threshold = choose_thresholds(val_y, probs, names)["global"]
        f1 = multilabel_metrics(val_y, probs, names, threshold)["macro_f1"]
        search.append({"C": c, "val_macro_f1": f1})
        logger.info("probe C=%g: validation macro-F1 %.4f (threshold %.2f)", c, f1, threshold)
        if best is None or f1 > best[1]:
            best = (clf, f1, c)
    clf, f1, c = best
    weight = np.zeros((train_y.shape[1], train_x.shape[1]), dtype=np.float32)
    bias = np.zeros(train_y.shape[1], dtype=np.float32)
    for k, estimator in enumerate(clf.estimators_):
        if hasattr(estimator, "coef_"):
            weight[k] = estimator.coef_[0]
            bias[k] = estimator.intercept_[0]
        else:  # a class constant in train: scikit-learn keeps a constant predictor
            bias[k] = 1e4 if train_y[:, k].any() else -1e4
    return ProbeFit(weight=weight, bias=bias, C=c, val_score=f1, search=search, metric="macro_f1")


def run_probe(config):
    """``lcl probe`` (``--loss probe``): the frozen-encoder baseline as a run folder.

    Writes ``model/`` (the encoder with the logistic regression as its pooled linear head, a
    folder ``lcl predict``/``evaluate`` and ``pipeline(..., trust_remote_code=True)`` load),
    ``config.yaml``, ``predictions.jsonl``, ``test_embeddings.npy``, ``confusability.json``
    and, last, ``metrics.json`` (with the C search under ``probe``).
    """
    import time

    from lcl.run_dir import start_run

    started = time.time()
    start = start_run(config, is_main=True)
    finished = False
    try:
        result = _run_probe(config, start, started)
        finished = True
        return result
    finally:
        start.close(ok=finished)


def _run_probe(config, start, started: float):
    import time

    from lcl.data import is_multilabel
    from lcl.data import label_names as split_label_names
    from lcl.modeling import load_classifier, load_tokenizer, resolve_pooling, save_classifier
    from lcl.trainer import TrainResult, gold_labels, prepare_data, set_thresholds, write_run_files

    run = start.run
    ds = prepare_data(config, views=False)
    label_names = split_label_names(ds["train"].features)
    multilabel = is_multilabel(ds["train"].features)
    pooling = resolve_pooling(config.pooling, config.model)
    tokenizer = load_tokenizer(config.model)
    model = load_classifier(
        config.model, label_names, head="pooled", pooling=pooling, multilabel=multilabel
    )
    start.commit()  # data and model loaded: a run replaced by --overwrite goes now
    run.remove_checkpoints()  # a probe run has none (e.g. left by an earlier fine-tuning)
    run.write_config(config)

    def feats(split):
        return encode(
            config.model,
            list(ds[split]["text"]),
            pooling,
            config.max_length,
            config.eval_batch_size,
            progress=f"features {split}",
        )

    fit_started = time.time()
    features = {split: feats(split) for split in ("train", "validation", "test")}
    num_classes = len(label_names)
    fit = fit_probe(
        features["train"],
        gold_labels(ds["train"], num_classes),
        features["validation"],
        gold_labels(ds["validation"], num_classes),
        num_classes,
        seed=config.seed,
    )
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(fit.weight))
        model.classifier.bias.copy_(torch.from_numpy(fit.bias))
    fit_seconds = time.time() - fit_started

    # the saved model computes exactly this (tests check it through the saved model)
    def probs(split):
        logits = torch.from_numpy(features[split] @ fit.weight.T + fit.bias)
        return (torch.sigmoid(logits) if multilabel else torch.softmax(logits, -1)).numpy()

    val_probs, test_probs, test_feats = probs("validation"), probs("test"), features["test"]
    thresholds = set_thresholds(
        model, gold_labels(ds["validation"], num_classes), val_probs, label_names
    )
    save_classifier(model, tokenizer, run.model_dir)
    metrics = write_run_files(
        config,
        ds,
        label_names,
        run.path,
        val_probs,
        test_probs,
        test_feats,
        val_probs,
        "main_model",
        started,
        {
            "train_runtime_seconds": round(fit_seconds, 1),
            "probe": {
                "C": fit.C,
                "pooling": pooling,
                "search": fit.search,
                **({"model": "one-vs-rest logistic regression"} if multilabel else {}),
            },
            **({"thresholds": thresholds} if thresholds else {}),
        },
    )
    return TrainResult(metrics=metrics, output_dir=run.path)
