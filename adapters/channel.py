"""``channel``: Poli, Dupoux & Riad (2023) channel-level topographic loss.

Every output channel of a regularised conv layer gets a position (one of the six
layouts ``grid2d``, ``nested_grid``, ``circle``, ``grid3d``, ``sphere``,
``nested3d``; coordinates in [0, 1] as in the paper). For one stimulus, with
ỹ_i the flattened (H·W) output of channel i *taken before any normalisation or
activation* (the Conv2d output, hooked),

    S_ij = ⟨ỹ_i, ỹ_j⟩ / (‖ỹ_i‖ ‖ỹ_j‖),
    L_topo^l = 2 / (C(C−1)) · Σ_{i<j} (S_ij − 1/(d_ij + 1))²,

averaged over the batch, and L = L_classif + λ · Σ_l L_topo^l — the **sum** over
layers, as bootphon/topography's ``topographic_loss`` (``total_loss += layer_loss``),
so the paper's λ values mean the same here. Each layer costs two matmuls on the
(N, C, HW) channel rows against a precomputed 1/(d+1) buffer, never an (N, C, C)
tensor (see :func:`channel_topographic_loss`); it equals the reference's per-layer
value to float32 precision.

Layers (bootphon/topography ``topographic_layer_names``, "end of each building
block" in the paper):

* ResNet-18: ``conv1``, ``layer1.1.conv2``, ``layer2.1.conv2``, ``layer3.1.conv2``,
  ``layer4.1.conv2`` — the stem and the last conv of each stage.
* DenseNet-121: ``features.conv0`` and the last conv of each dense block
  (``denseblock1.denselayer6.conv2`` … ``denseblock4.denselayer16.conv2``).
* VGG-16 (BN): all 13 conv layers.

Defaults: ``preset="reference"`` (bootphon/topography @f4cc1d6)
-----------------------------------------------------------------
* **Layouts** position for position as ``topography/core/distance.py``
  (:mod:`cortexsim.layout`, ``variant="reference"``): grids over [0, 1] inclusive
  (spacing 1/(N−1)), circle and sphere of radius 0.5 (Fibonacci sphere from pole to
  pole), nested grids from the unit square inwards, halving. The nested layouts, in
  float32 as the reference, repeat positions from 195 (2-D) / 483 (3-D) channels on:
  coincident channels have d = 0, so 1/(d + 1) = 1 (finite; they are asked to be
  identical). The reference's float32 ``torch.cdist`` already returns d = 0 for distinct
  channels < 3e-4 apart from 100 channels on; cortexsim's distances are float64, so its
  1/(d + 1) there is up to 3.5e-4 below the reference's (:func:`inverse_distance`).
* **Reduction**: λ · Σ_l (``reduction="sum"``); ``"mean"`` divides by the number of layers.
* **Stems**: ResNet-18 and DenseNet-121 get a 3×3/stride-1 first conv on ≤ 64 px inputs
  and keep their max-pool; ResNet-18's new conv1 keeps PyTorch's default init (Kaiming
  uniform, a = √5) and DenseNet's conv0 gets ``kaiming_normal_`` (fan-in), as the reference
  (``stem_init``; cortexsim's other stems use torchvision's fan-out init).
* **Recipe** (``scripts/training/cifar.py``): SGD lr 0.01, momentum 0.9, weight decay 0.01,
  batch 256, 100 epochs, linear warm-up over 30 % of them then cosine to 0.
  λ grid :data:`LAMBDA_GRID` (``scripts/training/create_jobs.py``).

``preset="cortexsim"`` keeps cortexsim's earlier choices: ``variant="cortexsim"`` layouts
(spacing 1/N, radius 1, nested shells from the centre outwards), the mean over layers
(λ = 1 there is λ = 1/L here), and a fan-out Kaiming stem.

The reference normalises CIFAR-10 by (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010)
before the network; the hooked conv1 output (and so its loss) depends on it:
``input_norm="cifar10_topography"`` (inside the network; off by default, as the statistics belong
to the training data). Its augmentation (random crop with 4 px padding + flip) is the trainer's.

Remaining differences (not options): the reference steps its warm-up/cosine schedule per
epoch (its first epoch at lr 0) and holds out 10 % of CIFAR for validation; cortexsim's
trainer steps per optimizer step and trains on the whole set. The reference also offers
1-D layouts and an L1 distance, which are not here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import cdist
from torch import nn

from .archs import arch_kwargs, arch_names, build_arch, get_arch, head_name
from .base import AdapterError, MethodSpec, TopographicNet, register
from .hooks import PREFIX, HookedNet, areas_for, float32_loss, check_lam, check_layout, place_layers, resolve_layers

CHANNEL_LAYOUTS: tuple[str, ...] = ("grid2d", "nested_grid", "circle", "grid3d", "sphere", "nested3d")


def supported_archs() -> tuple[str, ...]:
    """Registered archs with conv ``layers`` to regularise (:func:`adapters.archs.register_arch`)."""
    return tuple(a for a in arch_names() if get_arch(a).layers)


#: The built-in archs this method trains (resnet18, vgg16, densenet121); the layers / areas per arch
#: are the registry's ``layers`` / ``layer_areas``.
ARCHS: tuple[str, ...] = supported_archs()
#: The reference's λ grid (``create_jobs.py``). The paper picks λ on the validation set and
#: uses λ = 1 for its pruning experiment (ResNet-18, 2-D grid).
LAMBDA_GRID: tuple[float, ...] = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0)
REDUCTIONS: tuple[str, ...] = ("sum", "mean")
#: Per preset: layout variant, reduction over layers, stem init per arch.
_PRESETS: dict[str, tuple[str, str, dict[str, str]]] = {
    "reference": ("reference", "sum", {"resnet18": "pytorch", "densenet121": "fan_in", "vgg16": "fan_out"}),
    "cortexsim": ("cortexsim", "mean", {"resnet18": "fan_out", "densenet121": "fan_out", "vgg16": "fan_out"}),
}


def inverse_distance(positions: np.ndarray) -> np.ndarray:
    """1 / (d_ij + 1) for all channel pairs: (C, C) float32.

    Distances in float64 (scipy): the reference's float32 ``torch.cdist`` (matrix-product form
    above 25 points) rounds distances below ~3e-4 to 0, which the nested layouts reach from 100
    channels on; the two 1/(d + 1) differ by ≤ 3.5e-4 there and agree to float32 elsewhere.
    """
    return (1.0 / (cdist(positions, positions) + 1.0)).astype(np.float32)


@float32_loss
def channel_topographic_loss(y: torch.Tensor, inv_dist: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Poli et al.'s L_topo of one layer, averaged over the batch.

    Parameters
    ----------
    y : (N, C, H, W) pre-activation conv output (computed in float32)
    inv_dist : (C, C) 1/(d+1), symmetric with unit diagonal (:func:`inverse_distance`)
    eps : floor of a channel's norm (an all-zero channel has cosine 0 with every other)

    Returns
    -------
    0-dim tensor

    Notes
    -----
    With F the (C, HW) unit-norm channel rows of one stimulus, S = F Fᵀ and T = 1/(d+1),

        Σ_{i<j} (S_ij − T_ij)² = ½ (‖S‖² − 2⟨S, T⟩ + ‖T‖² − Σ_i (S_ii − T_ii)²),

    where, when HW < C (deep layers), ‖S‖ = ‖Fᵀ F‖ (the HW×HW Gram matrix) and
    ⟨S, T⟩ = Σ (T F) ∘ F, so no (N, C, C) tensor is formed: ResNet-18's layer4
    (C = 512, HW = 4) costs N·C·HW memory instead of N·C². Forming S and the
    elementwise chain on it made the loss 2× the training step on CPU.
    """
    f = y.flatten(2).float()
    f = f / f.norm(dim=2, keepdim=True).clamp_min(eps)  # (N, C, HW)
    c, hw = f.shape[1], f.shape[2]
    if hw < c:  # deep layers: the small HW × HW Gram matrix has S's Frobenius norm
        s_norm2 = (f.transpose(1, 2) @ f).square().sum((1, 2))
        s_dot_t = (torch.matmul(inv_dist, f) * f).sum((1, 2))
    else:  # early layers: S itself is the small one (C × C); one matmul serves both terms
        s = f @ f.transpose(1, 2)
        s_norm2 = s.square().sum((1, 2))
        s_dot_t = (s * inv_dist).sum((1, 2))
    diag_gap2 = (f.square().sum(2) - inv_dist.diagonal()).square().sum(1)  # S_ii is 1, or 0 for a dead channel
    pairs = 0.5 * (s_norm2 - 2.0 * s_dot_t + inv_dist.square().sum() - diag_gap2)
    return (pairs * (2.0 / (c * (c - 1)))).mean()


