"""Architectures shared by the topographic methods (all built with random weights).

=============  ==============================================================
name           network
=============  ==============================================================
``resnet18``   torchvision ResNet-18. With a CIFAR stem (default for inputs of
               ≤ 64 px) ``conv1`` is 3×3 / stride 1 / padding 1 as in Poli et
               al. and bootphon/topography; ``maxpool`` is then dropped unless
               ``maxpool=True`` (bootphon keeps it — the ``channel`` method does).
``vgg16``      torchvision VGG-16 with batch norm (``vgg16_bn``; Poli et al. use
               it unchanged for CIFAR). ``vgg16_bn`` is an alias.
``densenet121`` torchvision DenseNet-121; CIFAR stem replaces ``features.conv0`` by
               a 3×3 / stride 1 conv (``features.pool0`` kept, as in bootphon).
``resnet20``   He et al.'s CIFAR ResNet-20 (16/32/64 channels, 3 blocks per stage,
               parameter-free "option A" shortcuts): 269,722 parameters for 10
               classes, 275,572 for 100 — Hannagan's table lists 275,572.
``smallcnn``   Small CNN with a dense penultimate layer (cortexsim's own): three
               conv–BN–ReLU–pool blocks (32, 64, 128 channels), 2×2 average pool,
               flatten (512), ``topo`` Linear(→121), ReLU, ``out`` Linear(121 → classes).
``th_mnist``   Truong & Hasson's MNIST network (``MinimalCNN_GAP_DO`` in
               tlmnhut/weight_vs_act_toponet): conv1 3×3 → 32, ReLU, max-pool 2,
               conv2 3×3 → 64, ReLU, max-pool 2, global average pool, ``fc1``
               Linear(64 → 121) (the topographic layer, hooked before its ReLU),
               ReLU, dropout 0.5, ``fc2`` Linear(121 → classes). PyTorch's default init.
``th_cifar``   Their CIFAR-10 network (``DeeperCNN_CIFAR10``): four conv 3×3–BN–ReLU
               blocks (32, 64, 128, 256), max-pool 2 after the first three, global
               average pool, ``fc1`` Linear(256 → 121), ReLU, dropout 0.5, ``fc2``.
=============  ==============================================================

Module names of ``th_mnist`` / ``th_cifar`` are the reference's (``conv1`` … ``fc2``), so
their state dicts have the same keys. The reference MNIST net takes 1 grey channel; the
offline ``digits`` set is RGB, so ``in_channels`` (default 3) decides.

Every builder takes ``num_classes`` and ``in_channels``; nothing is downloaded
(torchvision ``weights=None``).

Input normalisation (``input_norm``): cortexsim's trainer and stimuli feed images in [0, 1];
every reference normalises them by a dataset's channel mean and s.d. first. ``input_norm``
(one of :data:`INPUT_NORMS` or a ``(mean, std)`` pair) puts that step inside the network (a
forward pre-hook on the arch), so the first layer sees what the reference's first layer saw,
while the model still takes [0, 1] images from the trainer, ``record`` and Brain-Score. Off by
default: the statistics belong to the training data, which cortexsim does not fix (it trains on
``digits``, CIFAR or any image folder).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from .base import AdapterError

ARCHS: tuple[str, ...] = ("resnet18", "vgg16", "densenet121", "resnet20", "smallcnn", "th_mnist", "th_cifar")
#: Initialisations of a replaced stem conv (``stem_init``): ``"fan_out"`` Kaiming normal (fan-out, ReLU) as
#: torchvision initialises its other convs; ``"pytorch"`` the ``nn.Conv2d`` default (Kaiming uniform, a = √5),
#: as bootphon/topography's ResNet-18 conv1; ``"fan_in"`` Kaiming normal (fan-in), as its DenseNet-121 conv0.
STEM_INITS: tuple[str, ...] = ("fan_out", "pytorch", "fan_in")
_ALIASES = {"vgg16_bn": "vgg16"}
#: Channel mean and s.d. the references normalise with (``input_norm``).
INPUT_NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # TDANN (VISSL configs)
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),  # Truong & Hasson, train_cifar.py
    "cifar10_topography": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # bootphon/topography cifar.py
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),  # Reset notebooks (CIFAR-100)
    "mnist": ((0.1307,), (0.3081,)),  # Truong & Hasson, train_mnist.py
}

#: Name (inside the arch) of the final classifier Linear, used by ``features`` and topographic heads.
HEAD: dict[str, str] = {
    "resnet18": "fc",
    "vgg16": "classifier.6",
    "densenet121": "classifier",
    "resnet20": "linear",
    "smallcnn": "out",
    "th_mnist": "fc2",
    "th_cifar": "fc2",
}


#: Default areas (area -> module inside the arch) of an untrained / baseline network.
DEFAULT_AREAS: dict[str, dict[str, str]] = {
    "resnet18": {"V1": "layer2.0", "IT": "layer4.1"},
    "vgg16": {"V1": "features.22", "IT": "features.42"},
    "densenet121": {"V1": "features.denseblock2", "IT": "features.denseblock4"},
    "resnet20": {"V1": "layer2.0", "IT": "layer3.2"},
    "smallcnn": {"IT": "topo"},
    "th_mnist": {"IT": "fc1"},
    "th_cifar": {"IT": "fc1"},
}


def canonical_arch(arch: str, allowed: tuple[str, ...] = ARCHS) -> str:
    """Resolve aliases and check ``arch`` is one of ``allowed`` (AdapterError otherwise)."""
    name = _ALIASES.get(arch, arch)
    if name not in allowed:
        raise AdapterError(f"unknown or unsupported architecture {arch!r} for this method; choose one of {', '.join(allowed)}.")
    return name


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


# --------------------------------------------------------------------------- builders


def _cifar_conv(in_channels: int, out_channels: int, init: str = "fan_out") -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    if init == "fan_out":
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    elif init == "fan_in":
        nn.init.kaiming_normal_(conv.weight)
    # "pytorch": keep nn.Conv2d's own reset_parameters() (Kaiming uniform, a = √5)
    return conv


def build_arch(
    arch: str,
    num_classes: int,
    *,
    in_channels: int = 3,
    image_size: int = 32,
    cifar_stem: bool | None = None,
    maxpool: bool | None = None,
    topo_units: int | None = None,
    seed: int | None = None,
    stem_init: str = "fan_out",
    input_norm: Any = None,
) -> nn.Module:
    """Build one of :data:`ARCHS` with random weights.

    Parameters
    ----------
    arch : str
    num_classes : int
        Size of the output layer (≥ 1).
    in_channels : int
        Image channels (3 RGB, 1 grey).
    image_size : int
        Input side in px; chooses the stem when ``cifar_stem`` is None (≤ 64 px → CIFAR stem).
    cifar_stem, maxpool : bool, optional
        ResNet-18 / DenseNet-121 stem (see module docstring).
    topo_units : int, optional
        Replace the classifier Linear(F → classes) by ``Sequential(topo=Linear(F → topo_units),
        act=ReLU, out=Linear(topo_units → classes))`` — the dense topographic layer of ``ws``/``as``
        (``smallcnn``, ``th_mnist``, ``th_cifar``: the width of their own topographic layer).
    stem_init : one of :data:`STEM_INITS`
        Initialisation of the CIFAR stem conv that replaces ResNet-18's conv1 / DenseNet-121's conv0.
    seed : int, optional
        Seed of the weight initialisation (the global RNG is left untouched).
    input_norm : str or (mean, std), optional
        Normalise the input inside the network (:func:`add_input_norm`; e.g. ``"cifar10"``).
    """
    arch = canonical_arch(arch)
    if int(num_classes) != num_classes or num_classes < 1:
        raise AdapterError(f"num_classes must be a positive integer; got {num_classes!r}.")
    if stem_init not in STEM_INITS:
        raise AdapterError(f"stem_init must be one of {STEM_INITS}; got {stem_init!r}.")
    args = (arch, int(num_classes), in_channels, image_size, cifar_stem, maxpool, topo_units, stem_init)
    if seed is None:
        return add_input_norm(_build(*args), input_norm, in_channels)
    # Fork the CPU RNG so building a model does not move the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return add_input_norm(_build(*args), input_norm, in_channels)


def _build(
    arch: str, num_classes: int, in_channels: int, image_size: int, cifar_stem: bool | None, maxpool: bool | None,
    topo_units: int | None, stem_init: str = "fan_out",
) -> nn.Module:
    cifar = image_size <= 64 if cifar_stem is None else cifar_stem
    if arch == "resnet20":
        model: nn.Module = ResNet20(num_classes, in_channels)
    elif arch == "smallcnn":
        return small_cnn(num_classes, in_channels, topo_units or 121)
    elif arch in ("th_mnist", "th_cifar"):
        return th_net(arch[3:], num_classes, in_channels, topo_units or 121)
    elif arch == "resnet18":
        model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
        if cifar:
            model.conv1 = _cifar_conv(in_channels, 64, stem_init)
            if not maxpool:
                model.maxpool = nn.Identity()
        elif in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        if maxpool is False:
            model.maxpool = nn.Identity()
    elif arch == "vgg16":
        model = torchvision.models.vgg16_bn(weights=None, num_classes=num_classes)
        if in_channels != 3:
            model.features[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
    else:  # densenet121
        model = torchvision.models.densenet121(weights=None, num_classes=num_classes)
        if cifar:
            model.features.conv0 = _cifar_conv(in_channels, model.features.conv0.out_channels, stem_init)
        elif in_channels != 3:
            model.features.conv0 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    if topo_units:
        _replace_head(model, HEAD[arch], topo_units)
    return model


def _replace_head(model: nn.Module, head: str, n_units: int) -> None:
    parent_name, _, attr = head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    new = nn.Sequential(
        OrderedDict(topo=nn.Linear(old.in_features, n_units), act=nn.ReLU(inplace=True), out=nn.Linear(n_units, old.out_features))
    )
    if isinstance(parent, nn.Sequential):
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)


def topo_layer(arch: str) -> str:
    """Name (inside the arch) of the dense topographic layer added by ``topo_units``."""
    arch = canonical_arch(arch)
    own = {"smallcnn": "topo", "th_mnist": "fc1", "th_cifar": "fc1"}
    return own.get(arch, f"{HEAD[arch]}.topo")


def head_name(arch: str, topo_units: int | None = None) -> str:
    """Name of the final classifier Linear (its input is the ``features`` representation)."""
    arch = canonical_arch(arch)
    if topo_units and arch not in ("smallcnn", "th_mnist", "th_cifar"):
        return f"{HEAD[arch]}.out"
    return HEAD[arch]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


class InputNorm:
    """Forward pre-hook: (x − mean) / std per channel, from the module's ``input_mean`` / ``input_std``
    buffers (a callable object, so ``copy.deepcopy`` of a model normalises with the copy's buffers)."""

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        return ((args[0] - module.input_mean) / module.input_std, *args[1:])


def add_input_norm(net: nn.Module, input_norm: Any, in_channels: int) -> nn.Module:
    """Normalise ``net``'s input inside it: ``input_norm`` a key of :data:`INPUT_NORMS`, a (mean, std)
    pair of per-channel sequences (length 1 or ``in_channels``), or None (nothing added)."""
    if input_norm is None:
        return net
    if isinstance(input_norm, str):
        if input_norm not in INPUT_NORMS:
            raise AdapterError(f"input_norm {input_norm!r} is unknown; use one of {sorted(INPUT_NORMS)} or a (mean, std) pair.")
        input_norm = INPUT_NORMS[input_norm]
    try:
        mean, std = (torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in input_norm)
    except (TypeError, ValueError, RuntimeError):
        raise AdapterError(f"input_norm must be a name or a (mean, std) pair of per-channel numbers; got {input_norm!r}.") from None
    if len(mean) != len(std) or len(mean) not in (1, in_channels) or not (std > 0).all() or not torch.isfinite(mean).all():
        raise AdapterError(f"input_norm needs finite means and s.d. > 0 for 1 or {in_channels} channels; got {input_norm!r}.")
    net.register_buffer("input_mean", mean.reshape(1, -1, 1, 1), persistent=False)
    net.register_buffer("input_std", std.reshape(1, -1, 1, 1), persistent=False)
    net.register_forward_pre_hook(InputNorm())
    return net


#: Architecture options a method's ``build(**kwargs)`` passes on (a build with ``**kwargs`` takes these).
ARCH_OPTIONS = ("in_channels", "cifar_stem", "maxpool", "stem_init", "input_norm")


def arch_kwargs(kwargs: dict[str, Any], method: str) -> dict[str, Any]:
    """The architecture options of a method's ``**kwargs``; any other key is a TypeError."""
    known = ARCH_OPTIONS
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise TypeError(f"{method}.build got unexpected options {unknown}; architecture options are {known}.")
    return {k: kwargs[k] for k in known if k in kwargs}
