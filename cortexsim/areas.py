"""What an area records: a module, and how its output becomes units a layout can place.

Layouts place either a dense layer's (C,) vector or a conv layer's (C, H, W) map
(see :func:`cortexsim.layout.place`). Outputs of other shapes need a transform
to one of those: :class:`Area` carries one per area, and the token outputs
(B, N, D) of torchvision Vision Transformer blocks get :func:`tokens_to_map` by
default (the class token dropped, the N − 1 patch tokens laid out as the
√(N−1) × √(N−1) patch grid with D channels, like a conv map).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import LayoutError

__all__ = ["Area", "default_transform", "placeable_shape", "tokens_to_map"]

Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Area:
    """A module recorded as one area, with an optional output transform.

    Parameters
    ----------
    module : str
        The module's ``named_modules()`` name, e.g. ``"encoder.layers.encoder_layer_11"``.
    transform : callable (B, ...) -> (B, C, H, W) or (B, C), optional
        Applied to the module's output batch before placement, e.g.
        ``tokens_to_map(n_prefix=5)`` for a ViT with 4 register tokens, or
        ``lambda y: y.permute(0, 3, 1, 2)`` for channels-last maps. ``None``: the
        output as is (token outputs of torchvision ViT blocks: :func:`tokens_to_map`).

    Examples
    --------
    >>> cx.SimulatedCortex(vit, {"IT": Area("encoder.layers.encoder_layer_11", transform=tokens_to_map(1))})
    """

    module: str
    transform: Transform | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.module, str) or not self.module:
            raise LayoutError(f"Area(module=...) must be a module name (a non-empty str); got {self.module!r}.")
        if self.transform is not None and not callable(self.transform):
            raise LayoutError(f"Area(transform=...) must be callable (batch -> batch); got {self.transform!r}.")


class tokens_to_map:  # noqa: N801 - used like a function: tokens_to_map(1)(y)
    """Transform (B, N, D) tokens into a (B, D, s, s) map of the patch grid.

    The first ``n_prefix`` tokens (class / register tokens) are dropped; the
    remaining N − n_prefix must be a square number s² of patch tokens in
    row-major patch order (torchvision's and timm's order). The unit at (d, i, j)
    is feature d of the patch in row i, column j.
    """

    def __init__(self, n_prefix: int = 1) -> None:
        if int(n_prefix) != n_prefix or n_prefix < 0:
            raise LayoutError(f"n_prefix must be an integer ≥ 0 (class/register tokens to drop); got {n_prefix!r}.")
        self.n_prefix = int(n_prefix)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 3:
            raise LayoutError(f"tokens_to_map expects (B, N, D) tokens; got shape {tuple(tokens.shape)}.")
        b, n, d = tokens.shape
        patches = n - self.n_prefix
        side = math.isqrt(max(patches, 0))
        if patches < 1 or side * side != patches:
            raise LayoutError(
                f"{n} tokens minus {self.n_prefix} class/register token(s) leave {patches} patch tokens, not a "
                f"square grid; give Area(module, transform=tokens_to_map(n_prefix=...)) with the model's number "
                f"of prefix tokens, or your own transform to (B, C, H, W)."
            )
        return tokens[:, self.n_prefix:].reshape(b, side, side, d).permute(0, 3, 1, 2)

    def __repr__(self) -> str:
        return f"tokens_to_map(n_prefix={self.n_prefix})"


def _is_torchvision_vit(model: nn.Module, module: nn.Module) -> bool:
    try:
        from torchvision.models.vision_transformer import Encoder, EncoderBlock, VisionTransformer
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return False
    return isinstance(module, (EncoderBlock, Encoder)) or isinstance(model, VisionTransformer)


def default_transform(model: nn.Module, module: nn.Module, output: torch.Tensor) -> Transform | None:
    """The transform an area gets when none is given: token outputs of torchvision ViTs -> patch maps."""
    if output.ndim == 3 and _is_torchvision_vit(model, module):
        return tokens_to_map(1)
    return None


def placeable_shape(area: str, module: str, shape: tuple[int, ...], transformed: bool) -> tuple[int, ...]:
    """``shape`` (per stimulus) if a layout can place it — (C,) or (C, H, W) — else a :class:`LayoutError` saying what to do."""
    if len(shape) in (1, 3):
        return shape
    what = "the area's transform returns" if transformed else "outputs"
    token_hint = (
        " A (N, D) output looks like transformer tokens: record them as the patch grid with "
        "Area(module, transform=cortexsim.areas.tokens_to_map(n_prefix=1)) (n_prefix: class/register tokens)."
        if len(shape) == 2 else ""
    )
    raise LayoutError(
        f"area {area!r}: module {module!r} {what} per-stimulus shape {shape}; layouts place a (C,) vector "
        f"(dense layer) or a (C, H, W) map (conv layer).{token_hint} For other shapes give "
        f"areas={{{area!r}: Area({module!r}, transform=fn)}} with fn mapping the (B, ...) batch to (B, C, H, W) or (B, C)."
    )
