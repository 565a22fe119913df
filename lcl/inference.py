"""Batched inference with a saved classifier: ``evaluate`` on a dataset split, ``predict`` texts.

A saved model is a plain Hugging Face directory; nothing here needs the training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lcl.errors import LCLError
from lcl.export import model_thresholds
from lcl.metrics import classification_metrics, headline_metric, multilabel_metrics
from lcl.modeling import is_multilabel_model, load_classifier, load_tokenizer
from lcl.pooled_model import contrastive_feature


def length_sorted_batches(
    tokenizer, texts: list[str], batch_size: int, max_length: int, progress: str | None = None
):
    """``(indices, tokenised batch)`` over ``texts`` sorted by length, so each batch pads
    little; write results at ``indices`` to get them back in input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=progress, disable=progress is None, leave=False):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        yield idx, enc


@torch.no_grad()
def run_classifier(
    model,
    tokenizer,
    texts: list[str],
    batch_size: int = 64,
    max_length: int = 128,
    pooling: str | None = None,
    progress: str | None = None,
):
    """Class probabilities (N, C) and, if ``pooling`` is set, L2-normalised features (N, H).

    Probabilities are a softmax over the classes, or for a multi-label model
    (``problem_type: multi_label_classification``) a sigmoid per class.
    Texts are sorted by length so each batch pads little; results come back in input order.
    """
    model.eval()
    activate = torch.sigmoid if is_multilabel_model(model) else lambda x: torch.softmax(x, -1)
    device = next(model.parameters()).device
    probs = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    feats = None
    for idx, enc in length_sorted_batches(tokenizer, texts, batch_size, max_length, progress):
        enc = enc.to(device)
        out = model(**enc, output_hidden_states=pooling is not None)
        probs[idx] = activate(out.logits.float()).cpu().numpy()
        if pooling is not None:
            f = contrastive_feature(out.hidden_states[-1], enc["attention_mask"], pooling)
            if feats is None:
                feats = np.zeros((len(texts), f.shape[1]), dtype=np.float32)
            feats[idx] = f.cpu().numpy()
    return probs, feats


class Classifier:
    """A saved ``lcl`` (or any Hugging Face sequence-classification) model, ready to predict."""

    def __init__(self, model_dir: str | Path, max_length: int = 128) -> None:
        self.model_dir = str(model_dir)
        self.tokenizer = load_tokenizer(self.model_dir)
        self.model = load_classifier(self.model_dir)
        self.max_length = max_length
        self.label_names = [
            self.model.config.id2label[i] for i in range(self.model.config.num_labels)
        ]
        # a multi-label model's decision thresholds (C,), saved in its config; else None
        self.thresholds = model_thresholds(self.model.config.to_dict(), self.label_names)
        self.multilabel = self.thresholds is not None

    def predict_proba(self, texts: list[str], batch_size: int = 64, progress: str | None = None):
        probs, _ = run_classifier(
            self.model, self.tokenizer, texts, batch_size, self.max_length, progress=progress
        )
        return probs


def open_classifier(model_dir: str | Path):
    """A :class:`Classifier`, or an :class:`lcl.export.OnnxClassifier` for a folder that holds
    an ``.onnx`` file (``lcl export --onnx``)."""
    from lcl.export import OnnxClassifier, onnx_file

    return OnnxClassifier(model_dir) if onnx_file(model_dir) else Classifier(model_dir)


def predict(model, texts: list[str], batch_size: int | None = None) -> list[dict]:
    """One ``{"text", "label", "score", "probs"}`` per text, in order; ``model`` is a model
    folder, an exported ONNX folder or a loaded classifier (batches: 64, 16 for ONNX).
    A multi-label model gives ``{"text", "labels", "scores", "probs"}``: every class at or
    above its decision threshold (:func:`lcl.export.prediction_rows`)."""
    clf = model if hasattr(model, "predict_proba") else open_classifier(model)
    from lcl.export import prediction_rows

    probs = clf.predict_proba(texts, batch_size or getattr(clf, "default_batch_size", 64))
    return prediction_rows(texts, probs, clf.label_names, getattr(clf, "thresholds", None))


class LabelMismatchError(LCLError, ValueError):
    """The dataset has labels the model was not trained on."""


class UnknownSplitError(LCLError, ValueError):
    """The dataset has no split of the name asked for."""


def evaluate(
    model,
    dataset: str,
    split: str = "test",
    data_dir: str | None = None,
    batch_size: int | None = None,
    **load_kwargs,
) -> dict:
    """Metrics of a saved (or exported ONNX) model on one split of a dataset (names mapped by
    label name). A multi-label model on multi-label data is judged at its saved decision
    thresholds (:func:`~lcl.metrics.multilabel_metrics`)."""
    from lcl.data import is_multilabel, label_names, load_dataset, multi_hot

    clf = model if hasattr(model, "predict_proba") else open_classifier(model)
    ds = load_dataset(dataset, data_dir=data_dir, **load_kwargs)
    if split not in ds:
        raise UnknownSplitError(
            f"dataset {dataset!r} has no split {split!r} (has: {', '.join(ds)})"
        )
    part = ds[split]
    names = label_names(part.features)
    data_multilabel = is_multilabel(part.features)
    model_multilabel = getattr(clf, "thresholds", None) is not None
    if data_multilabel != model_multilabel:
        kinds = {True: "multi-label (several classes per text)", False: "single-label"}
        raise LabelMismatchError(
            f"the model at {clf.model_dir} is {kinds[model_multilabel]} but dataset "
            f"{dataset!r} is {kinds[data_multilabel]}"
        )
    missing = [n for n in names if n not in clf.label_names]
    if missing:
        raise LabelMismatchError(
            f"the model at {clf.model_dir} does not know the label(s) "
            f"{', '.join(missing)} of dataset {dataset!r}"
        )
    batch_size = batch_size or getattr(clf, "default_batch_size", 64)
    probs = clf.predict_proba(list(part["text"]), batch_size, progress=f"evaluate {split}")
    if model_multilabel:
        to_model = [clf.label_names.index(n) for n in names]
        rows = [[to_model[y] for y in ys] for ys in part["label"]]
        gold = multi_hot(rows, len(clf.label_names))
        metrics = multilabel_metrics(gold, probs, clf.label_names, clf.thresholds)
        metrics["headline_metric"] = headline_metric(True)
    else:
        gold = np.array([clf.label_names.index(names[y]) for y in list(part["label"])])
        metrics = classification_metrics(gold, probs, clf.label_names)
    metrics.update({"dataset": dataset, "split": split, "model": clf.model_dir})
    return metrics
