"""Group moments, per-category selectivity, d′/t maps and the categorical preference map."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import register_analysis
from ..report import Context, safe_name, stats


@register_analysis("moments", coord="by", params=("by", "skipna"), hidden=True, order=-3)
def moments(ctx: Context) -> None:
    """Per-category moments of every unit's responses (one read of the responses)."""
    from ..selectivity import moments_for

    ctx.keep(moments_for(ctx.ds, ctx.p.by, skipna=ctx.p.skipna))


@register_analysis("category_selectivity", needs=("moments",), coord="by", hidden=True, order=-2,
                   params=("by", "undefined", "min_sd"))
def category_selectivity(ctx: Context) -> None:
    """d′ of every category vs the rest, (category, unit)."""
    from ..selectivity import selectivity

    ctx.keep(selectivity(ctx.ds, by=ctx.p.by, undefined=ctx.p.undefined, min_sd=ctx.p.min_sd,
                         moments=ctx.need("moments")))


@register_analysis("selectivity", needs=("moments",), coord="by", order=0,
                   params=("by", "target", "reference", "threshold", "undefined", "min_sd"))
def selectivity(ctx: Context) -> dict[str, Any]:
    """d′ (and t, with a target) maps of the categories of ``by``."""
    from ..selectivity import dprime, tstat

    p = ctx.p
    if p.target is None:
        s = ctx.keep(ctx.need("category_selectivity"))
        out = {}
        for c in s["category"].values.tolist():
            d_c = s.sel(category=c, drop=True)
            ctx.map(f"dprime_{safe_name(str(c))}", d_c)
            ctx.figure(f"dprime_{safe_name(str(c))}", "plot_dprime_map",
                       d_c.rename(f"d′ {c}").assign_attrs(long_name=f"d′ {c} vs the rest"))
            out[str(c)] = {"dprime": stats(d_c.values), "n_above_threshold": int(np.sum(d_c.values > p.threshold))}
        return out
    kw = dict(undefined=p.undefined, min_sd=p.min_sd, moments=ctx.need("moments"))
    d = dprime(ctx.ds, by=p.by, target=p.target, reference=p.reference, **kw)
    t = tstat(ctx.ds, by=p.by, target=p.target, reference=p.reference, **kw)
    ctx.keep(d.to_dataset(name="dprime").assign(t=t))
    ctx.map("dprime", d)
    ctx.map("t", t)
    ctx.figure("dprime", "plot_dprime_map", d)
    return {"target": d.attrs["target"], "reference": d.attrs["reference"], "dprime": stats(d.values),
            "t": stats(t.values), "n_dprime_above_threshold": int(np.sum(d.values > p.threshold))}


@register_analysis("preference", needs=("category_selectivity",), coord="by", figure="plot_preference_map",
                   order=1, params=("by", "threshold"))
def preference(ctx: Context) -> dict[str, Any]:
    """Categorical preference map: the category of largest d′ above ``threshold`` (else none)."""
    from ..preference import preference_from_selectivity

    pref = ctx.keep(preference_from_selectivity(ctx.need("category_selectivity"), ctx.p.threshold))
    labels, counts = np.unique(np.asarray(pref.values).astype(str), return_counts=True)
    ctx.map("preference", pref)
    return {"threshold": ctx.p.threshold, "classes": pref.attrs["classes"],
            "counts": dict(zip(labels.tolist(), counts.tolist()))}
