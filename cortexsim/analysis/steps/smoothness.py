"""Smoothness: response similarity vs cortical distance, with a position-shuffled control."""
from __future__ import annotations

from typing import Any

from ..registry import register_analysis
from ..report import Context, scalars


@register_analysis("smoothness", requires="smoothness", figure="plot_smoothness", order=7, params=("seed",))
def smoothness(ctx: Context) -> dict[str, Any]:
    """Mean pairwise response correlation per distance bin (TDANN's smoothness)."""
    from ..smoothness import smoothness as smooth

    return scalars(ctx.keep(smooth(ctx.ds, seed=ctx.p.seed)))
