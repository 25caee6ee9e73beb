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

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision
from torch import nn

from cortexsim.errors import AdapterError
from cortexsim.modules import close_matches
from cortexsim.seeding import seeded

from .cnns import BasicBlock20, ResNet20, small_cnn, th_net  # noqa: F401  (old import path: adapters.archs)

#: Initialisations of a replaced stem conv (``stem_init``): ``"fan_out"`` Kaiming normal (fan-out, ReLU) as
#: torchvision initialises its other convs; ``"pytorch"`` the ``nn.Conv2d`` default (Kaiming uniform, a = √5),
#: as bootphon/topography's ResNet-18 conv1; ``"fan_in"`` Kaiming normal (fan-in), as its DenseNet-121 conv0.
STEM_INITS: tuple[str, ...] = ("fan_out", "pytorch", "fan_in")
#: Channel mean and s.d. the references normalise with (``input_norm``).
INPUT_NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # TDANN (VISSL configs)
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),  # Truong & Hasson, train_cifar.py
    "cifar10_topography": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # bootphon/topography cifar.py
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),  # Reset notebooks (CIFAR-100)
    "mnist": ((0.1307,), (0.3081,)),  # Truong & Hasson, train_mnist.py
}

# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class ArchOptions:
    """What a registered builder is given besides ``num_classes`` (chosen by :func:`build_arch`).

    in_channels : image channels (3 RGB, 1 grey)
    cifar : use the small-image stem (3×3 / stride 1 first conv) where the arch has a choice
    maxpool : keep (True) / drop (False) the stem max-pool; None: the arch's own rule
    stem_init : one of :data:`STEM_INITS`, the init of a replaced stem conv
    topo_units : width of the dense topographic layer (an arch with its own, ``topo_layer`` set, builds
        it this wide; any other gets its head replaced by ``topo → ReLU → out`` after building)
    """

    in_channels: int = 3
    cifar: bool = True
    maxpool: bool | None = None
    stem_init: str = "fan_out"
    topo_units: int | None = None


@dataclass(frozen=True)
class ArchSpec:
    """Registry entry of an architecture (see :func:`register_arch`)."""

    name: str
    builder: Callable[[int, ArchOptions], nn.Module]
    head: str
    default_areas: dict[str, str]
    layers: tuple[str, ...] = ()
    layer_areas: dict[str, str] = field(default_factory=dict)
    topo_layer: str | None = None
    aliases: tuple[str, ...] = ()


_ARCHS: dict[str, ArchSpec] = {}
_ALIASES: dict[str, str] = {}


def register_arch(
    name: str,
    *,
    head: str,
    default_areas: dict[str, str],
    layers: Sequence[str] = (),
    layer_areas: dict[str, str] | None = None,
    topo_layer: str | None = None,
    aliases: Sequence[str] = (),
) -> Callable[[Callable[[int, ArchOptions], nn.Module]], Callable[[int, ArchOptions], nn.Module]]:
    """Register ``builder(num_classes, opts: ArchOptions) -> nn.Module`` as architecture ``name``
    (as torchvision's ``register_model``); every method taking registered archs then accepts it.

    Parameters
    ----------
    name : str
        The ``arch`` argument of every method's ``build`` / ``cortexsim train --arch``.
    head : str
        Module name of the final classifier ``nn.Linear`` (its input is ``features()``).
    default_areas : dict area -> module name
        Areas of a baseline / untrained network (``{"V1": "layer2.0", "IT": "layer4.1"}``).
    layers : sequence of str
        Conv2d modules a conv-level method (``channel``) regularises by default; empty: it does not
        take this arch.
    layer_areas : dict area -> module name, optional
        Areas among ``layers`` (``channel`` / ``topoloss`` exports).
    topo_layer : str, optional
        The arch's own dense topographic Linear (``ws`` / ``as``), built ``opts.topo_units`` wide.
        None: ``topo_units`` replaces the head by ``Sequential(topo, act, out)``.
    aliases : sequence of str
        Other names for it (``vgg16_bn``).

    Examples
    --------
    >>> @register_arch("tiny", head="fc", default_areas={"IT": "conv"})
    ... def tiny(num_classes, opts):
    ...     return nn.Sequential(OrderedDict(conv=nn.Conv2d(opts.in_channels, 8, 3), pool=nn.AdaptiveAvgPool2d(1),
    ...                                      flat=nn.Flatten(), fc=nn.Linear(8, num_classes)))
    """
    if name in _ARCHS or name in _ALIASES:
        raise AdapterError(f"architecture {name!r} is already registered.")

    def decorate(builder: Callable[[int, ArchOptions], nn.Module]) -> Callable[[int, ArchOptions], nn.Module]:
        _ARCHS[name] = ArchSpec(name, builder, head, dict(default_areas), tuple(layers), dict(layer_areas or {}),
                                topo_layer, tuple(aliases))
        _ALIASES.update({a: name for a in aliases})
        return builder

    return decorate


