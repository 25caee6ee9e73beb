"""The networks cortexsim defines itself (registered in :mod:`adapters.archs`, whose docstring describes them).

``ResNet20`` (He et al.'s CIFAR ResNet), ``small_cnn`` (cortexsim's small CNN with a dense ``topo``
layer) and ``th_net`` (Truong & Hasson's MNIST / CIFAR-10 reference networks).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from cortexsim.errors import AdapterError


# --------------------------------------------------------------------------- ResNet-20 (CIFAR)


class _ShortcutA(nn.Module):
    """He et al.'s option-A shortcut: stride-2 subsampling and zero-padded channels (no parameters)."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock20(nn.Module):
    """3×3–BN–ReLU–3×3–BN + shortcut, ReLU (CIFAR ResNet block)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = _ShortcutA(planes) if stride != 1 or in_planes != planes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR ResNet-20 (He et al. 2016, §4.2): (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, depth: int = 20) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise AdapterError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56 ...); got {depth}.")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock20(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


# --------------------------------------------------------------------------- small CNN (Truong–Hasson)


def small_cnn(num_classes: int, in_channels: int = 3, n_topo: int = 121) -> nn.Sequential:
    """Three conv blocks, then a dense ``topo`` layer of ``n_topo`` units (the topographic grid) and ``out``."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    feats = [*block(in_channels, 32), *block(32, 64), *block(64, 128), nn.AdaptiveAvgPool2d(2), nn.Flatten()]
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(*feats),
            topo=nn.Linear(128 * 4, n_topo),
            act=nn.ReLU(inplace=True),
            out=nn.Linear(n_topo, num_classes),
        )
    )


def th_net(kind: str, num_classes: int, in_channels: int = 3, n_topo: int = 121, dropout: float = 0.5) -> nn.Sequential:
    """Truong & Hasson's reference networks: ``kind`` "mnist" (``MinimalCNN_GAP_DO``) or "cifar"
    (``DeeperCNN_CIFAR10``); ``fc1`` is the n_topo-unit topographic layer (see module docstring)."""
    widths = (32, 64) if kind == "mnist" else (32, 64, 128, 256)
    layers: list[tuple[str, nn.Module]] = []
    c_in = in_channels
    for i, c_out in enumerate(widths, start=1):
        layers.append((f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1)))
        if kind == "cifar":
            layers.append((f"bn{i}", nn.BatchNorm2d(c_out)))
        layers.append((f"relu{i}", nn.ReLU()))
        if kind == "mnist" or i < len(widths):
            layers.append((f"pool{i}", nn.MaxPool2d(2)))
        c_in = c_out
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc1", nn.Linear(c_in, n_topo)),
               ("relu", nn.ReLU()), ("dropout", nn.Dropout(dropout)), ("fc2", nn.Linear(n_topo, num_classes))]
    return nn.Sequential(OrderedDict(layers))
