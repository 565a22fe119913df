"""How much each term of the objective moves the encoder: gradient norms and their angle.

The default recipe trains ``lam * CE + (1 - lam) * contrastive``. This takes training batches
(texts and their views, as the trainer builds them), and for each batch computes the gradient
of the two weighted terms separately, with respect to the encoder (every parameter of the main
model but its head) and to the head. It prints, per batch and on average, the norms of the two
gradients, their ratio (contrastive over CE) and their cosine. Since the weighted terms scale
with ``lam`` and ``1 - lam``, the ratio at another lam' is the printed one times
``(1 - lam') / lam' * lam / (1 - lam)``.

    OMP_NUM_THREADS=1 python benchmarks/check_term_gradients.py \
        --dataset empathetic_dialogues:4hard-a [--model minilm] [--loss lcl] [--weighting self] [--lam 0.5] \
        [--from RUN_DIR] [--batches 20] [--data-dir ../shared/data] [--seed 0]

Without ``--from`` the model is where training starts: the encoder as released and, with the
default recipe, heads set from the frozen-encoder probe. With ``--from RUN_DIR`` the main model
is that finished run's ``model/`` (the end of training). Dropout is on, as in training.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lcl.data import label_names as split_label_names  # noqa: E402
from lcl.modeling import LCLModel, load_classifier, load_tokenizer  # noqa: E402
from lcl.run_dir import RunDir  # noqa: E402
from lcl.trainer import PairedViewCollator, init_heads_from_probe, prepare_data  # noqa: E402
from lcl.training_args import TrainConfig  # noqa: E402


def flat_grads(loss: torch.Tensor, groups: list[list[torch.nn.Parameter]]) -> list[torch.Tensor]:
    """The gradient of ``loss`` on each group of parameters, flattened (one backward pass)."""
    params = [p for group in groups for p in group]
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    flat = [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)]
    out, start = [], 0
    for group in groups:
        out.append(torch.cat(flat[start : start + len(group)]))
        start += len(group)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="empathetic_dialogues:4hard-a")
    parser.add_argument("--model", default="minilm", help="the encoder (as lcl train takes it)")
    parser.add_argument("--loss", default="lcl", choices=["lcl", "scl"])
    parser.add_argument("--weighting", default=None, help="lcl: self or network (preset's)")
    parser.add_argument("--lam", type=float, default=None, help="λ (the preset's by default)")
    parser.add_argument("--from", dest="run", default=None, help="a finished run's folder")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("LCL_DATA_DIR", "../shared/data"))
    args = parser.parse_args()

    values = {
        "dataset": args.dataset,
        "model": args.model,
        "loss": args.loss,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "output_dir": "/tmp/unused",
    }
    if args.weighting:
        values["weighting"] = args.weighting
    if args.lam is not None:
        values["lam"] = args.lam
    config = TrainConfig(**values)
    ds = prepare_data(config)
    names = split_label_names(ds["train"].features)
    torch.manual_seed(config.seed)
    model = LCLModel.from_config(config, names)
    if args.run:
        model.classifier = load_classifier(str(RunDir(args.run).model_dir))
    elif config.head_init == "probe":
        init_heads_from_probe(model, config, ds, len(names))
    model.train()
    heads = {id(p) for h in model.heads()[:1] for p in h.parameters()}
    main_params = [p for p in model.classifier.parameters() if p.requires_grad]
    encoder = [p for p in main_params if id(p) not in heads]
    head = [p for p in main_params if id(p) in heads]
    collate = PairedViewCollator(load_tokenizer(config.model), config.max_length)
    order = np.random.default_rng(config.seed).permutation(len(ds["train"]))
    lam = config.lam
    print(
        f"{args.dataset}, {args.loss} (weighting {config.weighting}), λ {lam}, "
        f"{'run ' + args.run if args.run else 'start of training'}; "
        f"{len(encoder)} encoder and {len(head)} head tensors"
    )
    print("batch | enc |g_ce| | enc |g_con| | ratio | cosine | head |g_ce| | head |g_con|")
    rows = []
    for b in range(args.batches):
        idx = order[b * config.batch_size : (b + 1) * config.batch_size].tolist()
        batch = collate([ds["train"][i] for i in idx])
        parts = model.training_parts(**batch)
        e_ce, h_ce = flat_grads(lam * parts["loss_ce"], [encoder, head])
        e_con, h_con = flat_grads((1 - lam) * parts["loss_contrastive"], [encoder, head])
        row = (
            e_ce.norm().item(),
            e_con.norm().item(),
            torch.nn.functional.cosine_similarity(e_ce, e_con, dim=0).item(),
            h_ce.norm().item(),
            h_con.norm().item(),
        )
        rows.append(row)
        print(
            f"{b:5d} | {row[0]:10.4f} | {row[1]:11.4f} | {row[1] / row[0]:5.2f} | "
            f"{row[2]:6.3f} | {row[3]:11.4f} | {row[4]:12.4f}"
        )
    m = np.asarray(rows).mean(0)
    ratio = np.mean([r[1] / r[0] for r in rows])
    print(
        f" mean | {m[0]:10.4f} | {m[1]:11.4f} | {ratio:5.2f} | {m[2]:6.3f} | "
        f"{m[3]:11.4f} | {m[4]:12.4f}"
    )


if __name__ == "__main__":
    main()