def arch_names() -> tuple[str, ...]:
    """Names of the registered architectures, in registration order (aliases not included)."""
    return tuple(_ARCHS)


def get_arch(arch: str, allowed: Sequence[str] | None = None) -> ArchSpec:
    """The :class:`ArchSpec` of ``arch`` (or an alias); AdapterError with close matches if it is not
    registered or not among ``allowed`` (a method's supported archs; default all registered)."""
    name = _ALIASES.get(arch, arch) if isinstance(arch, str) else arch
    choices = tuple(_ARCHS) if allowed is None else tuple(allowed)
    if name not in _ARCHS or name not in choices:
        close = close_matches(str(arch), [*choices, *(a for a, n in _ALIASES.items() if n in choices)])
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        what = "unknown architecture" if name not in _ARCHS else "unsupported architecture"
        raise AdapterError(f"{what} {arch!r}{' for this method' if name in _ARCHS else ''}.{hint} "
                           f"Choose one of {', '.join(choices)}"
                           f"{'' if allowed is not None else ' (or register one with adapters.archs.register_arch)'}.")
    return _ARCHS[name]


def canonical_arch(arch: str, allowed: Sequence[str] | None = None) -> str:
    """Resolve aliases and check ``arch`` is registered and one of ``allowed`` (AdapterError otherwise)."""
    return get_arch(arch, allowed).name


def input_channels(model: nn.Module, default: int = 3) -> int:
    """Image channels ``model`` takes: its first Conv2d's ``in_channels`` (else ``default``).

    Used to probe a network with a zero image of the right shape (1-channel archs take (N, 1, H, W)).
    """
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return default if conv is None else int(conv.in_channels)


# --------------------------------------------------------------------------- registered builders


def _cifar_conv(in_channels: int, out_channels: int, init: str = "fan_out") -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    if init == "fan_out":
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    elif init == "fan_in":
        nn.init.kaiming_normal_(conv.weight)
    # "pytorch": keep nn.Conv2d's own reset_parameters() (Kaiming uniform, a = √5)
    return conv


_RESNET18_AREAS = {"V1": "layer2.1.conv2", "IT": "layer4.1.conv2"}


@register_arch("resnet18", head="fc", default_areas={"V1": "layer2.0", "IT": "layer4.1"},
               layers=("conv1", "layer1.1.conv2", "layer2.1.conv2", "layer3.1.conv2", "layer4.1.conv2"),
               layer_areas=_RESNET18_AREAS)
def _resnet18(num_classes: int, opts: ArchOptions) -> nn.Module:
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if opts.cifar:
        model.conv1 = _cifar_conv(opts.in_channels, 64, opts.stem_init)
        if not opts.maxpool:
            model.maxpool = nn.Identity()
    elif opts.in_channels != 3:
        model.conv1 = nn.Conv2d(opts.in_channels, 64, 7, 2, 3, bias=False)
    if opts.maxpool is False:
        model.maxpool = nn.Identity()
    return model


_VGG_CONVS = (0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40)


@register_arch("vgg16", head="classifier.6", default_areas={"V1": "features.22", "IT": "features.42"},
               layers=tuple(f"features.{i}" for i in _VGG_CONVS), layer_areas={"V1": "features.20", "IT": "features.40"},
               aliases=("vgg16_bn",))
def _vgg16(num_classes: int, opts: ArchOptions) -> nn.Module:
    model = torchvision.models.vgg16_bn(weights=None, num_classes=num_classes)
    if opts.in_channels != 3:
        model.features[0] = nn.Conv2d(opts.in_channels, 64, 3, padding=1)
    return model


@register_arch("densenet121", head="classifier",
               default_areas={"V1": "features.denseblock2", "IT": "features.denseblock4"},
               layers=("features.conv0", "features.denseblock1.denselayer6.conv2", "features.denseblock2.denselayer12.conv2",
                       "features.denseblock3.denselayer24.conv2", "features.denseblock4.denselayer16.conv2"),
               layer_areas={"V1": "features.denseblock2.denselayer12.conv2", "IT": "features.denseblock4.denselayer16.conv2"})
def _densenet121(num_classes: int, opts: ArchOptions) -> nn.Module:
    model = torchvision.models.densenet121(weights=None, num_classes=num_classes)
    if opts.cifar:
        model.features.conv0 = _cifar_conv(opts.in_channels, model.features.conv0.out_channels, opts.stem_init)
    elif opts.in_channels != 3:
        model.features.conv0 = nn.Conv2d(opts.in_channels, 64, 7, 2, 3, bias=False)
    return model


@register_arch("resnet20", head="linear", default_areas={"V1": "layer2.0", "IT": "layer3.2"})
def _resnet20(num_classes: int, opts: ArchOptions) -> nn.Module:
    return ResNet20(num_classes, opts.in_channels)


