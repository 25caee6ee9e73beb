"""MethodSpec.defaults split into train defaults (read by the trainer) and build defaults (passed to build)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_trainer_tiny import build_tiny  # noqa: E402

from cortexsim.adapters.base import _REGISTRY, AdapterError, MethodSpec, get_method, register  # noqa: E402
from cortexsim.adapters.trainer import Trainer  # noqa: E402

if "_reset_small" not in _REGISTRY:
    register(MethodSpec("_reset_small", get_method("reset").build, ("resnet20",),
                        {"arch": "resnet20", "optimizer": "adam", "lr": 1e-3, "n": 2, "m": 8, "dropout": 0.25,
                         "loss": "ce"}))
if "_size48" not in _REGISTRY:
    register(MethodSpec("_size48", build_tiny, ("tiny",), {"lam": 0.5, "lr": 0.05, "image_size": 48}))


def test_reference_defaults_are_split_as_documented():
    reset, tdann = get_method("reset"), get_method("tdann")
    assert reset.build_defaults == {"n": 4, "m": 32, "loss": "bce", "dropout": 0.5}
    assert "n" not in reset.train_defaults and reset.train_defaults["lr"] == 1e-3
    assert tdann.build_defaults == {} and tdann.train_defaults["image_size"] == 224


def test_reset_build_defaults_reach_the_network_and_method_kwargs_override_them():
    tr = Trainer("_reset_small", data="digits", steps=1, batch_size=8, device="cpu", progress=False).setup()
    net = tr.model
    assert (net.net.n, net.net.m, net.net.dropout.p, net.loss) == (2, 8, 0.25, "ce")
    assert len(net.net.subnets) == 4 and tr._build["kw"] == {"n": 2, "m": 8, "dropout": 0.25, "loss": "ce"}
    out, y = torch.randn(4, 10), torch.tensor([0, 3, 5, 9])
    assert float(net.task_loss(out, y)) == pytest.approx(float(torch.nn.functional.cross_entropy(out, y)))
    tr = Trainer("_reset_small", data="digits", steps=1, batch_size=8, device="cpu", progress=False,
                 method_kwargs={"n": 4, "loss": "bce"}).setup()
    assert (tr.model.net.n, tr.model.loss, len(tr.model.net.subnets)) == (4, "bce", 16)


def test_the_methods_image_size_is_the_default_side_for_image_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    kw = dict(arch="tiny", steps=1, batch_size=4, device="cpu", progress=False)
    tr = Trainer("_size48", data=str(tmp_path), **kw).setup()
    assert tr._build["image_size"] == 48 and tuple(tr._dataset[0][0].shape) == (3, 48, 48)
    assert Trainer("_size48", data=str(tmp_path), image_size=40, **kw).setup()._build["image_size"] == 40
    assert Trainer("_size48", data="digits", **kw).setup()._build["image_size"] == 32  # offline sets stay 32


def test_a_default_nothing_reads_is_refused_at_registration():
    with pytest.raises(AdapterError, match=r"defaults \['bogus'\] are neither trainer options nor build options"):
        register(MethodSpec("_bogus", build_tiny, ("tiny",), {"lam": 0.5, "bogus": 1}))


def test_train_defaults_are_checked_as_the_options_they_stand_for():
    with pytest.raises(AdapterError, match="method '_badlr': bad train default: lr must be a finite number > 0"):
        register(MethodSpec("_badlr", build_tiny, ("tiny",), {"lam": 0.5, "lr": -1.0}))
    with pytest.raises(AdapterError, match="bad train default: augment must be one of"):
        register(MethodSpec("_badaug", build_tiny, ("tiny",), {"augment": "mixup"}))
