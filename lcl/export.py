"""Fast CPU inference: a saved classifier as ONNX (float32 or int8), run with ONNX Runtime.

    lcl export RUN_DIR --onnx [--quantize int8] [--output DIR]
    lcl predict --model RUN_DIR/onnx "I lied to my best friend"

:func:`export_onnx` writes a folder with ``model.onnx`` (inputs ``input_ids``,
``attention_mask`` and, where the tokenizer makes them, ``token_type_ids``, each of shape
(batch, sequence) with both axes dynamic; output ``logits`` (batch, classes)), the tokenizer,
``config.json`` (with ``id2label``) and ``lcl_export.json`` (what was exported, how, and the
largest logit difference to PyTorch measured on a few texts). It handles both kinds of model
``lcl`` saves: an ``AutoModelForSequenceClassification`` folder and a
:class:`~lcl.pooled_model.PooledEncoderForSequenceClassification` (encoder + pooling + L2
normalisation + linear layer): either is traced whole, behind a wrapper that returns the logits.

``--quantize int8`` adds dynamic int8 quantization of the weights of every ``MatMul`` (the
encoder's linear layers), per output channel; activations are quantized on the fly. The
embeddings and the classification layer stay float32: quantizing them bought no speed and cost
agreement with the float32 model.

Why not optimum: ``optimum-onnx`` (and ``optimum[onnxruntime]``, whose ONNX export moved there)
requires ``transformers<4.58``, and ``lcl`` runs on transformers 5; so export goes through
``torch.onnx.export`` (its TorchScript exporter, ``dynamo=False``, which needs no ``onnxscript``
and traces these encoders exactly) and quantization through
``onnxruntime.quantization.quantize_dynamic``. Both come with the ``onnx`` extra
(``pip install "lcl[onnx]"``: ``onnx``, ``onnxruntime``).

:class:`OnnxClassifier` has :class:`~lcl.inference.Classifier`'s interface and imports neither
torch nor the model code; :func:`lcl.inference.predict` / :func:`~lcl.inference.evaluate` and
``lcl predict`` / ``lcl evaluate`` take an exported folder wherever they take a model folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lcl.errors import LCLError

ONNX_FILE = "model.onnx"
META_FILE = "lcl_export.json"
OPSET = 17
QUANTIZE = ("int8",)
# texts per batch: on one CPU thread 16 beat 64 for every back-end (activations stay in cache),
# and int8's activation scales, computed per batch, then span fewer texts (docs/RESULTS.md)
BATCH_SIZE = 16
PROBE_TEXTS = [
    "I was so scared when the lights went out during the storm.",
    "My best friend forgot my birthday again.",
    "ok",
    "We finally got the keys to our new house today and I can't stop smiling about it!",
    "The exam is tomorrow and I have not even opened the book, I am terrified of failing.",
]


# transformers' problem_type of a model with independent per-label (sigmoid) probabilities,
# and the config.json key of the decision thresholds lcl chose for it on validation
MULTI_LABEL = "multi_label_classification"
THRESHOLDS_KEY = "lcl_thresholds"
DEFAULT_THRESHOLD = 0.5


class ExportError(LCLError, ValueError):
    """The model folder cannot be exported, or the ONNX tools are not installed."""


def _need_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(
            "ONNX Runtime is not installed: pip install 'lcl[onnx]' (onnx, onnxruntime)"
        ) from None
    return onnxruntime


def find_model_dir(path: str | os.PathLike) -> Path:
    """``RUN_DIR/model`` for a run folder, else ``path`` itself if it is a model folder."""
    path = Path(path).expanduser()
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    if not path.exists():
        raise ExportError(f"{path}: no such run or model folder")
    raise ExportError(
        f"{path}: not a run folder (no model/config.json) nor a model folder (no config.json)"
    )


def onnx_file(model_dir: str | os.PathLike) -> Path | None:
    """The ``.onnx`` file of an exported folder (``model.onnx`` first), else None."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return None
    if (folder / ONNX_FILE).is_file():
        return folder / ONNX_FILE
    found = sorted(folder.glob("*.onnx"))
    if len(found) > 1:
        raise ExportError(
            f"{folder}: several .onnx files ({', '.join(f.name for f in found)}); "
            f"keep one or name it {ONNX_FILE}"
        )
    return found[0] if found else None


def default_output(path: str | os.PathLike, quantize: str | None) -> Path:
    """``RUN_DIR/onnx`` (or ``onnx-int8``); for a bare model folder, that name inside it."""
    path = Path(path).expanduser()
    name = "onnx" if quantize is None else f"onnx-{quantize}"
    return path / name


