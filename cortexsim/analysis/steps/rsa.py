"""Representational dissimilarity matrix of the categories (or stimuli)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import register_analysis
from ..report import Context


@register_analysis("rsa", requires="rdm", figure=("rdm", "plot_rdm"), order=10, params=("by",))
def rsa(ctx: Context) -> dict[str, Any]:
    """1 − Pearson r between the mean responses to the categories of ``by`` (each stimulus without it)."""
    from ..representation import rdm

    by = ctx.p.by if ctx.p.by in ctx.ds.coords else None
    r = ctx.keep(rdm(ctx.ds, by=by))
    return {"n_conditions": int(r.shape[0]), "by": by,
            "mean_dissimilarity": float(np.nanmean(r.values[np.triu_indices(r.shape[0], 1)]))}
