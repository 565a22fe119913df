"""Weight-space ensembling check (WiSE-FT, Wortsman et al., CVPR 2022) on finished runs.

A run of the default recipe starts from its probe (``--head-init probe``), so the probe's
classifier and the fine-tuned one share an architecture and their weights can be mixed:
``alpha * fine-tuned + (1 - alpha) * probe``. This prints validation and test accuracy for each
alpha and the alpha that validation chooses (docs/RESULTS.md, recipe search round 4).

    OMP_NUM_THREADS=1 python benchmarks/check_wise_ft.py RUN_DIR PROBE_RUN_DIR \
        [--alphas 0.25 0.5 0.75] [--data-dir ../shared/data]

alpha 0 and 1 are read from the two runs' metrics.json; the others are evaluated here on the
run's validation and test splits (single-label runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lcl.data import load_dataset  # noqa: E402
from lcl.inference import Classifier, run_classifier  # noqa: E402
from lcl.run_dir import RunDir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("probe", type=Path)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    parser.add_argument("--data-dir", default=os.environ.get("LCL_DATA_DIR", "../shared/data"))
    args = parser.parse_args()
    config = RunDir(args.run).read_config()
    ds = load_dataset(config["dataset"], args.data_dir, seed=config.get("seed", 0))
    ends = {0.0: args.probe, 1.0: args.run}
    curve = {}
    for alpha, run in ends.items():
        metrics = json.loads((run / "metrics.json").read_text())
        curve[alpha] = (metrics["validation"]["accuracy"], metrics["test"]["accuracy"])
    tuned, probe = Classifier(args.run / "model"), Classifier(args.probe / "model")
    end = {k: v.clone() for k, v in tuned.model.state_dict().items()}
    start = probe.model.state_dict()

    def accuracy(split: str) -> float:
        texts, gold = list(ds[split]["text"]), np.asarray(ds[split]["label"])
        probs, _ = run_classifier(tuned.model, tuned.tokenizer, texts, 64, config["max_length"])
        return float((probs.argmax(1) == gold).mean())

    for alpha in args.alphas:
        mixed = {
            k: torch.lerp(start[k].float(), v.float(), alpha).to(v.dtype)
            if v.is_floating_point()
            else v
            for k, v in end.items()
        }
        tuned.model.load_state_dict(mixed)
        curve[alpha] = (accuracy("validation"), accuracy("test"))
        print(
            f"alpha {alpha:g}: validation {100 * curve[alpha][0]:.1f}  test "
            f"{100 * curve[alpha][1]:.1f}",
            flush=True,
        )
    # of equal validation accuracies the larger alpha (closer to the fine-tuned model)
    chosen = max(sorted(curve), key=lambda a: (round(curve[a][0], 9), a))
    print(
        json.dumps(
            {
                "run": str(args.run),
                "curve": {f"{a:g}": [round(100 * v, 2) for v in curve[a]] for a in sorted(curve)},
                "chosen_on_validation": chosen,
                "test_change": round(100 * (curve[chosen][1] - curve[1.0][1]), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
