"""CPU inference: PyTorch float32 vs ONNX Runtime float32 vs ONNX Runtime int8, one thread each.

    python benchmarks/bench_onnx.py [--model RUN_DIR/model] [--dataset NAME]
                                    [--data-dir ../shared/data] [--texts 2000] [--rounds 2]

The model folder (default: an untrained pooled MiniLM over the dataset's labels, so accuracy
means nothing then) is exported by ``lcl.export.export_onnx`` to float32 and int8 in a scratch
folder. The test split's texts, repeated to ``--texts`` when the split is smaller, are classified
by each back-end in a fresh process with one thread (``OMP_NUM_THREADS=1``), in length-sorted
batches of 64 as ``lcl predict`` does: PyTorch through ``lcl.inference`` (what
``lcl predict --model RUN/model`` runs), ONNX through ``lcl.export.OnnxClassifier`` (what
``lcl predict --model RUN/onnx`` runs, without torch). The back-ends take turns for
``--rounds`` rounds so that a slow spell of a shared machine hits all of them; the table gives
the best texts/s of the rounds (after one warm-up batch), the peak resident memory of the
process (``VmHWM``: libraries, model, activations), the ratios to PyTorch, the test
accuracy (each test text once) and the agreement with PyTorch's labels and logits.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ("pytorch-fp32", "onnx-fp32", "onnx-int8")


def peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``,
    which keeps the forking parent's peak), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(backend: str, model_dir: str, texts_file: str, batch_size: int) -> None:
    """One back-end in this process: print a JSON line with speed, memory and logits."""
    import numpy as np

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))["texts"]
    start = time.perf_counter()
    if backend == "pytorch-fp32":
        import torch

        from lcl.inference import Classifier

        torch.set_num_threads(1)
        clf = Classifier(model_dir)

        @torch.no_grad()
        def logits_of(batch_texts):
            out = np.zeros((len(batch_texts), len(clf.label_names)), dtype=np.float32)
            idx_order = sorted(range(len(batch_texts)), key=lambda i: len(batch_texts[i]))
            for s in range(0, len(batch_texts), batch_size):
                idx = idx_order[s:s + batch_size]
                enc = clf.tokenizer([batch_texts[i] for i in idx], padding=True, truncation=True,
                                    max_length=clf.max_length, return_tensors="pt")
                out[idx] = clf.model(**enc).logits.float().numpy()
            return out
    else:
        from lcl.export import OnnxClassifier

        clf = OnnxClassifier(model_dir, threads=1)

        def logits_of(batch_texts):
            return clf.logits(batch_texts, batch_size=batch_size)
    load_s = time.perf_counter() - start
    logits_of(texts[:batch_size])  # warm-up
    start = time.perf_counter()
    logits = logits_of(texts)
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    print(json.dumps({"backend": backend, "load_s": load_s, "seconds": seconds,
                      "texts_per_s": len(texts) / seconds, "peak_rss_mib": peak,
                      "labels": clf.label_names, "logits": logits.tolist()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved classifier folder (default: an untrained "
                                        "pooled MiniLM)")
    parser.add_argument("--dataset", help="default: empathetic_dialogues:4hard-a where the data "
                                          "is found, else demo")
    parser.add_argument("--data-dir", default=os.environ.get("LCL_DATA_DIR", "../shared/data"))
    parser.add_argument("--texts", type=int, default=2000, help="texts classified per back-end")
    parser.add_argument("--rounds", type=int, default=2, help="turns of each back-end")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.model_dir, args.texts_file, args.batch_size)

    import numpy as np

    from lcl.data import load_dataset
    from lcl.export import export_onnx

    found = (Path(args.data_dir) / "empathetic_dialogues").is_dir()
    name = args.dataset or ("empathetic_dialogues:4hard-a" if found else "demo")
    test = load_dataset(name, data_dir=args.data_dir if found else None)["test"]
    names = test.features["label"].names
    unique = list(test["text"])[:args.texts]
    gold_names = [names[y] for y in list(test["label"])[:args.texts]]
    texts = [unique[i % len(unique)] for i in range(args.texts)]

    scratch = Path(tempfile.mkdtemp(prefix="lcl-bench-onnx-"))
    model_dir = Path(args.model) if args.model else None
    if model_dir is None:
        from lcl.modeling import load_classifier, load_tokenizer, save_classifier

        model_dir = save_classifier(load_classifier("minilm", names, head="pooled"),
                                    load_tokenizer("minilm"), scratch / "model")
    dirs = {"pytorch-fp32": model_dir,
            "onnx-fp32": export_onnx(model_dir, scratch / "onnx"),
            "onnx-int8": export_onnx(model_dir, scratch / "onnx-int8", quantize="int8")}
    sizes = {b: sum(f.stat().st_size for f in d.iterdir()
                    if f.suffix in (".onnx", ".safetensors", ".bin")) / 2**20
             for b, d in dirs.items()}
    texts_file = scratch / "texts.json"
    texts_file.write_text(json.dumps({"texts": texts}), encoding="utf-8")

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    print(f"{name}: {len(texts)} texts ({len(unique)} distinct test texts), batch "
          f"{args.batch_size}, 1 thread, model {args.model or 'untrained pooled MiniLM'}, "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, list[dict]] = {b: [] for b in BACKENDS}
    for round_no in range(args.rounds):
        order = BACKENDS[round_no % 3:] + BACKENDS[:round_no % 3]
        for backend in order:
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", backend, "--model-dir", str(dirs[backend]),
                 "--texts-file", str(texts_file), "--batch-size", str(args.batch_size)],
                capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                sys.exit(f"{backend} failed:\n{proc.stderr[-2000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            results[backend].append(row)
            print(f"  round {round_no + 1} {backend:<13} {row['texts_per_s']:7.1f} texts/s  "
                  f"peak {row['peak_rss_mib']:6.0f} MiB  load {row['load_s']:.1f} s", flush=True)

    ref = np.array(results["pytorch-fp32"][0]["logits"])
    base_speed = max(r["texts_per_s"] for r in results["pytorch-fp32"])
    base_rss = max(r["peak_rss_mib"] for r in results["pytorch-fp32"])
    n = len(unique)
    base_acc = None
    print(f"\n{'back-end':<13} {'texts/s':>8} {'x':>5} {'peak MiB':>9} {'x':>5} {'file MiB':>9} "
          f"{'accuracy':>9} {'Δ points':>9} {'same label':>10} {'max |Δlogit|':>12}")
    for backend in BACKENDS:
        rows = results[backend]
        speed = max(r["texts_per_s"] for r in rows)
        rss = max(r["peak_rss_mib"] for r in rows)
        logits = np.array(rows[0]["logits"])
        labels = rows[0]["labels"]
        pred = [labels[i] for i in logits[:n].argmax(1)]
        acc = float(np.mean([p == g for p, g in zip(pred, gold_names)]))
        base_acc = acc if base_acc is None else base_acc
        same = float((logits.argmax(1) == ref.argmax(1)).mean())
        diff = float(np.abs(logits - ref).max())
        print(f"{backend:<13} {speed:8.1f} {speed / base_speed:5.2f} {rss:9.0f} "
              f"{rss / base_rss:5.2f} {sizes[backend]:9.1f} {acc:9.4f} "
              f"{100 * (acc - base_acc):+9.2f} {same:10.4f} {diff:12.2e}")
    print(f"\n(texts/s: best of {args.rounds} rounds; peak MiB: VmHWM of the back-end's "
          f"process; accuracy on the {n} distinct test texts)")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
