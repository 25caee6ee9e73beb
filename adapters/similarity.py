"""``ws`` and ``as``: Truong & Hasson's weight- and activation-similarity losses.

A dense (penultimate) layer of ``grid_side²`` units (default 11 × 11 = 121) is laid
on a square grid (layout ``square_grid``, 1 mm spacing, unit k at row k // 11, column
k mod 11 as the reference's ``weights.view(11, 11, -1)``). Grid neighbours are the 8
surrounding units (``neighbourhood="moore"``; ``"von_neumann"`` for the 4 nearest).
With P the neighbour pairs,

* **WS** (weight similarity): neighbours have similar incoming weight vectors,
  L_WS = mean_{(i,j)∈P} dist(w_i, w_j), w_i row i of the layer's weight matrix, with
  ``metric`` = ``"correlation"``: 1 − Pearson(w_i, w_j) (centred, + 1e-8 in the
  denominator); ``"cosine"``: 1 − w_i·w_j / (‖w_i‖‖w_j‖ + 1e-8); ``"euclidean"``:
  ‖w_i − w_j‖₂; ``"sqeuclidean"``: ‖w_i − w_j‖² (the last two are not in the reference's
  training scripts). The reference's double loop visits every ordered pair, so its mean
  over ordered pairs equals this mean over unordered ones.
* **AS** (activation similarity): neighbours have correlated activations over the batch,
  L_AS = mean_{(i,j)∈P} (1 − r_ij), r_ij the Pearson correlation over the batch of the
  layer's **pre-ReLU** outputs (the Linear module's output is hooked — the activations
  the reference networks return as ``fc1_output``). The public code has **no AS loss**
  (its training scripts compute WS only); this is our reading of the paper's definition
  ("activation similarity is computed by correlating activation vectors across objects").

L = L_task + λ · mean over regularised layers (one layer by default, as in the reference).

Defaults follow the reference (tlmnhut/weight_vs_act_toponet)
-------------------------------------------------------------
* network ``arch="th_cifar"`` (``DeeperCNN_CIFAR10``) or ``"th_mnist"``
  (``MinimalCNN_GAP_DO``): global average pooling → a 256- / 64-wide input to the
  121-unit ``fc1``, ReLU, dropout 0.5, ``fc2`` (:mod:`adapters.archs`);
* ``metric=None`` picks the reference's per dataset: ``"correlation"`` with ``th_mnist``
  (``train_mnist.py``), ``"cosine"`` otherwise (``train_cifar.py``);
* λ grid :data:`LAMBDA_GRID` = {0.1, 0.3, 0.5, 1, 2, 3} (``plot_fig.py``, the commented
  sweep in ``train_cifar.py``; the scripts run λ = 1), λ = 0 being the control;
* recipe: Adam, lr 1e-3, batch 64, 30 epochs on CIFAR-10 (10 on MNIST; pass ``epochs``).

Differences (options): ``arch`` may be ``smallcnn`` (cortexsim's small CNN: 512 → 121, no
dropout) or ResNet-18 / VGG-16 / DenseNet-121 whose classifier becomes
``Linear(F → 121) → ReLU → Linear(121 → classes)``; ``metric="euclidean"`` was cortexsim's
earlier default. The reference normalises CIFAR-10 by (0.4914, 0.4822, 0.4465) /
(0.2470, 0.2435, 0.2616) and MNIST by 0.1307 / 0.3081: ``input_norm="cifar10"`` / ``"mnist"``
(inside the network; off by default, as the statistics belong to the training data).

The reference trains without augmentation, and so do ``ws`` / ``as`` by default
(``augment="reference"`` = ``"none"``; ``augment="standard"`` adds random crop + flip).
Not an option: the reference trains on a random 80 % of the CIFAR-10 training set
(``random_split``), cortexsim on all of it. The reference's MNIST script passes the model's (logits, fc1) tuple to
``cross_entropy`` (it would fail as published); its MNIST network takes 1 input channel.
The reference loops over units in Python; here the neighbour list is a precomputed index
buffer and a loss is one gather (WS) or one matmul plus a gather (AS).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

from .archs import arch_kwargs, build_arch, canonical_arch, head_name, topo_layer
from .base import AdapterError, MethodSpec, TopographicNet, register
from .hooks import PREFIX, HookedNet, float32_loss, check_lam, check_layout, place_layers, resolve_layers
from .tdann import _zscore

#: The reference's networks first; any registered arch trains (its own topographic Linear, or a
#: ``topo`` Linear added before the head).
ARCHS: tuple[str, ...] = ("th_cifar", "th_mnist", "smallcnn", "resnet18", "vgg16", "densenet121")
METRICS: tuple[str, ...] = ("correlation", "cosine", "euclidean", "sqeuclidean")
NEIGHBOURHOODS: dict[str, float] = {"moore": math.sqrt(2), "von_neumann": 1.0}
#: The reference's λ values (``plot_fig.py``: as_0.1 … ws_3); λ = 0 is the control.
LAMBDA_GRID: tuple[float, ...] = (0.1, 0.3, 0.5, 1.0, 2.0, 3.0)
_EPS = 1e-8  # the reference's epsilon in the cosine / correlation denominators


def lambda_grid(include_control: bool = False) -> tuple[float, ...]:
    """The reference's λ sweep {0.1, 0.3, 0.5, 1, 2, 3}; ``include_control`` prepends λ = 0."""
    return ((0.0,) if include_control else ()) + LAMBDA_GRID


