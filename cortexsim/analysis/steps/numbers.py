"""Number maps: preferred numerosity and tuning width of every unit (Nasr et al.)."""
from __future__ import annotations

from typing import Any

from ..registry import register_analysis
from ..report import Context, stats


@register_analysis("numbers", coord="numbers_by", order=5, params=("numbers_by", "threshold", "undefined"))
def numbers(ctx: Context) -> dict[str, Any]:
    """Preferred numerosity, tuning width and tuning curves of the number-selective units."""
    from ..preference import number_map

    nm = ctx.keep(number_map(ctx.ds, by=ctx.p.numbers_by, threshold=ctx.p.threshold, undefined=ctx.p.undefined))
    ctx.map("preferred_numerosity", nm["preferred_numerosity"])
    ctx.map("tuning_width", nm["tuning_width"])
    ctx.figure("preferred_numerosity", "plot_unit_map", nm["preferred_numerosity"], label="preferred numerosity")
    ctx.figure("number_tuning", "plot_tuning_curves", nm["tuning"])
    return {"n_selective": int(nm["selective"].sum()), "tuning_width": stats(nm["tuning_width"].values),
            "preferred": stats(nm["preferred_numerosity"].values)}
