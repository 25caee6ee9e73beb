"""``reset``: Hannagan's Reset(n, m) networks — topography by composition.

Architecture (depth 2): n × n independent sub-networks (CIFAR ResNet-20s, no
weight sharing) all see the image; sub-network s outputs (m/n)² units. Their
outputs are concatenated in sub-network order (``net.grid``, (N, m²), tanh) and
tiled into the m × m grid (sub-network s = (a, b) row-major owns tile (a, b); its
k-th unit sits at tile row k // (m/n), column k mod (m/n) —
:func:`cortexsim.layout.reset_tiling_rowcol`). The grid, a 1 × m × m image, goes
through dropout (0.5) and BatchNorm2d(1) into the final network (another
ResNet-20, one input channel) that gives the outputs. Loss: binary cross-entropy
(one-hot class targets or soft targets such as number codes); Adam, lr 1e-3,
20 epochs, batch 100 — as the reference notebooks (THANNAGA/Reset-Networks:
``optim.Adam(net.parameters())``, ``nn.BCELoss`` on sigmoid outputs, ``train_batchsize =
100``, ``epochs = 20`` for CIFAR-100; the number task runs 50 epochs — pass ``epochs=50``).
The analyses of Reset maps (clustering and topography indices, and how they differ from
the notebooks) are in :mod:`cortexsim.analysis.clustering`. The notebooks' augmentation
(random crop, 4 px padding, + flip) is the trainer's; their CIFAR-100 normalisation is
``input_norm="cifar100"`` (inside the network; off by default, as the statistics belong to the data).

Optional autoencoder regulariser (the paper's "Regularization by auto-encoding"):
a second level-2 sub-network reconstructs the input from the same grid; its MSE
is returned by :meth:`ResetNet.spatial_loss` with weight ``lam``.

Parameter counts (``count_parameters``; paper Table S3 is for the number task,
100-dimensional number codes, RGB 32 × 32 input):

=========  ==========  ===========  ===========
network    paper       ours (100)   ours (10)
=========  ==========  ===========  ===========
Reset(1)   610,918     610,918      605,068
Reset(2)   1,418,134   1,418,134    1,412,284
Reset(4)   4,646,998   4,646,998    4,641,148
Reset(8)   17,562,454  17,562,454   17,556,604
ResNet-20  275,572     275,572      269,722
=========  ==========  ===========  ===========

They match exactly with: sub-networks = ResNet-20 with option-A (parameter-free)
shortcuts, 3 input channels, a Linear(64 → (m/n)²) head; BatchNorm2d(1) on the
grid (2 parameters); final ResNet-20 with a 1-channel first conv and a
Linear(64 → outputs) head. Reset(n) = n²·(269,072 + 65·(32/n)²) + 2 + 268,784 +
65·outputs; with 10 classes every count is 5,850 = 65·90 lower. The autoencoder
adds its decoder's parameters.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cortexsim.layout import reset_tiling_rowcol
from cortexsim.seeding import seeded

from .archs import ResNet20, add_input_norm, canonical_arch
from .base import AdapterError, MethodSpec, TopographicNet, register
from .hooks import PREFIX, HookedNet, check_lam, check_layout, place_layers

#: Parameter counts of Hannagan's Table S3 (number task: 100 outputs, RGB input).
PAPER_PARAMETERS: dict[str, int] = {
    "Reset(1)": 610_918, "Reset(2)": 1_418_134, "Reset(4)": 4_646_998, "Reset(8)": 17_562_454, "ResNet20": 275_572,
}


class GridDecoder(nn.Module):
    """Reconstructs the image (N, C, m, m) from the grid (N, 1, m, m): 3×3 convs 1 → 32 → 32 → C."""

    def __init__(self, out_channels: int = 3, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, out_channels, 3, padding=1),
        )

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.body(grid)


class ResetModel(nn.Module):
    """Reset(n, m): (N, C, H, W) images -> (N, num_outputs) logits.

    Attributes
    ----------
    subnets : ModuleList of n² ResNet-20s, each (N, C, H, W) -> (N, (m/n)²)
    grid : Tanh applied to the concatenated sub-network outputs (N, m²) — the recorded sheet
    final : ResNet-20 on the (N, 1, m, m) grid
    decoder : optional :class:`GridDecoder`
    """

    def __init__(
        self, n: int, m: int, num_outputs: int, in_channels: int = 3, dropout: float = 0.5, autoencoder: bool = False
    ) -> None:
        super().__init__()
        self.n, self.m = n, m
        tile = (m // n) ** 2
        self.subnets = nn.ModuleList(ResNet20(tile, in_channels) for _ in range(n * n))
        self.grid = nn.Tanh()
        self.dropout = nn.Dropout(dropout)
        self.bn = nn.BatchNorm2d(1)
        self.final = ResNet20(num_outputs, 1)
        self.decoder = GridDecoder(in_channels) if autoencoder else None
        row, col, _ = reset_tiling_rowcol(n, m)
        # image pixel p = row·m + col holds concatenated unit order[p]
        order = torch.empty(m * m, dtype=torch.long)
        order[torch.as_tensor(row * m + col)] = torch.arange(m * m)
        self.register_buffer("order", order, persistent=False)
        self.aux: dict[str, torch.Tensor] = {}

    def tile(self, units: torch.Tensor) -> torch.Tensor:
        """(N, m²) units in concatenation order -> (N, 1, m, m) grid image."""
        return units[:, self.order].reshape(-1, 1, self.m, self.m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A loop over sub-networks (≤ 64), not units: each is an independent ResNet-20.
        units = self.grid(torch.cat([s(x) for s in self.subnets], dim=1))
        h = self.bn(self.dropout(self.tile(units)))
        if self.decoder is not None:
            recon = self.decoder(h)
            if recon.shape[-2:] != x.shape[-2:]:
                recon = F.interpolate(recon, size=x.shape[-2:], mode="bilinear", align_corners=False)
            self.aux["reconstruction"] = F.mse_loss(recon.float(), x.float())
        return self.final(h)


class ResetNet(HookedNet):
    """Reset(n, m) behind the common interface; BCE task loss, optional autoencoder term."""

    method = "reset"

    def __init__(self, model: ResetModel, lam: float, loss: str = "bce") -> None:
        super().__init__(model, capture=[], head="final.linear")
        self.lam, self.loss = lam, loss

    def task_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy with logits.

        target : (N,) int class labels (one-hot encoded here) or (N, n_outputs) float soft labels in [0, 1].
        """
        if self.loss == "ce":  # softmax cross-entropy on class labels (the usual classifier loss)
            return F.cross_entropy(output.float(), target)
        if not target.is_floating_point():
            if target.ndim != 1:
                raise ValueError(f"integer targets must be class labels of shape (N,); got {tuple(target.shape)}.")
            target = F.one_hot(target, output.shape[1])
        if target.shape != output.shape:
            raise ValueError(f"targets of shape {tuple(target.shape)} do not match the outputs {tuple(output.shape)}.")
        return F.binary_cross_entropy_with_logits(output.float(), target.float())

    def spatial_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """λ · reconstruction MSE with the autoencoder; zero without."""
        if self.net.decoder is None:
            return self.zero(), {}
        try:
            mse = self.net.aux["reconstruction"]
        except KeyError:
            raise RuntimeError("no reconstruction yet; call the model on a batch before spatial_loss().") from None
        return self.lam * mse, {"autoencoder": mse}