def default_metric(arch: str) -> str:
    """The reference's WS metric for a network: correlation on MNIST (``th_mnist``), cosine otherwise."""
    return "correlation" if arch == "th_mnist" else "cosine"


def grid_pairs(positions: np.ndarray, spacing: float = 1.0, neighbourhood: str = "moore") -> np.ndarray:
    """Neighbour pairs (P, 2) int64 with i < j: units at most one grid step apart.

    ``positions`` (n, 2) of a square grid with ``spacing`` mm between rows/columns.
    """
    if neighbourhood not in NEIGHBOURHOODS:
        raise AdapterError(f"neighbourhood must be one of {tuple(NEIGHBOURHOODS)}; got {neighbourhood!r}.")
    radius = NEIGHBOURHOODS[neighbourhood] * spacing * (1 + 1e-6)
    pairs = cKDTree(positions).query_pairs(radius, output_type="ndarray")
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].astype(np.int64)


@float32_loss
def weight_similarity_loss(weight: torch.Tensor, pairs: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """L_WS: mean over neighbour pairs of the distance between incoming weight vectors.

    weight : (U, F) rows = units; pairs : (P, 2) long; metric : one of :data:`METRICS`.
    Returns a 0-dim tensor.
    """
    w = weight.flatten(1).float()
    if metric in ("cosine", "correlation"):
        if metric == "correlation":
            w = w - w.mean(dim=1, keepdim=True)
        norm = w.norm(dim=1)
        dot = (w[pairs[:, 0]] * w[pairs[:, 1]]).sum(1)
        return (1.0 - dot / (norm[pairs[:, 0]] * norm[pairs[:, 1]] + _EPS)).mean()
    sq = (w[pairs[:, 0]] - w[pairs[:, 1]]).square().sum(1)
    if metric == "sqeuclidean":
        return sq.mean()
    return sq.clamp_min(1e-12).sqrt().mean()  # the floor keeps the gradient finite for equal rows


@float32_loss
def activation_similarity_loss(act: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """L_AS: mean over neighbour pairs of 1 − Pearson r over the batch.

    act : (N, U) activations; pairs : (P, 2) long. Returns a 0-dim tensor.
    """
    z = _zscore(act.flatten(1).float(), dim=0)
    r = z.T @ z  # (U, U) correlation matrix, one matmul
    return (1.0 - r[pairs[:, 0], pairs[:, 1]]).mean()


class SimilarityNet(HookedNet):
    """A network with Truong & Hasson's WS or AS loss on dense topographic layers."""

    def __init__(self, net: nn.Module, layers: list[str], head: str, lam: float, kind: str, metric: str) -> None:
        super().__init__(net, capture=layers if kind == "as" else [], head=head)
        self.method, self.lam, self.kind, self.metric = kind, lam, kind, metric
        self.layer_names = list(layers)

    def set_pairs(self, name: str, pairs: np.ndarray) -> None:
        self.register_buffer(f"pairs_{self.layer_names.index(name)}", torch.as_tensor(pairs), persistent=False)

    def spatial_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """λ · mean over layers of L_WS (weights only) or L_AS (last forward's activations)."""
        per_layer = {}
        for i, name in enumerate(self.layer_names):
            pairs = getattr(self, f"pairs_{i}")
            if self.kind == "ws":
                per_layer[name] = weight_similarity_loss(self.net.get_submodule(name).weight, pairs, self.metric)
            else:
                per_layer[name] = activation_similarity_loss(self.activation(name), pairs)
        return self.lam * torch.stack(list(per_layer.values())).mean(), per_layer


def _builder(kind: str):
    def build(
        arch: str = "th_cifar",
        num_classes: int = 10,
        *,
        layout: str | None = None,
        lam: float = 1.0,
        layers: list[str] | None = None,
        seed: int = 0,
        image_size: int = 32,
        grid_side: int = 11,
        spacing_mm: float = 1.0,
        neighbourhood: str = "moore",
        metric: str | None = None,
        **kwargs: Any,
    ) -> TopographicNet:
        arch = canonical_arch(arch)
        lam = check_lam(lam)
        layout = check_layout(layout, ("square_grid",), kind)
        metric = default_metric(arch) if metric is None else metric
        if metric not in METRICS:
            raise AdapterError(f"metric must be one of {METRICS}; got {metric!r}.")
        if neighbourhood not in NEIGHBOURHOODS:
            raise AdapterError(f"neighbourhood must be one of {tuple(NEIGHBOURHOODS)}; got {neighbourhood!r}.")
        if int(grid_side) != grid_side or grid_side < 2:
            raise AdapterError(f"grid_side must be an integer ≥ 2; got {grid_side!r}.")
        akw = arch_kwargs(kwargs, kind)
        n_units = int(grid_side) ** 2
        net = build_arch(arch, num_classes, image_size=image_size, seed=seed, topo_units=n_units, **akw)
        names = resolve_layers(net, layers, [topo_layer(arch)], kind=nn.Linear)
        model = SimilarityNet(net, names, head_name(arch, n_units), lam, kind, metric)
        shapes = {n: (net.get_submodule(n).out_features,) for n in names}
        for n, (u,) in shapes.items():
            if math.isqrt(u) ** 2 != u:
                raise AdapterError(f"layer {n!r} has {u} units; a square grid needs a perfect square (e.g. 121 = 11×11).")
        model.placements = place_layers(shapes, layout, {n: {"spacing_mm": spacing_mm} for n in names})
        for n in names:
            model.set_pairs(n, grid_pairs(model.placements[PREFIX + n].positions, spacing_mm, neighbourhood))
        model.layout = layout
        model.areas = {"IT": PREFIX + names[-1]} if len(names) == 1 else {n: PREFIX + n for n in names}
        return model

    build.__name__ = f"build_{kind}"
    build.__doc__ = f"""Build a network with the {'weight' if kind == 'ws' else 'activation'}-similarity loss.

    Parameters
    ----------
    arch : a registered arch (:data:`ARCHS`, :func:`adapters.archs.arch_names`; default ``th_cifar``, the
        reference's CIFAR-10 network)
    num_classes : int
    layout : "square_grid" (the only one; None means it)
    lam : float ≥ 0 (the reference's sweep: :func:`lambda_grid`)
    layers : list of str, optional
        Linear modules with a square number of outputs (default the added ``topo`` layer).
    seed, image_size : int
    grid_side : int
        Grid side of the topographic layer (11 → 121 units).
    spacing_mm : float
        Grid spacing.
    neighbourhood : "moore" (8 neighbours) | "von_neumann" (4)
    metric : {METRICS} (WS only); None: :func:`default_metric` (correlation for th_mnist, else cosine)
    **kwargs : ``in_channels``, ``cifar_stem``, ``maxpool``, ``input_norm`` (``"cifar10"`` / ``"mnist"``:
        the reference scripts' normalisation).
    """
    return build


_PAPER = (
    "Truong & Hasson (2025) Beyond topography: topographic regularization improves robustness and reshapes "
    "representations in convolutional neural networks. arXiv:2508.00043."
)
_DEFAULTS = {"lam": 1.0, "layout": "square_grid", "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 30,
             "arch": "th_cifar", "augment": "none"}  # the reference trains on the raw images
SPEC_WS = register(MethodSpec(name="ws", build=_builder("ws"), archs=ARCHS, defaults=dict(_DEFAULTS), paper=_PAPER))
SPEC_AS = register(MethodSpec(name="as", build=_builder("as"), archs=ARCHS, defaults=dict(_DEFAULTS), paper=_PAPER))