@register_arch("smallcnn", head="out", default_areas={"IT": "topo"}, topo_layer="topo")
def _smallcnn(num_classes: int, opts: ArchOptions) -> nn.Module:
    return small_cnn(num_classes, opts.in_channels, opts.topo_units or 121)


@register_arch("th_mnist", head="fc2", default_areas={"IT": "fc1"}, topo_layer="fc1")
def _th_mnist(num_classes: int, opts: ArchOptions) -> nn.Module:
    return th_net("mnist", num_classes, opts.in_channels, opts.topo_units or 121)


@register_arch("th_cifar", head="fc2", default_areas={"IT": "fc1"}, topo_layer="fc1")
def _th_cifar(num_classes: int, opts: ArchOptions) -> nn.Module:
    return th_net("cifar", num_classes, opts.in_channels, opts.topo_units or 121)


#: The built-in architectures (registered above); :func:`arch_names` also lists ones registered later.
ARCHS: tuple[str, ...] = arch_names()
#: Old tables, derived from the registry (built-in archs): classifier head / default areas per arch.
HEAD: dict[str, str] = {a: s.head for a, s in _ARCHS.items()}
DEFAULT_AREAS: dict[str, dict[str, str]] = {a: dict(s.default_areas) for a, s in _ARCHS.items()}


def build_arch(
    arch: str,
    num_classes: int,
    *,
    in_channels: int = 3,
    image_size: int | tuple[int, int] = 32,
    cifar_stem: bool | None = None,
    maxpool: bool | None = None,
    topo_units: int | None = None,
    seed: int | None = None,
    stem_init: str = "fan_out",
    input_norm: Any = None,
) -> nn.Module:
    """Build a registered architecture (:func:`arch_names`) with random weights.

    Parameters
    ----------
    arch : str
    num_classes : int
        Size of the output layer (≥ 1).
    in_channels : int
        Image channels (3 RGB, 1 grey).
    image_size : int or (H, W)
        Input size in px; chooses the stem when ``cifar_stem`` is None (longer side ≤ 64 px → CIFAR stem).
    cifar_stem, maxpool : bool, optional
        ResNet-18 / DenseNet-121 stem (see module docstring).
    topo_units : int, optional
        Replace the classifier Linear(F → classes) by ``Sequential(topo=Linear(F → topo_units),
        act=ReLU, out=Linear(topo_units → classes))`` — the dense topographic layer of ``ws``/``as``
        (archs with their own topographic layer, ``smallcnn``, ``th_mnist``, ``th_cifar``: its width).
    stem_init : one of :data:`STEM_INITS`
        Initialisation of the CIFAR stem conv that replaces ResNet-18's conv1 / DenseNet-121's conv0.
    seed : int, optional
        Seed of the weight initialisation (the global RNG is left untouched).
    input_norm : str or (mean, std), optional
        Normalise the input inside the network (:func:`add_input_norm`; e.g. ``"cifar10"``).
    """
    spec = get_arch(arch)
    if int(num_classes) != num_classes or num_classes < 1:
        raise AdapterError(f"num_classes must be a positive integer; got {num_classes!r}.")
    if stem_init not in STEM_INITS:
        raise AdapterError(f"stem_init must be one of {STEM_INITS}; got {stem_init!r}.")
    if int(in_channels) != in_channels or in_channels < 1:
        raise AdapterError(f"in_channels must be a positive integer (3 RGB, 1 grey); got {in_channels!r}.")
    side = max(image_size) if isinstance(image_size, (tuple, list)) else image_size
    opts = ArchOptions(int(in_channels), side <= 64 if cifar_stem is None else bool(cifar_stem), maxpool, stem_init,
                       topo_units)
    # seeded() forks the CPU RNG, so building a model does not move the caller's random stream.
    with seeded(seed) if seed is not None else contextlib.nullcontext():
        model = spec.builder(int(num_classes), opts)
    if topo_units and spec.topo_layer is None:
        _replace_head(model, spec.head, topo_units)
    return add_input_norm(model, input_norm, int(in_channels))


def _replace_head(model: nn.Module, head: str, n_units: int) -> None:
    parent_name, _, attr = head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    new = nn.Sequential(
        OrderedDict(topo=nn.Linear(old.in_features, n_units), act=nn.ReLU(inplace=True), out=nn.Linear(n_units, old.out_features))
    )
    if isinstance(parent, nn.Sequential) and attr.isdigit():  # vgg's classifier.6; named children use setattr
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)


def topo_layer(arch: str) -> str:
    """Name (inside the arch) of the dense topographic layer: the arch's own, or the one ``topo_units`` adds."""
    spec = get_arch(arch)
    return spec.topo_layer or f"{spec.head}.topo"


def head_name(arch: str, topo_units: int | None = None) -> str:
    """Name of the final classifier Linear (its input is the ``features`` representation)."""
    spec = get_arch(arch)
    return f"{spec.head}.out" if topo_units and spec.topo_layer is None else spec.head


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
