"""SimCLR (Chen et al. 2020): two augmented views, projection head, NT-Xent loss.

Used by the trainer when ``task="simclr"`` (TDANN trains this way). The head
sits on ``net.features(x)`` and is part of the trained module list, so it is
checkpointed with the network.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def simclr_transform(image_size: int, *, strength: float = 0.5, blur: float = 0.0,
                     min_scale: float = 0.2) -> Callable:
    """The usual SimCLR view: random resized crop, flip, colour jitter (p=0.8), grayscale (p=0.2), blur.

    ``strength`` scales the jitter (0.8·s brightness/contrast/saturation, 0.2·s hue),
    0.5 being the CIFAR setting (1.0 is ImageNet's and TDANN's); ``blur`` is the probability of a
    Gaussian blur (σ uniform in [0.1, 2] px, kernel ~10 % of the side; SimCLR/VISSL on ImageNet: 0.5,
    0 turns it off); crops cover ``min_scale`` to all of the image area (ImageNet: 0.08).
    Output: float32 (C, H, W) in [0, 1].
    """
    from torchvision.transforms import v2

    s = float(strength)
    steps = [
        v2.ToImage(),
        v2.RandomResizedCrop(image_size, scale=(float(min_scale), 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]
    if blur > 0:
        kernel = max(3, (image_size // 10) | 1)  # odd, about a tenth of the side (SimCLR)
        steps.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=float(blur)))
    return v2.Compose(steps)


class TwoViews:
    """Apply a transform twice: image -> (2, C, H, W)."""

    def __init__(self, transform: Callable) -> None:
        self.transform = transform

    def __call__(self, image) -> torch.Tensor:
        return torch.stack([self.transform(image), self.transform(image)])


class ProjectionHead(nn.Module):
    """MLP ``in_dim -> hidden -> out_dim`` (Linear, BN, ReLU, Linear) as in SimCLR."""

    def __init__(self, in_dim: int, hidden: int = 512, out_dim: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (N, in_dim) features -> (N, out_dim) projections."""
        return self.mlp(h.flatten(1))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Normalised-temperature cross-entropy over 2N views.

    Parameters
    ----------
    z1, z2 : (N, D) projections of the two views of the same N images
    temperature : τ > 0

    Returns
    -------
    0-dim tensor: mean over the 2N anchors of
    −log( exp(s_ii'/τ) / Σ_{k≠i} exp(s_ik/τ) ), s the cosine similarity and i' the other view of i.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}.")
    n = z1.shape[0]
    z = nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    # Remove self-similarity from the denominator.
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return nn.functional.cross_entropy(logits, target)
