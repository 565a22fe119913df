"""CPU inference: PyTorch float32 vs ONNX Runtime float32 vs ONNX Runtime int8, one thread each.

    python benchmarks/bench_onnx.py [--model RUN_DIR/model] [--dataset NAME]
                                    [--data-dir ../shared/data] [--texts 2000] [--chunk 128]

The model folder (default: an untrained pooled MiniLM over the dataset's labels, so accuracy
means nothing then) is exported by ``lcl.export.export_onnx`` to float32 and int8 in a scratch
folder. The test split's texts, repeated to ``--texts`` when the split is smaller, are classified
by each back-end in its own process with one thread (``OMP_NUM_THREADS=1``), in length-sorted
batches (``--batch-size``, default 64 as ``lcl predict``): PyTorch through ``lcl.inference``
(what ``lcl predict --model RUN/model`` runs), ONNX through ``lcl.export.OnnxClassifier`` (what
``lcl predict --model RUN/onnx`` runs, without torch). The three processes are alive at once
and take turns chunk by chunk (``--chunk`` texts, rotating order), so that a slow spell of a
shared machine hits all of them alike. The table gives texts/s (after one warm-up batch), the
peak resident memory of each process (``VmHWM``: libraries, model, activations), the ratios to
PyTorch, the test accuracy (each test text once) and the agreement with PyTorch's labels and
logits on all texts.
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
    """One back-end in this process, driven over stdin: ``START END`` classifies those texts and
    answers the seconds it took; ``done`` answers peak memory and all logits (JSON lines)."""
    import numpy as np

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))["texts"]
    start = time.perf_counter()
    if backend == "pytorch-fp32":
        import torch

        from lcl.inference import Classifier

        torch.set_num_threads(1)
        clf = Classifier(model_dir)

        def logits_of(batch_texts):  # lcl.inference.run_classifier, returning logits
            out = np.zeros((len(batch_texts), len(clf.label_names)), dtype=np.float32)
            order = sorted(range(len(batch_texts)), key=lambda i: len(batch_texts[i]))
            with torch.no_grad():
                for s in range(0, len(batch_texts), batch_size):
                    idx = order[s : s + batch_size]
                    enc = clf.tokenizer(
                        [batch_texts[i] for i in idx],
                        padding=True,
                        truncation=True,
                        max_length=clf.max_length,
                        return_tensors="pt",
                    )
                    out[idx] = clf.model(**enc).logits.float().numpy()
            return out
    else:
        from lcl.export import OnnxClassifier

        clf = OnnxClassifier(model_dir, threads=1)

        def logits_of(batch_texts):
            return clf.logits(batch_texts, batch_size=batch_size)

    load_s = time.perf_counter() - start
    logits_of(texts[:batch_size])  # warm-up
    logits = np.zeros((len(texts), len(clf.label_names)), dtype=np.float32)
    print(json.dumps({"ready": True, "load_s": load_s}), flush=True)
    for line in sys.stdin:
        if line.strip() == "done":
            break
        lo, hi = map(int, line.split())
        start = time.perf_counter()
        logits[lo:hi] = logits_of(texts[lo:hi])
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
    print(
        json.dumps(
            {"peak_rss_mib": peak_rss_mib(), "labels": clf.label_names, "logits": logits.tolist()}
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a saved classifier folder (default: an untrained pooled MiniLM)"
    )
    parser.add_argument(
        "--dataset", help="default: empathetic_dialogues:4hard-a where the data is found, else demo"
    )
    parser.add_argument("--data-dir", default=os.environ.get("LCL_DATA_DIR", "../shared/data"))
    parser.add_argument("--texts", type=int, default=2000, help="texts classified per back-end")
    parser.add_argument("--chunk", type=int, default=128, help="texts per turn of a back-end")
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
    unique = list(test["text"])[: args.texts]
    gold_names = [names[y] for y in list(test["label"])[: args.texts]]
    texts = [unique[i % len(unique)] for i in range(args.texts)]

    scratch = Path(tempfile.mkdtemp(prefix="lcl-bench-onnx-"))
    model_dir = Path(args.model) if args.model else None
    if model_dir is None:
        from lcl.modeling import load_classifier, load_tokenizer, save_classifier

        model_dir = save_classifier(
            load_classifier("minilm", names, head="pooled"),
            load_tokenizer("minilm"),
            scratch / "model",
        )
    dirs = {
        "pytorch-fp32": model_dir,
        "onnx-fp32": export_onnx(model_dir, scratch / "onnx"),
        "onnx-int8": export_onnx(model_dir, scratch / "onnx-int8", quantize="int8"),
    }
    sizes = {
        b: sum(
            f.stat().st_size for f in d.iterdir() if f.suffix in (".onnx", ".safetensors", ".bin")
        )
        / 2**20
        for b, d in dirs.items()
    }
    texts_file = scratch / "texts.json"
    order = np.array(sorted(range(len(texts)), key=lambda i: len(texts[i])))
    texts_file.write_text(json.dumps({"texts": [texts[i] for i in order]}), encoding="utf-8")

    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    print(
        f"{name}: {len(texts)} texts ({len(unique)} distinct test texts), batch "
        f"{args.batch_size}, 1 thread, model {args.model or 'untrained pooled MiniLM'}, "
        f"chunks of {args.chunk} texts, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    procs, results = {}, {b: {"seconds": 0.0} for b in BACKENDS}
    for backend in BACKENDS:  # all three alive at once, each its own process (memory apart)
        procs[backend] = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                backend,
                "--model-dir",
                str(dirs[backend]),
                "--texts-file",
                str(texts_file),
                "--batch-size",
                str(args.batch_size),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(backend: str, line: str) -> dict:
        proc = procs[backend]
        if line:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        answer = proc.stdout.readline()
        if not answer:
            sys.exit(f"{backend} failed (exit {proc.wait()})")
        return json.loads(answer)

    for backend in BACKENDS:
        results[backend]["load_s"] = ask(backend, "")["load_s"]
    # the texts (in length order, as lcl predict takes them) go chunk by chunk, the back-ends
    # taking turns in a rotating order: a slow spell of the shared machine hits all three alike
    bounds = list(range(0, len(texts), args.chunk)) + [len(texts)]
    for k, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        for backend in BACKENDS[k % 3 :] + BACKENDS[: k % 3]:
            results[backend]["seconds"] += ask(backend, f"{lo} {hi}")["seconds"]
    for backend in BACKENDS:
        results[backend].update(ask(backend, "done"))
        procs[backend].wait()
        logits = np.zeros((len(texts), len(results[backend]["labels"])), dtype=np.float32)
        logits[order] = np.array(results[backend]["logits"])  # back to the texts' order
        results[backend]["logits"] = logits

    ref = results["pytorch-fp32"]["logits"]
    speed = {b: len(texts) / r["seconds"] for b, r in results.items()}
    n = len(unique)
    base_acc = None
    print(
        f"\n{'back-end':<13} {'texts/s':>8} {'x':>5} {'peak MiB':>9} {'x':>5} {'file MiB':>9} "
        f"{'load s':>7} {'accuracy':>9} {'Δ points':>9} {'same label':>10} {'max |Δlogit|':>12}"
    )
    for backend in BACKENDS:
        r = results[backend]
        logits = r["logits"]
        pred = [r["labels"][i] for i in logits[:n].argmax(1)]
        acc = float(np.mean([p == g for p, g in zip(pred, gold_names)]))
        base_acc = acc if base_acc is None else base_acc
        same = float((logits.argmax(1) == ref.argmax(1)).mean())
        diff = float(np.abs(logits - ref).max())
        rss, base_rss = r["peak_rss_mib"], results["pytorch-fp32"]["peak_rss_mib"]
        print(
            f"{backend:<13} {speed[backend]:8.1f} {speed[backend] / speed['pytorch-fp32']:5.2f} "
            f"{rss:9.0f} {rss / base_rss:5.2f} {sizes[backend]:9.1f} {r['load_s']:7.1f} "
            f"{acc:9.4f} {100 * (acc - base_acc):+9.2f} {same:10.4f} {diff:12.2e}"
        )
    print(
        f"\n(peak MiB: VmHWM of the back-end's process; load s: imports and model; accuracy "
        f"on the {n} distinct test texts; same label and logits: all {len(texts)} texts)"
    )
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
