"""Helpers shared by the tests: synthetic run folders and checks of a report.

* ``write_synthetic_run(run_dir, ...)``: a run directory in the ``lcl train`` format;
* ``check_report(html_path, n_runs=...)``: asserts on report.html and its PNGs;
* ``render_screenshot(html_path, png_path, profile_dir)`` and ``check_screenshot(png_path)``;
* ``free_port()`` and ``spawn_ranks(worker, path, world)``: multi-process tests on gloo.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import yaml
from matplotlib import image as mpimg

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EMOTIONS = ["joyful", "content", "proud", "angry", "annoyed", "furious"]


def _metrics_block(y_true, y_pred, probs, names):
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    entropy = float(np.mean(-np.sum(probs * np.log(np.clip(probs, 1e-12, 1)), axis=1)))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(y_true, y_pred, average="weighted", labels=labels, zero_division=0)
        ),
        "mean_entropy": entropy,
        "per_class": {
            n: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, n in enumerate(names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _fake_model(rng, y, n_classes, skill, groups):
    """Logits that are right most of the time and confuse classes within a group."""
    logits = rng.normal(0.0, 1.0, size=(len(y), n_classes))
    logits[np.arange(len(y)), y] += skill
    for i, c in enumerate(y):
        mates = [k for k in groups[c] if k != c]
        if mates:
            logits[i, mates] += skill * 0.6
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def write_synthetic_run(
    run_dir: str | Path,
    *,
    loss: str = "lcl",
    seed: int = 0,
    n_classes: int = 5,
    n_test: int = 100,
    dim: int = 32,
    epochs: int = 3,
    steps_per_epoch: int = 20,
    dataset: str = "synthetic-emotions",
    config_extra: dict | None = None,
) -> Path:
    """Write a realistic run directory (random model outputs) in the ``lcl train`` format."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1000 + seed + 17 * len(loss))
    names = (
        EMOTIONS[:n_classes]
        if n_classes <= len(EMOTIONS)
        else [f"class_{i}" for i in range(n_classes)]
    )
    half = n_classes // 2
    groups = {
        c: list(range(half)) if c < half else list(range(half, n_classes)) for c in range(n_classes)
    }
    skill = 2.2 if loss == "lcl" else 1.8

    config = {
        "dataset": dataset,
        "loss": loss,
        "weighting": "network",
        "detach_weights": False,
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "seed": seed,
        "epochs": epochs,
        "temperature": 0.3,
        "lam": 0.5,
        "learning_rate": 3e-5,
        "batch_size": 16,
        "max_length": 64,
        "output_dir": str(run),
    }
    config.update(config_extra or {})
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    y_val = rng.integers(0, n_classes, size=n_test)
    y_test = rng.integers(0, n_classes, size=n_test)
    p_val = _fake_model(rng, y_val, n_classes, skill, groups)
    p_test = _fake_model(rng, y_test, n_classes, skill, groups)
    metrics = {
        "label_names": names,
        "best_epoch": epochs - 1 if epochs > 1 else 1,
        "runtime_seconds": float(rng.uniform(60, 900)),
        "validation": _metrics_block(y_val, p_val.argmax(1), p_val, names),
        "test": _metrics_block(y_test, p_test.argmax(1), p_test, names),
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")

    with (run / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for i, (y, p) in enumerate(zip(y_test, p_test)):
            row = {
                "text": f"test sentence {i} about feeling {names[y]}",
                "label": names[y],
                "pred": names[int(p.argmax())],
                "probs": {n: float(v) for n, v in zip(names, p)},
            }
            fh.write(json.dumps(row) + "\n")

    history = []
    total_steps = epochs * steps_per_epoch
    for step in range(2, total_steps + 1, 2):
        decay = np.exp(-2.5 * step / total_steps)
        entry = {
            "epoch": step / steps_per_epoch,
            "step": step,
            "learning_rate": 3e-5 * (1 - step / total_steps),
        }
        ce = float(1.6 * decay + 0.2 + rng.normal(0, 0.04))
        entry["loss_ce"] = ce
        total = ce
        if loss in ("scl", "lcl"):
            con = float(3.0 * decay + 1.5 + rng.normal(0, 0.05))
            entry["loss_contrastive"] = con
            total = 0.5 * ce + 0.5 * con
        if loss == "lcl":
            wce = float(1.4 * decay + 0.3 + rng.normal(0, 0.04))
            entry["loss_weighting_ce"] = wce
            total += wce
        entry["loss"] = total
        history.append(entry)
        if step % steps_per_epoch == 0:
            epoch = step // steps_per_epoch
            history.append(
                {
                    "epoch": float(epoch),
                    "step": step,
                    "eval_accuracy": float(0.45 + 0.1 * epoch + rng.normal(0, 0.01)),
                    "eval_weighted_f1": float(0.43 + 0.1 * epoch),
                    "eval_loss": float(1.5 - 0.2 * epoch),
                }
            )
    history.append(
        {"epoch": float(epochs), "step": total_steps, "train_runtime": 123.4, "train_loss": 1.1}
    )
    (run / "history.json").write_text(json.dumps(history), encoding="utf-8")

    conf = np.vstack(
        [
            p_val[y_val == c].mean(0) if (y_val == c).any() else np.full(n_classes, 1 / n_classes)
            for c in range(n_classes)
        ]
    )
    (run / "confusability.json").write_text(
        json.dumps(
            {
                "label_names": names,
                "matrix": conf.tolist(),
                "source": "weighting_network" if loss == "lcl" else "main_model",
                "split": "validation",
            }
        ),
        encoding="utf-8",
    )

    protos = rng.normal(size=(n_classes, dim))
    emb = protos[y_test] + rng.normal(scale=0.9, size=(n_test, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    np.save(run / "test_embeddings.npy", emb.astype(np.float32))
    (run / "model").mkdir(exist_ok=True)
    return run


def check_png(path: Path, min_bytes: int = 5_000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert len(data) > min_bytes, f"{path.name} is only {len(data)} bytes"
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100, path.name
    flat = pixels[..., :3].reshape(-1, 3)
    assert float(flat.std()) > 0.02, f"{path.name} is (nearly) a single colour"
    assert len(np.unique((flat * 255).astype(np.uint8), axis=0)) > 10, (
        f"{path.name} has too few colours"
    )


def check_report(
    html_path: str | Path, n_runs: int = 1, label_names: list[str] | None = None
) -> list[Path]:
    """Assert report.html is self-contained and embeds every PNG written beside it; return the PNGs."""
    html_path = Path(html_path)
    assert html_path.name == "report.html" and html_path.is_file()
    text = html_path.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html>")

    stems = ["confusion_matrix", "confusability", "embeddings_tsne"]
    per_run = {s: sorted(html_path.parent.glob(f"{s}*.png")) for s in stems}
    for stem, files in per_run.items():
        assert len(files) == n_runs, (
            f"expected {n_runs} {stem} PNG(s), found {[f.name for f in files]}"
        )
    pngs = [f for files in per_run.values() for f in files]
    pngs += [html_path.parent / "per_class_f1.png", html_path.parent / "training_curves.png"]

    embedded = {}
    for m in re.finditer(
        r"<img src='data:image/png;base64,([A-Za-z0-9+/=]+)'[^>]*data-file='([^']+)'", text
    ):
        embedded[m.group(2)] = base64.b64decode(m.group(1))
    for png in pngs:
        check_png(png)
        assert png.name in embedded, f"{png.name} is not embedded in report.html"
        assert embedded[png.name] == png.read_bytes(), f"embedded {png.name} differs from the file"
    assert len(embedded) == len(pngs)

    # Self-contained: nothing fetched over the network.
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", text, re.I)
    assert "<script" not in text.lower()
    for heading in (
        "Summary",
        "Confusion matrix",
        "Per-class F1",
        "confusability",
        "t-SNE",
        "Training curves",
        "Configuration",
    ):
        assert heading in text, heading
    for name in label_names or []:
        assert name in text
    assert not list(html_path.parent.glob(".*.tmp")), "temporary files left behind"
    return pngs


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def render_screenshot(
    html_path: Path, png_path: Path, profile_dir: Path, timeout: float = 120
) -> Path:
    browser = find_chromium()
    assert browser, "no chromium binary"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile_dir}",
        "--window-size=1280,2000",
        f"--screenshot={png_path}",
        Path(html_path).resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert png_path.is_file(), (
        f"chromium wrote no screenshot (rc={proc.returncode}): {proc.stderr[-2000:]}"
    )
    return png_path


def check_screenshot(png_path: Path) -> None:
    assert png_path.read_bytes()[:8] == PNG_MAGIC
    pixels = mpimg.imread(png_path)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000, pixels.shape
    assert float(pixels.std()) > 0.05, "screenshot is blank"
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50, f"screenshot has only {len(colours)} colours"


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking (for a process group)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_ranks(worker, path: Path, world: int) -> list:
    """Runs ``worker(rank, port, str(path))`` in ``world`` processes and returns what each
    rank saved to ``path/rank{R}.pt``, in rank order."""
    import torch
    import torch.multiprocessing as mp

    mp.spawn(worker, args=(free_port(), str(path)), nprocs=world, join=True)
    return [torch.load(Path(path) / f"rank{r}.pt") for r in range(world)]