def build(
    arch: str = "resnet20",
    num_classes: int = 10,
    *,
    layout: str | None = None,
    lam: float = 1.0,
    layers: list[str] | None = None,
    seed: int = 0,
    image_size: int = 32,
    n: int = 4,
    m: int = 32,
    dropout: float = 0.5,
    loss: str = "bce",
    autoencoder: bool = False,
    in_channels: int = 3,
    input_norm: Any = None,
) -> TopographicNet:
    """Build Reset(n, m).

    Parameters
    ----------
    arch : "resnet20" (sub-networks and final network)
    num_classes : int
        Number of outputs (10 / 100 classes, or 100 for number codes).
    layout : "reset" (the only one; None means it)
    lam : float ≥ 0
        Weight of the autoencoder loss (used with ``autoencoder=True``).
    layers : must be None or ["grid"] (the grid is the only sheet).
    seed, image_size : int
    n : int
        Sub-networks per side (1, 2, 4, 8 in the paper); m must be divisible by n.
    m : int
        Grid side in units (32).
    dropout : float in [0, 1)
    loss : "bce" (the paper's: sigmoid outputs, binary cross-entropy on one-hot or soft labels) or "ce"
        (softmax cross-entropy on class labels)
    autoencoder : bool
        Add the reconstruction sub-network.
    in_channels : int
    input_norm : str or (mean, std), optional
        Normalise the input inside the network (:func:`adapters.archs.add_input_norm`; the notebooks
        train CIFAR-100 with ``"cifar100"``).
    """
    canonical_arch(arch, ("resnet20",))
    lam = check_lam(lam)
    layout = check_layout(layout, ("reset",), "reset")
    if layers is not None and [layer.removeprefix(PREFIX) for layer in layers] != ["grid"]:
        raise AdapterError(f"reset has one sheet, 'grid'; got layers={layers!r}.")
    if int(n) != n or int(m) != m or n < 1 or m < 1 or m % n:
        raise AdapterError(f"Reset(n, m) needs positive integers with m divisible by n; got n={n!r}, m={m!r}.")
    if loss not in ("bce", "ce"):
        raise AdapterError(f"loss must be 'bce' or 'ce'; got {loss!r}.")
    if not 0 <= dropout < 1:
        raise AdapterError(f"dropout must be in [0, 1); got {dropout!r}.")
    if int(num_classes) != num_classes or num_classes < 1:
        raise AdapterError(f"num_classes must be a positive integer; got {num_classes!r}.")
    with seeded(seed):  # the caller's RNG stream is left where it was
        model = ResetModel(int(n), int(m), int(num_classes), in_channels, dropout, autoencoder)
    add_input_norm(model, input_norm, in_channels)
    net = ResetNet(model, lam, loss)
    net.placements = place_layers({"grid": (int(m) * int(m),)}, layout, {"grid": {"n_subnets": int(n), "grid": int(m)}})
    net.layout = layout
    net.areas = {"IT": PREFIX + "grid"}
    return net


SPEC = register(
    MethodSpec(
        name="reset",
        build=build,
        archs=("resnet20",),
        defaults={
            "lam": 1.0, "n": 4, "m": 32, "layout": "reset", "loss": "bce", "optimizer": "adam", "lr": 1e-3,
            "epochs": 20, "batch_size": 100, "dropout": 0.5, "arch": "resnet20",
        },
        paper="Hannagan (2021) Reset networks: emergent topography by composition of convolutional neural networks.",
    )
)