def export_onnx(
    path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    quantize: str | None = None,
    opset: int = OPSET,
) -> Path:
    """Export a run's (or a model folder's) classifier to ONNX; see the module docstring.

    ``quantize`` is None (float32) or ``"int8"``. The output folder (default
    :func:`default_output`) is written atomically and replaced if it exists.
    """
    if quantize is not None and quantize not in QUANTIZE:
        raise ExportError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZE)}")
    model_dir = find_model_dir(path)
    _need_onnxruntime()
    try:
        import onnx  # noqa: F401  (the exporter writes through it)
    except ImportError:
        raise ExportError("onnx is not installed: pip install 'lcl[onnx]'") from None
    import warnings

    import torch

    from lcl.io import atomic_directory
    from lcl.modeling import load_classifier, load_tokenizer

    output = Path(output).expanduser() if output else default_output(path, quantize)
    if output.resolve() == model_dir.resolve():
        raise ExportError(f"--output {output} is the model folder itself; choose another")
    model = load_classifier(str(model_dir)).float().eval()
    tokenizer = load_tokenizer(str(model_dir))
    names = [
        n
        for n in tokenizer.model_input_names
        if n in ("input_ids", "attention_mask", "token_type_ids")
    ]

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).logits

    wrapper = LogitsOnly(model).eval()
    example = tokenizer(PROBE_TEXTS[:2], padding=True, return_tensors="pt")  # padded rows
    with torch.no_grad():
        reference = model(
            **tokenizer(
                PROBE_TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
        ).logits.numpy()
    with atomic_directory(output) as tmp:
        target = tmp / ONNX_FILE
        float_file = tmp / "float32.onnx" if quantize else target
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and trace notes
            torch.onnx.export(
                wrapper,
                tuple(example[n] for n in names),
                str(float_file),
                input_names=names,
                output_names=["logits"],
                opset_version=opset,
                dynamic_axes={
                    **{n: {0: "batch", 1: "sequence"} for n in names},
                    "logits": {0: "batch"},
                },
                do_constant_folding=True,
                dynamo=False,
            )
        if quantize:
            _quantize_int8(float_file, target)
            float_file.unlink()
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        clf = OnnxClassifier(tmp, threads=1)
        logits = clf.logits(PROBE_TEXTS)
        diff = float(np.abs(logits - reference).max())
        agree = float((logits.argmax(1) == reference.argmax(1)).mean())
        (tmp / META_FILE).write_text(
            json.dumps(
                {
                    "source": str(model_dir.resolve()),
                    "architecture": (model.config.architectures or [type(model).__name__])[0],
                    "quantize": quantize,
                    "opset": opset,
                    "inputs": names,
                    "output": "logits",
                    "probe_texts": len(PROBE_TEXTS),
                    "max_abs_logit_diff": diff,
                    "argmax_agreement": agree,
                    "torch": torch.__version__,
                    "onnxruntime": _need_onnxruntime().__version__,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        if quantize is None and diff > 1e-3:
            raise ExportError(
                f"the ONNX model's logits differ from PyTorch's by {diff:.2g} "
                "(> 1e-3); nothing written"
            )
    return output


def _quantize_int8(source: Path, target: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice, meant for CNNs
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.setLevel(level)


def _threads(threads: int | None) -> int:
    if threads is not None:
        return threads
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0  # ONNX Runtime's default: one per core


class OnnxClassifier:
    """An exported folder, ready to predict: :class:`~lcl.inference.Classifier`'s interface
    (``label_names``, ``predict_proba``) on ONNX Runtime's CPU provider.

    ``threads``: intra-op threads (default ``$OMP_NUM_THREADS``, else one per core).
    """

    def __init__(
        self, model_dir: str | os.PathLike, max_length: int = 128, threads: int | None = None
    ) -> None:
        ort = _need_onnxruntime()
        self.model_dir = str(model_dir)
        path = onnx_file(model_dir)
        if path is None:
            raise ExportError(f"{model_dir}: no .onnx file (export one with lcl export --onnx)")
        config_file = Path(model_dir) / "config.json"
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
            id2label = {int(k): v for k, v in config["id2label"].items()}
        except (OSError, ValueError, KeyError, AttributeError) as err:
            raise ExportError(f"{config_file}: cannot read id2label ({err})") from None
        self.label_names = [id2label[i] for i in range(len(id2label))]
        self.thresholds = model_thresholds(config, self.label_names)
        self.multilabel = self.thresholds is not None
        self.max_length = max_length
        self.encode = _encoder(Path(model_dir), max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    default_batch_size = BATCH_SIZE

    def logits(self, texts: list[str], batch_size: int = BATCH_SIZE, progress: str | None = None):
        """(N, C) float32 logits; texts sorted by length so batches pad little."""
        from tqdm.auto import tqdm

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=progress, disable=progress is None, leave=False):
            idx = order[start : start + batch_size]
            enc = self.encode([texts[i] for i in idx])
            feed = {n: enc[n] for n in self.input_names}
            out[idx] = self.session.run(["logits"], feed)[0]
        return out

    def predict_proba(
        self, texts: list[str], batch_size: int = BATCH_SIZE, progress: str | None = None
    ):
        logits = self.logits(texts, batch_size, progress)
        if self.multilabel:
            return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)


def _encoder(folder: Path, max_length: int):
    """``texts -> {input_ids, attention_mask, token_type_ids}`` (int64, padded to the longest,
    truncated to ``max_length``). With a ``tokenizer.json`` the ``tokenizers`` library reads it
    directly (the same as the fast Hugging Face tokenizer, without importing transformers and
    torch: about 270 MB and seconds less per process); otherwise ``AutoTokenizer``."""
    if not (folder / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(f"{folder}: cannot load the tokenizer ({first})") from None

        def encode_hf(texts):
            enc = tokenizer(
                texts, padding=True, truncation=True, max_length=max_length, return_tensors="np"
            )
            return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}

        return encode_hf

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    pad = config.get("pad_token") or (tokenizer.padding or {}).get("pad_token") or "[PAD]"
    pad = pad.get("content") if isinstance(pad, dict) else pad
    pad_id = tokenizer.token_to_id(pad)
    if pad_id is None:
        raise ExportError(f"{folder}: the pad token {pad!r} is not in tokenizer.json")
    tokenizer.enable_padding(
        direction=config.get("padding_side", "right"),
        pad_id=pad_id,
        pad_token=pad,
        pad_type_id=config.get("pad_token_type_id", 0),
    )
    tokenizer.enable_truncation(max_length, direction=config.get("truncation_side", "right"))

    def encode(texts):
        encodings = tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    return encode


def predict(
    model_dir: str | os.PathLike | OnnxClassifier, texts: list[str], batch_size: int | None = None
) -> list[dict]:
    """:func:`lcl.inference.predict` for an exported folder, without importing torch."""
    clf = model_dir if isinstance(model_dir, OnnxClassifier) else OnnxClassifier(model_dir)
    return prediction_rows(
        texts, clf.predict_proba(texts, batch_size or BATCH_SIZE), clf.label_names, clf.thresholds
    )


def threshold_vector(thresholds: dict | float | None, label_names: list[str]) -> np.ndarray:
    """(C,) decision thresholds of a multi-label model from its ``lcl_thresholds`` (per label
    where ``use`` says ``per_label``, else the global one), a number, or None (0.5 each)."""
    if thresholds is None:
        return np.full(len(label_names), DEFAULT_THRESHOLD)
    if isinstance(thresholds, (int, float)):
        return np.full(len(label_names), float(thresholds))
    default = float(thresholds.get("global", DEFAULT_THRESHOLD))
    per_label = thresholds.get("per_label") or {}
    if thresholds.get("use", "per_label") != "per_label":
        per_label = {}
    return np.array([float(per_label.get(n, default)) for n in label_names])


def model_thresholds(config: dict, label_names: list[str]) -> np.ndarray | None:
    """The (C,) decision thresholds of a multi-label model's ``config.json`` (a dict), or None
    for a model with one class per text."""
    if config.get("problem_type") != MULTI_LABEL:
        return None
    return threshold_vector(config.get(THRESHOLDS_KEY), label_names)


def prediction_rows(texts: list[str], probs, label_names: list[str], thresholds=None) -> list[dict]:
    """One ``{"text", "label", "score", "probs"}`` per text (shared by the PyTorch and the
    ONNX ``predict``; here because this module imports neither torch nor transformers).

    With ``thresholds`` (a multi-label model's, (C,)): one ``{"text", "labels", "scores",
    "probs"}`` per text, ``labels`` every class whose probability reaches its threshold (most
    probable first; possibly none) and ``scores`` their probabilities."""
    if thresholds is not None:
        rows = []
        for text, p in zip(texts, probs):
            above = [int(c) for c in np.argsort(-p, kind="stable") if p[c] >= thresholds[c]]
            rows.append(
                {
                    "text": text,
                    "labels": [label_names[c] for c in above],
                    "scores": {label_names[c]: float(p[c]) for c in above},
                    "probs": {n: float(v) for n, v in zip(label_names, p)},
                }
            )
        return rows
    rows = []
    for text, p in zip(texts, probs):
        best = int(p.argmax())
        rows.append(
            {
                "text": text,
                "label": label_names[best],
                "score": float(p[best]),
                "probs": {n: float(v) for n, v in zip(label_names, p)},
            }
        )
    return rows
