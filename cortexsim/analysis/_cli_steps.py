"""The second set of ``cortexsim analyze`` steps (smoothness, pinwheels, patches, RSA), and the patch
search's settings: TDANN's, scaled to the sheet, with a reason printed when no patch is found."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from .cli import _safe, scalars


def part2_steps(ds: xr.Dataset, args: argparse.Namespace, cache: dict[str, Any], ori: Callable[[], xr.Dataset],
           moments: Callable[[], Any], figure: Callable[..., None]) -> dict[str, Callable[[], dict[str, Any]]]:
    """Steps of the second analysis set (smoothness, pinwheels, patches, RSA): summaries and figures."""
    from .. import analysis
    from . import figures as fg
    from .selectivity import tstat

    def run_patches() -> dict[str, Any]:
        settings = patch_settings(ds, args)
        area = str(ds["area"].values[0]) if "area" in ds.coords and ds.sizes["unit"] else ""

        def report(p: xr.Dataset, category: Any, suffix: str) -> str | None:
            """Draw one category's patches; the reason when there are none (also printed)."""
            p.attrs.update(area=area, category=str(category))
            figure(fg.plot_patches, p, suffix)
            if int(p["count"]):
                return None
            why = why_no_patches(p)
            print(f"cortexsim analyze: {area}/patches {category}: {why}", file=sys.stderr)
            return why

        if args.target is None:
            from .patches import _by_category
            from .selectivity import selectivity

            maps = selectivity(ds, args.by, stat="t", undefined=args.undefined, min_sd=args.min_sd, moments=moments())
            summary, per_category = _by_category(maps, args.by, kind="t", **settings)  # each category's patches once
            notes = {str(c): report(p, c, f"patches_{_safe(str(c))}")
                     for c, p in zip(summary["category"].values.tolist(), per_category)}
            notes = {c: why for c, why in notes.items() if why}
            return {**scalars(summary), "settings": settings, **({"why_none": notes} if notes else {})}
        t = cache.get("t")
        if t is None:
            ref = args.reference.split(",") if args.reference else None
            t = tstat(ds, args.by, args.target, ref, undefined=args.undefined, min_sd=args.min_sd, moments=moments())
        p = analysis.patches(t, kind="t", **settings)
        why = report(p, args.target, "patches")
        return {**scalars(p), "settings": settings, **({"why_none": why} if why else {})}

    def run_rsa() -> dict[str, Any]:
        by = args.by if args.by in ds.coords else None
        r = analysis.rdm(ds, by=by)
        figure(fg.plot_rdm, r, "rdm")
        return {"n_conditions": int(r.shape[0]), "by": by,
                "mean_dissimilarity": float(np.nanmean(r.values[np.triu_indices(r.shape[0], 1)]))}

    def run_smoothness() -> dict[str, Any]:
        sm = analysis.smoothness(ds, seed=args.seed)
        figure(fg.plot_smoothness, sm, "smoothness")
        return scalars(sm)

    def run_pinwheels() -> dict[str, Any]:
        pw = analysis.pinwheels(ori())
        xy = np.stack([pw["pinwheel_x_mm"].values, pw["pinwheel_y_mm"].values], axis=1)
        figure(lambda o, path, formats: fg.plot_orientation_map(o, path, formats, pinwheels=xy), ori(), "pinwheels")
        return scalars(pw)

    return {
        "smoothness": run_smoothness,
        "pinwheels": run_pinwheels,
        "patches": run_patches,
        "rsa": run_rsa,
    }


#: TDANN's patch settings (Margalit et al. 2024) and the sheet they belong to (its 70 mm VTC).
TDANN_PATCH = {"sigma_mm": 2.4, "min_area_mm2": 100.0, "side_mm": 70.0}


def patch_settings(ds: xr.Dataset, args: argparse.Namespace) -> dict[str, float]:
    """threshold / sigma_mm / min_area_mm2 / resolution_mm of the patch search on this area.

    Unless given, σ and the smallest area are TDANN's (2.4 mm, 100 mm² on its 70 mm VTC sheet),
    scaled by side/70 (σ) and (side/70)² (area) on a smaller sheet, so a small sheet is not
    smoothed flat nor asked for patches larger than itself. The pixel is the units' density
    spacing (:func:`cortexsim.grid.unit_spacing`): at the nearest-neighbour distance a jittered
    sheet leaves most pixels empty and above-threshold regions break into specks.
    """
    from ..grid import unit_spacing

    pos = ds.cortex.positions[:, :2]
    side = float(np.ptp(pos, axis=0).min()) if len(pos) > 1 else 0.0
    f = min(1.0, side / TDANN_PATCH["side_mm"]) if side > 0 else 1.0
    return {"threshold": float(args.patch_threshold), "resolution_mm": float(unit_spacing(pos)),
            "sigma_mm": float(args.patch_sigma_mm if args.patch_sigma_mm is not None else TDANN_PATCH["sigma_mm"] * f),
            "min_area_mm2": float(args.patch_min_area_mm2 if args.patch_min_area_mm2 is not None
                                  else TDANN_PATCH["min_area_mm2"] * f * f)}


def why_no_patches(p: xr.Dataset) -> str:
    """Why :func:`~cortexsim.analysis.patches` found nothing: the peak was too low, or the regions too small."""
    from scipy import ndimage

    smoothed = np.asarray(p["smoothed"].values, float)
    threshold, min_area = float(p.attrs["threshold"]), float(p.attrs["min_area_mm2"])
    res = float(p.attrs["resolution_mm"])
    kind = p.attrs.get("kind", "t")
    if not np.isfinite(smoothed).any():
        return "no finite selectivity on this sheet."
    peak = float(np.nanmax(smoothed))
    if peak <= threshold:
        return (f"0 patches: the smoothed {kind} peaks at {peak:.3g}, not above the threshold {threshold:g} "
                f"(lower it with --patch-threshold, or record more stimuli: t grows with their number).")
    labels, n = ndimage.label(np.nan_to_num(smoothed, nan=-np.inf) > threshold)
    largest = float(np.bincount(labels.ravel())[1:].max()) * res * res if n else 0.0
    return (f"0 patches: the smoothed {kind} exceeds {threshold:g} in {n} region(s), the largest {largest:.3g} mm², "
            f"all smaller than --patch-min-area-mm2 {min_area:.3g}.")
