"""Method hooks: MethodSpec.before_training(ctx) runs once before the first step of a new run (not on resume)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_trainer_tiny import build_tiny  # noqa: E402

from cortexsim.adapters.base import _REGISTRY, AdapterError, MethodSpec, get_method, register  # noqa: E402
from cortexsim.adapters.trainer import Trainer  # noqa: E402

CALLS: list[dict] = []


def _hook(ctx):
    # Sees the untrained net and the augmented data; what it returns is saved with the run.
    CALLS.append({"task": ctx.task, "n": len(ctx.dataset), "seed": ctx.config.seed,
                  "w": ctx.net.net.conv1.weight.detach().clone()})
    with torch.no_grad():
        ctx.net.net.conv1.weight.zero_()  # an effect the run must keep (as TDANN's swapped positions)
    return {"hook_report": {"images": len(ctx.dataset)}}


if "_hooked" not in _REGISTRY:
    register(MethodSpec("_hooked", build_tiny, ("tiny",), {"lam": 0.5, "optimizer": "sgd", "lr": 0.05},
                        before_training=_hook))


def test_before_training_runs_once_and_its_report_is_saved(tmp_path):
    CALLS.clear()
    kw = dict(arch="tiny", data="lfw", batch_size=8, device="cpu", progress=False, checkpoint_every=2, log_every=2)
    tr = Trainer("_hooked", steps=2, out=tmp_path, **kw).setup()
    assert len(CALLS) == 1 and (CALLS[0]["task"], CALLS[0]["n"], CALLS[0]["seed"]) == ("supervised", 200, 0)
    assert CALLS[0]["w"].abs().sum() > 0 and tr.model.net.conv1.weight.abs().sum() == 0
    tr.fit()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["resolved"]["hook_report"] == {"images": 200}
    Trainer.resume(tmp_path, steps=4).fit()  # resumed at step 2: the hook's effect is in the checkpoint
    assert len(CALLS) == 1


def test_tdann_swapopt_is_tdanns_hook_and_a_method_option():
    spec = get_method("tdann")
    assert spec.train_options == ("swapopt", "swapopt_images", "swapopt_reference")
    assert spec.before_training.__module__ == "cortexsim.adapters.tdann_positions"
    with pytest.raises(AdapterError, match="swapopt_images is an option of method.s. tdann .*'_hooked' does not"):
        Trainer("_hooked", arch="tiny", data="lfw", steps=1, swapopt_images=8).setup()
