"""The objective registry: names, lazy builders, and what adding an objective takes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from lcl import objectives
from lcl.losses import ContrastiveLoss, ContrastiveMemory, SupConLoss
from lcl.objectives import LOSSES, OBJECTIVES, TRAINED_LOSSES, build_objective, get_objective
from lcl.objectives.base import Objective
from lcl.training_args import TrainConfig


def test_losses_are_the_registry_names_and_probe_is_not_trained():
    assert LOSSES == tuple(OBJECTIVES) and set(LOSSES) >= {"ce", "scl", "lcl", "probe"}
    assert "probe" in LOSSES and "probe" not in TRAINED_LOSSES
    from lcl import training_args

    assert training_args.LOSSES is LOSSES
    with pytest.raises(ValueError, match="trains no network"):
        get_objective("probe")
    with pytest.raises(ValueError, match="unknown objective"):
        get_objective("mse")


def test_training_args_import_stays_cheap():
    code = "import sys, lcl.training_args; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", TRAINED_LOSSES)
def test_every_registered_objective_builds(name):
    objective = build_objective(TrainConfig(loss=name, memory_size=4))
    assert isinstance(objective, Objective)
    if objective.uses_features:
        assert isinstance(objective.contrastive, ContrastiveMemory)


class Margin(Objective):
    """A made-up objective for the test: CE plus a margin on the contrastive features."""

    uses_features = True

    def build_contrastive(self):
        return self.with_memory(SupConLoss(self.config.temperature))

    def loss_parts(self, logits, labels, features=None, weight_logits=None):
        ce = F.cross_entropy(logits.float(), labels)
        margin = (1 - features.norm(dim=1)).abs().mean() + self.contrastive(features, labels)
        return {"loss": ce + margin, "loss_ce": ce, "loss_margin": margin}


def test_a_new_objective_is_one_class_and_one_registry_line(monkeypatch):
    from lcl.modeling import LCLModel

    monkeypatch.setitem(objectives.OBJECTIVES, "margin", f"{__name__}:Margin")
    config = TrainConfig(loss="ce")
    config.loss = "margin"  # a real entry would be in LOSSES (they are the registry's names)
    model = LCLModel.from_config(config, ["a", "b"]).train()
    assert isinstance(model.objective, Margin) and model.weighting is None
    texts = ["a happy text", "a sad text", "happy again", "sad again"]
    from lcl.modeling import load_tokenizer

    enc = load_tokenizer(config.model)(texts, padding=True, return_tensors="pt")
    out = model(**enc, labels=torch.tensor([0, 1, 0, 1]))
    assert set(out["loss_parts"]) == {"loss_ce", "loss_margin"}
    assert not any(v.requires_grad for v in out["loss_parts"].values())
    out["loss"].backward()


def test_the_memory_wraps_any_contrastive_loss_through_its_public_method():
    class Halved(ContrastiveLoss):
        def forward(self, features, labels):
            return self.loss_and_batch(features, labels)[0] / 2

    torch.manual_seed(0)
    feats, labels = torch.randn(8, 4), torch.tensor([0, 1, 2, 3] * 2)
    memory = ContrastiveMemory(Halved(0.3), memory_size=0)
    assert torch.allclose(memory(feats, labels), 2 * Halved(0.3)(feats, labels))
    with pytest.raises(TypeError, match="ContrastiveLoss"):
        ContrastiveMemory(torch.nn.MSELoss(), memory_size=4)