class ChannelNet(HookedNet):
    """An architecture with Poli et al.'s loss on hooked conv outputs."""

    method = "channel"

    def __init__(self, net: nn.Module, layers: list[str], head: str, lam: float, reduction: str = "sum") -> None:
        super().__init__(net, capture=layers, head=head)
        self.lam, self.reduction = lam, reduction
        self.layer_names = list(layers)

    def set_positions(self, name: str, positions: np.ndarray) -> None:
        i = self.layer_names.index(name)
        self.register_buffer(f"invd_{i}", torch.as_tensor(inverse_distance(positions)), persistent=False)

    def spatial_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """λ · Σ_l L_topo^l (``reduction="sum"``, the reference's) or λ · mean over layers."""
        per_layer = {
            name: channel_topographic_loss(self.activation(name), getattr(self, f"invd_{i}"))
            for i, name in enumerate(self.layer_names)
        }
        stacked = torch.stack(list(per_layer.values()))
        return self.lam * (stacked.sum() if self.reduction == "sum" else stacked.mean()), per_layer


def build(
    arch: str = "resnet18",
    num_classes: int = 10,
    *,
    layout: str | None = None,
    lam: float = 1.0,
    layers: list[str] | None = None,
    seed: int = 0,
    image_size: int = 32,
    scale_mm: float = 1.0,
    preset: str = "reference",
    reduction: str | None = None,
    variant: str | None = None,
    **kwargs: Any,
) -> TopographicNet:
    """Build a network with Poli et al.'s topographic loss.

    Parameters
    ----------
    arch : "resnet18" | "vgg16" | "densenet121", or a registered arch with ``layers``
    num_classes : int
    layout : one of :data:`CHANNEL_LAYOUTS` (default ``grid2d``)
    lam : float ≥ 0
        λ (paper grid :data:`LAMBDA_GRID`; λ = 1 in the pruning experiment).
    layers : list of str, optional
        Conv2d modules (default: the arch's registered ``layers``).
    seed, image_size : int
    scale_mm : float
        Position scale (1 = the paper's [0, 1] coordinates; it changes 1/(d+1)).
    preset : "reference" | "cortexsim"
        bootphon/topography's setup (default) or cortexsim's earlier one (module docstring).
    reduction : "sum" | "mean", optional
        Over layers (reference: sum).
    variant : "reference" | "cortexsim", optional
        Layout variant (:mod:`cortexsim.layout`).
    **kwargs : ``in_channels``, ``input_norm`` (``"cifar10_topography"``: the reference's CIFAR-10
        normalisation), ``cifar_stem``, ``maxpool`` (default True: stems as in the paper),
        ``stem_init`` (:data:`adapters.archs.STEM_INITS`).
    """
    spec = get_arch(arch, supported_archs())
    arch = spec.name
    lam = check_lam(lam)
    layout = check_layout(layout, CHANNEL_LAYOUTS, "channel")
    if not scale_mm > 0:
        raise AdapterError(f"scale_mm must be > 0; got {scale_mm!r}.")
    if preset not in _PRESETS:
        raise AdapterError(f"preset must be one of {tuple(_PRESETS)}; got {preset!r}.")
    variant_d, reduction_d, stems = _PRESETS[preset]
    reduction = reduction_d if reduction is None else reduction
    if reduction not in REDUCTIONS:
        raise AdapterError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}.")
    variant = variant_d if variant is None else variant
    kwargs.setdefault("maxpool", True)
    kwargs.setdefault("stem_init", stems.get(arch, "fan_out"))
    akw = arch_kwargs(kwargs, "channel")
    net = build_arch(arch, num_classes, image_size=image_size, seed=seed, **akw)
    names = resolve_layers(net, layers, spec.layers, kind=nn.Conv2d)
    model = ChannelNet(net, names, head_name(arch), lam, reduction)
    shapes = model.probe_shapes(image_size)  # channels: the net's first conv
    model.placements = place_layers(shapes, layout, {n: {"scale_mm": scale_mm, "variant": variant} for n in names})
    for name in names:
        model.set_positions(name, model.placements[PREFIX + name].positions)
    model.layout = layout
    model.areas = areas_for(spec.layer_areas, names)
    return model


SPEC = register(
    MethodSpec(
        name="channel",
        build=build,
        archs=ARCHS,
        defaults={
            "lam": 1.0, "layout": "grid2d", "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.01,
            "batch_size": 256, "epochs": 100, "scheduler": "cosine", "warmup_fraction": 0.3, "arch": "resnet18",
        },
        paper="Poli, Dupoux & Riad (2023) Introducing topography in convolutional neural networks. ICASSP.",
    )
)
