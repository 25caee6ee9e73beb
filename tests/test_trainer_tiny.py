"""A tiny topographic method for the trainer tests (registered as ``_tiny``), and tests of it.

Kept independent of the real methods so the trainer's tests stay fast and do not
depend on another module's progress. Subprocess tests (kill/resume, DDP) import
this file by path and call :func:`register_tiny`.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from cortexsim import layout as lay
from cortexsim.adapters.base import AdapterError, MethodSpec, TopographicNet, _REGISTRY, register

TINY = "_tiny"


class TinyNet(TopographicNet):
    """conv(3→w) → BN → ReLU → conv(w→w, stride 2) → ReLU → pool → dropout → linear.

    Spatial loss per layer: mean over channel pairs i<j of (cos_ij − 1/(d_ij+1))², cos the
    cosine of the flattened channel maps (batch-averaged), as in the ``channel`` method.
    """

    method = TINY

    def __init__(self, num_classes: int, *, layout: str | None = "grid2d", lam: float = 0.5,
                 layers=None, seed: int = 0, image_size: int = 32, width: int = 6) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, width, 3, padding=1), bn1=nn.BatchNorm2d(width), relu1=nn.ReLU(),
            conv2=nn.Conv2d(width, width, 3, stride=2, padding=1), relu2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), drop=nn.Dropout(0.3),
            fc=nn.Linear(width, num_classes)))
        known = ("net.conv1", "net.conv2")
        layers = list(layers or known)
        bad = [name for name in layers if name not in known]
        if bad:
            raise AdapterError(f"unknown layer(s) {bad} for arch 'tiny'; choose from {known}.")
        self.lam, self.layout = float(lam), layout or "grid2d"
        sizes = {"net.conv1": image_size, "net.conv2": (image_size + 1) // 2}
        self._acts: dict[str, torch.Tensor] = {}
        for i, name in enumerate(layers):
            pl = lay.place(self.layout, (width, sizes[name], sizes[name]))
            self.placements[name] = pl
            pos = torch.as_tensor(pl.positions, dtype=torch.float32)
            self.register_buffer(f"inv_d{i}", 1.0 / (torch.cdist(pos, pos) + 1.0))
            self.get_submodule(name).register_forward_hook(self._hook(name))
        self._layers = layers
        self.areas = {f"A{i}": n for i, n in enumerate(layers)}

    def _hook(self, name):
        def hook(_m, _inp, out):
            self._acts[name] = out
        return hook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:-2](x)

    def spatial_loss(self):
        per = {}
        for i, name in enumerate(self._layers):
            a = self._acts[name].float().transpose(0, 1).flatten(1)  # (C, N·H·W)
            a = nn.functional.normalize(a, dim=1)
            cos = a @ a.T
            iu = torch.triu_indices(len(cos), len(cos), 1, device=cos.device)
            inv = getattr(self, f"inv_d{i}")
            per[name] = ((cos - inv)[iu[0], iu[1]] ** 2).mean()
        return self.lam * sum(per.values()), per


def build_tiny(arch: str, num_classes: int, *, layout=None, lam: float = 0.5, layers=None, seed: int = 0,
               image_size: int = 32, **kw) -> TinyNet:
    if arch != "tiny":
        raise AdapterError(f"unknown arch {arch!r} for method '_tiny'; known: ('tiny',).")
    return TinyNet(num_classes, layout=layout, lam=lam, layers=layers, seed=seed, image_size=image_size, **kw)


def register_tiny() -> None:
    if TINY not in _REGISTRY:
        register(MethodSpec(TINY, build_tiny, ("tiny",), {"lam": 0.5, "optimizer": "sgd", "lr": 0.05}))


register_tiny()


def test_tiny_spatial_loss_matches_loop_reference():
    net = build_tiny("tiny", 10, lam=2.0, seed=1)
    x = torch.rand(3, 3, 8, 8)
    net(x)
    total, per = net.spatial_loss()
    for i, name in enumerate(["net.conv1", "net.conv2"]):
        a = net._acts[name].detach().double().numpy()  # (N, C, H, W)
        pos = net.placements[name].positions
        terms = []
        for p in range(a.shape[1]):
            for q in range(p + 1, a.shape[1]):
                u, v = a[:, p].ravel(), a[:, q].ravel()
                cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
                terms.append((cos - 1 / (np.linalg.norm(pos[p] - pos[q]) + 1)) ** 2)
        assert per[name].item() == pytest.approx(np.mean(terms), rel=1e-5)
    assert total.item() == pytest.approx(2.0 * sum(v.item() for v in per.values()), rel=1e-6)


def test_tiny_rejects_unknown_layer_and_arch():
    with pytest.raises(AdapterError, match="unknown layer"):
        build_tiny("tiny", 10, layers=["net.fc9"])
    with pytest.raises(AdapterError, match="unknown arch 'big'"):
        build_tiny("big", 10)
