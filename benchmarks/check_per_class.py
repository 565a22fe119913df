"""Does LCL gain most on the classes CE confuses most? Per-class check over a whole study.

LCL weights each negative by how confusable its class is with the anchor's, so its gain over
CE, if any, should sit on the classes CE gets wrong most often. For every dataset and seed where
both variants finished, ``lcl.compare.compare_classes`` pairs the two runs class by class: the
test F1 change B − A, and A's miss rate on *validation* (1 − recall; read on validation so that
it does not share the test texts' noise with F1 A). This prints, per dataset, the classes'
mean F1 change and Spearman's rho between miss rate and change (seeds pooled), then the same
over every (dataset, seed, class) of the study.

    python benchmarks/check_per_class.py studies/runs/convergence ce lcl-self [--only DATASET]

Positive rho: B gains where A errs most, as the paper's mechanism predicts; negative: B loses
there. A dataset of four classes gives only four points per seed, so read its line with care.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lcl.compare import ClassChange, compare_classes, summarize_classes  # noqa: E402


def finished_pairs(study_dir: Path, variant_a: str, variant_b: str, only: list[str]):
    """(dataset, seed, run A, run B) of every cell both variants finished."""
    for dataset_dir in sorted(p for p in study_dir.iterdir() if p.is_dir()):
        if only and dataset_dir.name not in only:
            continue
        for seed_a in sorted((dataset_dir / variant_a).glob("seed*")):
            seed_b = dataset_dir / variant_b / seed_a.name
            if (seed_a / "metrics.json").exists() and (seed_b / "metrics.json").exists():
                yield dataset_dir.name, seed_a.name, seed_a, seed_b


def line(name: str, classes: list[ClassChange], seeds: int) -> str:
    result = summarize_classes(classes)
    signs = result.f1
    return (
        f"{name:28s} {seeds:2d} seed(s) {len(classes):4d} classes  F1 change "
        f"{100 * signs.mean_difference:+5.2f} (higher {signs.wins}, lower {signs.losses}, "
        f"p = {signs.p:.3g})  rho {result.rho:+.2f} (p = {result.rho_p:.3g})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study_dir", type=Path, help="a study's output folder")
    parser.add_argument("variant_a", help="the reference variant, e.g. ce")
    parser.add_argument("variant_b", help="the variant compared with it, e.g. lcl")
    parser.add_argument("--only", action="append", default=[], help="a dataset folder's name")
    args = parser.parse_args()
    by_dataset: dict[str, list[ClassChange]] = {}
    seeds: dict[str, int] = {}
    for dataset, _seed, run_a, run_b in finished_pairs(
        args.study_dir, args.variant_a, args.variant_b, args.only
    ):
        by_dataset.setdefault(dataset, []).extend(compare_classes(run_a, run_b).classes)
        seeds[dataset] = seeds.get(dataset, 0) + 1
    if not by_dataset:
        sys.exit(f"no dataset has finished {args.variant_a} and {args.variant_b} runs to pair")
    print(f"{args.variant_b} against {args.variant_a} in {args.study_dir}, class by class:")
    for dataset, classes in by_dataset.items():
        print(line(dataset, classes, seeds[dataset]))
    pooled = [c for classes in by_dataset.values() for c in classes]
    print(line("all", pooled, sum(seeds.values())))


if __name__ == "__main__":
    main()
