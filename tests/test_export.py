"""ONNX export (float32 and int8) of both kinds of saved classifier, and prediction from it."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from lcl.cli import main  # noqa: E402
from lcl.export import META_FILE, ExportError, OnnxClassifier, export_onnx, onnx_file  # noqa: E402
from lcl.inference import Classifier, predict  # noqa: E402
from lcl.modeling import load_classifier, load_tokenizer, save_classifier  # noqa: E402

LABELS = ["a", "b", "c"]
PROTOTYPES = [
    "I am so afraid of the dark and the storm outside.",
    "We won the championship, what a happy day for all of us!",
    "The train was late again and I am furious about it.",
]
TEXTS = [
    "The thunder at night scared me to death.",
    "I was terrified when the dog chased me.",
    "Our team won and we celebrated all night long.",
    "My sister's wedding was the happiest day of the year.",
    "I am so angry that the bus never came.",
    "They cancelled my flight without telling me and I was livid.",
    "ok",
    "Spiders in the basement make me shiver with fear every single time I go down there.",
    "We got a puppy today!",
    "The neighbours played loud music until 4 am and I could not sleep, so annoying.",
]


def torch_logits(model_dir, texts):
    model, tokenizer = load_classifier(str(model_dir)).eval(), load_tokenizer(str(model_dir))
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        return model(**enc).logits.numpy()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A pooled MiniLM (prototype head: a clear argmax) and a native-head MiniLM, saved by lcl."""
    root = tmp_path_factory.mktemp("export")
    tokenizer = load_tokenizer("minilm")
    pooled = load_classifier("minilm", LABELS, head="pooled", pooling="mean").eval()
    with torch.no_grad():
        enc = tokenizer(PROTOTYPES, padding=True, return_tensors="pt")
        feats, _ = pooled.features(enc["input_ids"], enc["attention_mask"])
        pooled.classifier.weight.copy_(10 * feats)
    save_classifier(pooled, tokenizer, root / "pooled-run" / "model")
    native = load_classifier("minilm", LABELS).eval()
    save_classifier(native, tokenizer, root / "native")
    return {"pooled": root / "pooled-run", "native": root / "native"}


@pytest.mark.parametrize("kind", ["pooled", "native"])
def test_float32_logits_match_pytorch(models, kind, tmp_path):
    out = export_onnx(models[kind], tmp_path / "onnx")
    assert onnx_file(out) == out / "model.onnx"
    meta = json.loads((out / META_FILE).read_text())
    assert meta["quantize"] is None and meta["max_abs_logit_diff"] < 1e-4
    clf = OnnxClassifier(out, threads=1)
    assert clf.label_names == LABELS
    model_dir = models[kind] / "model" if kind == "pooled" else models[kind]
    expected = torch_logits(model_dir, TEXTS)
    for batch_size in (64, 3):  # other batch sizes and sequence lengths than the trace's
        got = clf.logits(TEXTS, batch_size=batch_size)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    # the same predictions through lcl.inference.predict as from the PyTorch folder
    rows_onnx, rows_torch = predict(out, TEXTS[:4]), predict(Classifier(model_dir), TEXTS[:4])
    assert [r["label"] for r in rows_onnx] == [r["label"] for r in rows_torch]
    assert np.allclose([r["score"] for r in rows_onnx], [r["score"] for r in rows_torch], atol=1e-5)


def test_int8_runs_and_mostly_agrees(models):
    out = export_onnx(models["pooled"], quantize="int8")
    assert out == models["pooled"] / "onnx-int8"  # default: beside model/ in the run folder
    meta = json.loads((out / META_FILE).read_text())
    assert meta["quantize"] == "int8"
    assert (out / "model.onnx").stat().st_size < 0.8 * (  # linear layers stored as int8
        models["pooled"] / "model" / "model.safetensors"
    ).stat().st_size
    expected = torch_logits(models["pooled"] / "model", TEXTS).argmax(1)
    assert list(expected[:6]) == [0, 0, 1, 1, 2, 2]  # the prototype head makes sense
    got = OnnxClassifier(out, threads=1).logits(TEXTS).argmax(1)
    assert (got == expected).mean() >= 0.8


def test_cli_export_and_predict(models, capsys, tmp_path):
    assert main(["export", str(models["pooled"]), "--onnx"]) == 0
    onnx_dir = models["pooled"] / "onnx"
    assert "ONNX model written to" in capsys.readouterr().out
    assert main(["predict", "--model", str(onnx_dir), TEXTS[0], TEXTS[2]]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["a", "b"]
    assert all(0 < r["score"] <= 1 for r in rows)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    assert main(["predict", "--model", str(onnx_dir), "--input", str(texts)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(TEXTS)


def test_predict_from_onnx_does_not_import_torch(models):
    import subprocess
    import sys

    onnx_dir = export_onnx(models["native"], quantize="int8")
    code = (
        "import sys; from lcl.cli import main; "
        f"assert main(['predict', '--model', {str(onnx_dir)!r}, 'hello']) == 0; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] in LABELS


def test_cli_errors_are_one_line(models, tmp_path, capsys):
    cases = [
        ["export", str(models["pooled"])],  # no format
        ["export", str(tmp_path / "nope"), "--onnx"],
        ["export", str(tmp_path), "--onnx"],  # a folder without a model
        ["predict", "--model", str(tmp_path / "nope"), "hi"],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("lcl: error:") and "\n" not in err, err


def test_onnx_folder_checks(tmp_path):
    with pytest.raises(ExportError, match="no .onnx file"):
        OnnxClassifier(tmp_path)
    (tmp_path / "x.onnx").write_bytes(b"")
    (tmp_path / "y.onnx").write_bytes(b"")
    with pytest.raises(ExportError, match="several .onnx files"):
        onnx_file(tmp_path)
    with pytest.raises(ExportError, match="unknown quantization"):
        export_onnx(tmp_path, quantize="int4")
