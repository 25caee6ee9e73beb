"""Orientation maps of grating responses and their pinwheels."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import register_analysis
from ..report import Context, scalars, stats


@register_analysis("orientation", coord="orientation_coord", figure="plot_orientation_map", order=6,
                   params=("orientation_coord",))
def orientation(ctx: Context) -> dict[str, Any]:
    """Preferred orientation / spatial frequency, circular variance and OSI of every unit."""
    from ..preference import orientation_map

    o = ctx.keep(orientation_map(ctx.ds, orientation=ctx.p.orientation_coord))
    for k in ("preferred_orientation_deg", "preferred_sf_cpd", "circular_variance", "osi"):
        ctx.map(k, o[k])
    return {"circular_variance": stats(o["circular_variance"].values), "osi": stats(o["osi"].values),
            "preferred_sf_cpd": stats(o["preferred_sf_cpd"].values)}


@register_analysis("pinwheels", needs=("orientation",), coord="orientation_coord", requires="pinwheels", order=8)
def pinwheels(ctx: Context) -> dict[str, Any]:
    """Pinwheel centres of the orientation map and their density per column spacing²."""
    from ..pinwheels import pinwheels as find_pinwheels

    ori = ctx.need("orientation")
    pw = ctx.keep(find_pinwheels(ori))
    xy = np.stack([pw["pinwheel_x_mm"].values, pw["pinwheel_y_mm"].values], axis=1)
    ctx.figure("pinwheels", "plot_orientation_map", ori, pinwheels=xy)
    return scalars(pw)
