"""Category patches: regions of the smoothed t map above a threshold (TDANN's face/body/... patches).

The patch search's settings are TDANN's, scaled to the sheet, with a reason noted when no patch is found.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..registry import register_analysis
from ..report import Context, safe_name, scalars

#: TDANN's patch settings (Margalit et al. 2024) and the sheet they belong to (its 70 mm VTC).
TDANN_PATCH = {"sigma_mm": 2.4, "min_area_mm2": 100.0, "side_mm": 70.0}


@register_analysis("patches", needs=("moments",), coord="by", requires="patches_by_category", order=9,
                   params=("by", "target", "reference", "undefined", "min_sd", "patch_threshold", "patch_sigma_mm",
                           "patch_min_area_mm2"))
def patches(ctx: Context) -> dict[str, Any]:
    """Patches of each category's (or the target's) smoothed t map, their count, area and centroids."""
    from ..patches import _by_category, patches as find_patches
    from ..selectivity import selectivity, tstat

    p = ctx.p
    settings = patch_settings(ctx.ds, p)
    kw = dict(undefined=p.undefined, min_sd=p.min_sd, moments=ctx.need("moments"))

    def report(result: xr.Dataset, category: Any, suffix: str) -> str | None:
        """Draw one category's patches; the reason when there are none (also noted)."""
        result.attrs.update(area=ctx.area, category=str(category))
        ctx.figure(suffix, "plot_patches", result)
        if int(result["count"]):
            return None
        why = why_no_patches(result)
        ctx.note(f"{category}: {why}", sep=" ")
        return why

    if p.target is None:
        maps = selectivity(ctx.ds, by=p.by, stat="t", **kw)
        summary, per_category = _by_category(maps, p.by, stat="t", **settings)  # each category's patches once
        ctx.keep(summary)
        notes = {str(c): report(r, c, f"patches_{safe_name(str(c))}")
                 for c, r in zip(summary["category"].values.tolist(), per_category)}
        notes = {c: why for c, why in notes.items() if why}
        return {**scalars(summary), "settings": settings, **({"why_none": notes} if notes else {})}
    t = tstat(ctx.ds, by=p.by, target=p.target, reference=p.reference, **kw)
    result = ctx.keep(find_patches(t, stat="t", **settings))
    why = report(result, p.target, "patches")
    return {**scalars(result), "settings": settings, **({"why_none": why} if why else {})}


def patch_settings(ds: xr.Dataset, p: Any) -> dict[str, float]:
    """threshold / sigma_mm / min_area_mm2 / resolution_mm of the patch search on this area.

    Unless given (``p.patch_sigma_mm``, ``p.patch_min_area_mm2``), σ and the smallest area are
    TDANN's (2.4 mm, 100 mm² on its 70 mm VTC sheet), scaled by side/70 (σ) and (side/70)² (area)
    on a smaller sheet, so a small sheet is not smoothed flat nor asked for patches larger than
    itself. The pixel is the units' density spacing (:func:`cortexsim.grid.unit_spacing`): at the
    nearest-neighbour distance a jittered sheet leaves most pixels empty and above-threshold
    regions break into specks.
    """
    from ...grid import unit_spacing

    pos = ds.cortex.positions[:, :2]
    side = float(np.ptp(pos, axis=0).min()) if len(pos) > 1 else 0.0
    f = min(1.0, side / TDANN_PATCH["side_mm"]) if side > 0 else 1.0
    return {"threshold": float(p.patch_threshold), "resolution_mm": float(unit_spacing(pos)),
            "sigma_mm": float(p.patch_sigma_mm if p.patch_sigma_mm is not None else TDANN_PATCH["sigma_mm"] * f),
            "min_area_mm2": float(p.patch_min_area_mm2 if p.patch_min_area_mm2 is not None
                                  else TDANN_PATCH["min_area_mm2"] * f * f)}


def why_no_patches(p: xr.Dataset) -> str:
    """Why :func:`~cortexsim.analysis.patches` found nothing: the peak was too low, or the regions too small."""
    from scipy import ndimage

    smoothed = np.asarray(p["smoothed"].values, float)
    threshold, min_area = float(p.attrs["threshold"]), float(p.attrs["min_area_mm2"])
    res = float(p.attrs["resolution_mm"])
    stat = p.attrs.get("stat", p.attrs.get("kind", "t"))
    if not np.isfinite(smoothed).any():
        return "no finite selectivity on this sheet."
    peak = float(np.nanmax(smoothed))
    if peak <= threshold:
        return (f"0 patches: the smoothed {stat} peaks at {peak:.3g}, not above the threshold {threshold:g} "
                f"(lower it with --patch-threshold, or record more stimuli: t grows with their number).")
    labels, n = ndimage.label(np.nan_to_num(smoothed, nan=-np.inf) > threshold)
    largest = float(np.bincount(labels.ravel())[1:].max()) * res * res if n else 0.0
    return (f"0 patches: the smoothed {stat} exceeds {threshold:g} in {n} region(s), the largest {largest:.3g} mm², "
            f"all smaller than --patch-min-area-mm2 {min_area:.3g}.")
