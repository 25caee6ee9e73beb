"""``topoloss``: TopoLoss (Deb, Deb & Murty 2025, "TopoNets", ICLR; PyPI ``topoloss``).

Each regularised layer's output channels (Conv2d) or units (Linear) are laid on an h × w
cortical sheet, h the largest divisor of C that is ≤ ⌊√C⌋ and w = C / h, channel k at row
k // w, column k mod w (:func:`cortexsim.layout.topoloss_sheet`). Take each unit's incoming
weight vector (in_channels · kh · kw entries for a conv), blur the sheet of weight vectors by
bilinear down-sampling by ``factor`` along each side (``F.interpolate(scale_factor=1/f)``) and
up-sampling back to h × w, and penalise

    L_l = 1 − mean over units of cos(w_unit, blurred w_unit),

so a unit's weights should match their local average on the sheet. The loss is
L = L_task + λ · mean over layers of (τ_l · L_l) — the package's ``TopoLoss.compute``
(mean of the per-layer ``scale``-weighted losses) times λ (default 1, so the spatial term equals
the package's value).

Defaults and how they were chosen
---------------------------------
* **Layers**: every ``nn.Conv2d`` of the network (TopoNets' ResNet checkpoints are
  ``all_topo``), or every ``nn.Linear`` except the classifier head when it has no conv;
  any conv / linear modules by name with ``layers``.
* **factor** 3.0 per side (the package's own tests and first README; its current README shows 8
  on ResNet's 1000-unit fc), capped at each side of small sheets (the package refuses a factor
  larger than the side). **scale** τ = 1.0 (the package's default; the published ResNet-18
  checkpoints use τ ∈ {0.5, 1, 5, 10, 20, 50}). Both accept a number or a dict layer → value.
* **Recipe**: the package has none (TopoNets "closely followed the standard training
  procedures" of each model); the trainer's defaults are the baseline's (SGD 0.1 per 256,
  momentum 0.9, weight decay 5e-4), so a baseline and a TopoLoss run differ only by the loss.
* **Architecture**: any registered arch (:func:`adapters.archs.arch_names`: ResNet-18 with the CIFAR stem on
  small images, …) or any classification model of ``torchvision.models`` by name, random weights.

Differences from the package: none in the loss (tested to 1e-5 against it, value and gradient,
where it is installed). Its factor check is mis-indexed (it compares ``factor_h`` with the number
of weight entries and ``factor_w`` with the sheet's height, on the (1, E, h, w) tensor), so it
refuses e.g. factor 5 along the 5-wide side of a 2 × 5 sheet; here each factor is capped at its
own side. The positions of the sheet are recorded into Sheets like every method's
(1 mm between neighbouring units by default, ``spacing_mm``); the package's bias and input-side
variants (``LaplacianPyramidOnBias``/``OnInput``) and τ schedulers are not offered.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from cortexsim.layout import topoloss_sheet_shape
from cortexsim.modules import close_matches
from cortexsim.seeding import seeded

from .archs import ARCHS, ArchSpec, add_input_norm, arch_kwargs, arch_names, build_arch, get_arch
from .base import AdapterError, MethodSpec, TopographicNet, register
from .hooks import PREFIX, HookedNet, check_lam, check_layout, float32_loss, place_layers, resolve_layers

INTERPOLATIONS: tuple[str, ...] = ("bilinear", "nearest")


def sheet_of(weight: torch.Tensor) -> torch.Tensor:
    """(C, ...) weights -> (1, E, h, w) sheet of incoming weight vectors (E = entries per unit)."""
    h, w = topoloss_sheet_shape(weight.shape[0])
    return weight.reshape(h, w, -1).permute(2, 0, 1).unsqueeze(0)


@float32_loss
def topoloss(weight: torch.Tensor, factor_h: float = 3.0, factor_w: float = 3.0, interpolation: str = "bilinear") -> torch.Tensor:
    """TopoLoss of one layer: 1 − mean cosine similarity of each unit's weights and their blurred copy.

    Parameters
    ----------
    weight : (C, in_features) Linear or (C, C_in, kh, kw) Conv2d weight (computed in float32)
    factor_h, factor_w : down-sampling factors of the h × w sheet (≤ h, ≤ w)
    interpolation : "bilinear" | "nearest"

    Returns
    -------
    0-dim tensor in [0, 2]
    """
    grid = sheet_of(weight.float())
    h, w = grid.shape[-2:]
    if not (0 < factor_h <= h and 0 < factor_w <= w):
        raise AdapterError(f"factors ({factor_h}, {factor_w}) must be in (0, side] of the {h} × {w} sheet.")
    down = F.interpolate(grid, scale_factor=(1 / factor_h, 1 / factor_w), mode=interpolation)
    up = F.interpolate(down, size=(h, w), mode=interpolation)
    flat, blurred = grid[0].flatten(1).T, up[0].flatten(1).T  # (h·w, E)
    return 1.0 - F.cosine_similarity(flat, blurred, dim=-1).mean()


class TopoLossNet(HookedNet):
    """A network with TopoLoss on the weights of its conv / linear layers."""

    method = "topoloss"

    def __init__(self, net: nn.Module, layers: list[str], head: str | None, lam: float,
                 factors: dict[str, tuple[float, float]], scales: dict[str, float], interpolation: str) -> None:
        super().__init__(net, capture=[], head=head)
        self.lam, self.interpolation = lam, interpolation
        self.layer_names = list(layers)
        self.factors, self.scales = factors, scales

    def spatial_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """λ · mean over layers of τ_l · L_l (per-layer values unweighted, for logging)."""
        per_layer = {
            name: topoloss(self.net.get_submodule(name).weight, *self.factors[name], self.interpolation)
            for name in self.layer_names
        }
        weighted = torch.stack([self.scales[n] * v for n, v in per_layer.items()])
        return self.lam * weighted.mean(), per_layer


def _network(arch: str, num_classes: int, image_size: int, seed: int, akw: dict[str, Any]) -> tuple[nn.Module, str | None]:
    spec = _registered(arch)
    if spec is not None:
        return build_arch(spec.name, num_classes, image_size=image_size, seed=seed, **akw), spec.head
    names = torchvision.models.list_models(module=torchvision.models)
    if arch not in names:
        close = close_matches(arch, [*arch_names(), *names])
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise AdapterError(f"unknown architecture {arch!r}.{hint} Use one of {', '.join(arch_names())} or a "
                           f"torchvision.models classifier ({', '.join(names[:6])}, …).")
    norm = akw.pop("input_norm", None)
    if akw:
        raise AdapterError(f"architecture options {sorted(akw)} apply to cortexsim's own archs, not {arch!r}.")
    with seeded(seed):
        net = add_input_norm(torchvision.models.get_model(arch, weights=None, num_classes=num_classes), norm, 3)
    linears = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    return net, (linears[-1] if linears else None)


def _registered(arch: str) -> ArchSpec | None:
    try:
        return get_arch(arch)
    except AdapterError:  # not registered: maybe a torchvision classifier
        return None


def _default_layers(net: nn.Module, head: str | None) -> list[str]:
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    return convs or [n for n, m in net.named_modules() if isinstance(m, nn.Linear) and n != head]


def _per_layer(value: float | dict[str, float], name: str, default: float, what: str) -> float:
    v = value.get(name, default) if isinstance(value, dict) else value
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise AdapterError(f"{what} must be a number; got {v!r} for layer {name!r}.") from None
    if not np.isfinite(v) or v < 0 or (what == "factor" and v <= 0):
        raise AdapterError(f"{what} must be a finite number {'> 0' if what == 'factor' else '≥ 0'}; got {v!r} for {name!r}.")
    return v


def build(
    arch: str = "resnet18",
    num_classes: int = 10,
    *,
    layout: str | None = None,
    lam: float = 1.0,
    layers: list[str] | None = None,
    seed: int = 0,
    image_size: int = 32,
    factor: float | dict[str, float] = 3.0,
    scale: float | dict[str, float] = 1.0,
    interpolation: str = "bilinear",
    spacing_mm: float = 1.0,
    **kwargs: Any,
) -> TopographicNet:
    """Build a network with TopoLoss.

    Parameters
    ----------
    arch : a registered arch (:func:`adapters.archs.arch_names`) or a ``torchvision.models`` classifier name
    num_classes : int
    layout : "topoloss" (the h × w sheet; None means it)
    lam : float ≥ 0
        Multiplies the package's loss (mean over layers of τ_l · L_l); 1 = the package's value.
    layers : list of str, optional
        Conv2d / Linear modules (default: every Conv2d, else every Linear but the head).
    seed, image_size : int
    factor : float or dict layer -> float
        Down-sampling factor of both sides (capped at each side of the sheet).
    scale : float or dict layer -> float
        τ_l, each layer's weight (0 logs the layer without training it).
    interpolation : "bilinear" | "nearest"
    spacing_mm : float
        Distance between neighbouring units of the sheet, for the recorded positions.
    **kwargs : ``in_channels``, ``cifar_stem``, ``maxpool``, ``stem_init`` (cortexsim's archs only),
        ``input_norm`` (:func:`adapters.archs.add_input_norm`).
    """
    lam = check_lam(lam)
    layout = check_layout(layout, ("topoloss",), "topoloss")
    if interpolation not in INTERPOLATIONS:
        raise AdapterError(f"interpolation must be one of {INTERPOLATIONS}; got {interpolation!r}.")
    if not spacing_mm > 0:
        raise AdapterError(f"spacing_mm must be > 0; got {spacing_mm!r}.")
    akw = arch_kwargs(kwargs, "topoloss")
    net, head = _network(arch, int(num_classes), image_size, seed, akw)
    names = resolve_layers(net, layers, _default_layers(net, head), kind=(nn.Conv2d, nn.Linear))
    factors, scales, shapes = {}, {}, {}
    for name in names:
        weight = net.get_submodule(name).weight
        if weight.shape[0] < 2:
            raise AdapterError(f"layer {name!r} has {weight.shape[0]} output unit; a sheet needs at least 2.")
        h, w = topoloss_sheet_shape(weight.shape[0])
        f = _per_layer(factor, name, 3.0, "factor")
        factors[name] = (min(f, float(h)), min(f, float(w)))
        scales[name] = _per_layer(scale, name, 1.0, "scale")
        # a conv's channels are channel-level units (row/col -1, as other channel layouts); a Linear's
        # units keep their sheet row/col, as square_grid's
        shapes[name] = (weight.shape[0], 1, 1) if weight.ndim == 4 else (weight.shape[0],)
    model = TopoLossNet(net, names, head, lam, factors, scales, interpolation)
    model.placements = place_layers(shapes, layout, {n: {"spacing_mm": spacing_mm} for n in names})
    model.layout = layout
    # areas: the arch's registered conv areas (V1 / IT) when regularised, else the last layer as IT
    spec = _registered(arch)
    chosen = {a: m for a, m in (spec.layer_areas if spec else {}).items() if m in names}
    model.areas = {a: PREFIX + m for a, m in (chosen or {"IT": names[-1]}).items()}
    return model


SPEC = register(
    MethodSpec(
        name="topoloss",
        build=build,
        archs=ARCHS + ("any torchvision.models classifier",),
        defaults={"lam": 1.0, "layout": "topoloss", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                  "weight_decay": 5e-4, "batch_size": 256, "arch": "resnet18"},
        paper="Deb, Deb & Murty (2025) TopoNets: high performing vision and language models with brain-like "
              "topography. ICLR; PyPI package topoloss.",
    )
)
