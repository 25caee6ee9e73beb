"""augment / SimCLR view options: per-method reference defaults that reach the transforms, overridable."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).parent))
import test_trainer_tiny  # noqa: E402,F401

from cortexsim.adapters.base import AdapterError, get_method  # noqa: E402
from cortexsim.adapters.data import load_dataset  # noqa: E402
from cortexsim.adapters.trainer import Trainer  # noqa: E402

KW = dict(arch="tiny", data="lfw", steps=1, batch_size=8, device="cpu", progress=False)


def _find(transform, cls):
    return [t for t in transform.transforms if isinstance(t, cls)] + [
        u for t in transform.transforms if isinstance(t, v2.RandomApply) for u in t.transforms if isinstance(u, cls)]


def test_augment_none_gives_the_raw_images_byte_for_byte():
    tr = Trainer("_tiny", augment="none", **KW).setup()
    raw = load_dataset("lfw").base.images  # uint8 (200, 3, 32, 32)
    seen = torch.stack([tr._dataset[i][0] for i in range(len(raw))])
    assert seen.dtype == torch.float32 and torch.equal((seen * 255).round().to(torch.uint8), raw)
    x, _ = next(iter(tr._loader()))  # the batches are those images in the sampler's order
    assert any(torch.equal(x[0], seen[i]) for i in range(len(raw)))
    assert tr._resolved["augment"] == "none"


def test_the_reference_augmentation_is_each_methods():
    assert get_method("ws").train_defaults["augment"] == get_method("as").train_defaults["augment"] == "none"
    assert get_method("tdann").train_defaults["augment"] == "tdann"
    std = Trainer("_tiny", **KW).setup()  # methods without a reference entry keep crop + flip
    crop = _find(std._dataset.transform, v2.RandomCrop)
    assert std._resolved["augment"] == "standard" and crop[0].padding == [4, 4, 4, 4]
    ws = Trainer("ws", data="digits", steps=1, batch_size=8, device="cpu", progress=False).setup()
    assert ws._resolved["augment"] == "none" and not _find(ws._dataset.transform, v2.RandomHorizontalFlip)
    ws = Trainer("ws", data="digits", steps=1, batch_size=8, device="cpu", progress=False, augment="standard").setup()
    assert _find(ws._dataset.transform, v2.RandomCrop)


def test_tdann_reference_views_reach_the_transforms_and_can_be_overridden():
    kw = dict(method="tdann", data="digits", steps=1, batch_size=8, layers=["layer4.1"], device="cpu", progress=False)
    sup = Trainer(**kw).setup()
    jitter = _find(sup._dataset.transform, v2.ColorJitter)[0]
    assert jitter.brightness == pytest.approx((0.6, 1.4)) and jitter.saturation == pytest.approx((0.6, 1.4))
    assert jitter.hue == pytest.approx((-0.4, 0.4))
    assert _find(sup._dataset.transform, v2.RandomResizedCrop)
    sim = Trainer(**kw, task="simclr").setup()
    view = sim._dataset.transform.transform
    jitter, blur = _find(view, v2.ColorJitter)[0], _find(view, v2.GaussianBlur)[0]
    assert jitter.brightness == pytest.approx((0.2, 1.8)) and jitter.hue == pytest.approx((-0.2, 0.2))  # s = 1.0
    assert blur.sigma == [0.1, 2.0] and [t.p for t in view.transforms if isinstance(t, v2.RandomApply)] == [0.8, 0.5]
    assert _find(view, v2.RandomResizedCrop)[0].scale == (0.08, 1.0)
    assert sim._resolved["simclr_strength"] == 1.0 and sim._resolved["simclr_blur"] == 0.5
    own = Trainer(**kw, task="simclr", simclr_strength=0.5, simclr_blur=0.0, simclr_min_scale=0.2).setup()
    view = own._dataset.transform.transform
    assert _find(view, v2.ColorJitter)[0].brightness == pytest.approx((0.6, 1.4)) and not _find(view, v2.GaussianBlur)
    assert _find(view, v2.RandomResizedCrop)[0].scale == (0.2, 1.0)


def test_bad_augmentation_options_are_clear_errors():
    with pytest.raises(AdapterError, match="augment must be one of"):
        Trainer("_tiny", augment="mixup", **KW).setup()
    with pytest.raises(AdapterError, match="simclr_blur must be at most 1; got 1.5"):
        Trainer("_tiny", simclr_blur=1.5, **KW).setup()
