"""Per-unit maps on the sheet (mm): preference, d′/t, orientation, any quantity, patches.

Each function takes a per-unit result (DataArray over ``unit`` with x_mm / y_mm coords, or the
Dataset the analysis returned), draws one panel per area (a Sheet of several areas gets several
Axes; ``ax=`` then takes one Axes per area), and returns the Axes (an array when several).
Colour scales of continuous maps span the ``percentile`` (99) of the values, so a few
near-constant units with a huge d′ do not wash the map out (the colour bar gets an arrow).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from ..errors import SheetError
from ._base import (EMPTY_COLOUR, NONE_COLOUR, PERCENTILE, OutputFile, axes_for, extend, finish, palette, require,
                    robust_limits, where)


def _areas(da: xr.DataArray) -> list[tuple[str, xr.DataArray]]:
    if "area" not in da.coords:
        return [("", da)]
    names = np.asarray(da["area"].values).astype(str)
    _, first = np.unique(names, return_index=True)
    return [(a, da.isel(unit=np.flatnonzero(names == a))) for a in (names[i] for i in sorted(first))]


def raster(values: np.ndarray, like: xr.DataArray, statistic: str = "mean") -> tuple[np.ndarray, list[float]]:
    """(image (ny, nx), imshow extent in mm) of per-unit ``values`` placed by x_mm / y_mm."""
    if "x_mm" not in like.coords or "y_mm" not in like.coords:
        raise SheetError("plotting a map needs the unit coords x_mm / y_mm; keep the Sheet's unit coords.")
    from ..grid import Grid, rasterize, unit_positions, unit_spacing

    pos = unit_positions(like, ndim=2)
    # unit_spacing, not the nearest-neighbour distance: on jittered / retinotopic sheets the latter
    # leaves most pixels empty and the map a speckle (one unit per pixel on regular sheets either way)
    img = rasterize(values, pos, statistic=statistic, resolution_mm=unit_spacing(pos))
    return np.asarray(img.values), Grid.of(img).extent()


def _map_panels(da: xr.DataArray, draw: Any, title: str, func: str, ax: Any, figure: Any,
                output_file: OutputFile) -> tuple[Any, list[Any]]:
    """One panel per area; ``draw(ax, sub)`` renders a panel and returns its image handle."""
    panels = _areas(da)
    axes = axes_for(len(panels), ax=ax, figure=figure, output_file=output_file,
                    figsize=(4.2 * len(panels) + 1.0, 4.0), func=func)
    for a, (area, sub) in zip(axes, panels):
        im = draw(a, sub)
        a.set_title(f"{title}{' — ' + area if area else ''}", fontsize=9)
        a.set(xlabel="x (mm)", ylabel="y (mm)", aspect="equal")
    return im, axes


def _per_unit(obj: Any, func: str, hint: str = "") -> xr.DataArray:
    if not isinstance(obj, xr.DataArray) or obj.dims != ("unit",):
        dims = getattr(obj, "dims", None)
        raise SheetError(f"{func} needs a per-unit DataArray; got {type(obj).__name__} with dims {dims}{hint}.")
    return obj


def plot_preference_map(obj: xr.DataArray, *, ax: Any = None, figure: Any = None,
                        output_file: OutputFile = None) -> Any:
    """Categorical preference map (:func:`~cortexsim.analysis.preference_map`): one colour per category.

    The legend lists the categories some unit prefers, ``none`` (white) when some unit has no
    preference, and "no unit" (grey) for sheet pixels without a unit: every colour on the map is in
    the legend and nothing else is.
    """
    from ..analysis.clustering import preference_codes

    pref = _per_unit(obj, "plot_preference_map")
    codes, classes = preference_codes(pref)
    base = palette(len(classes))
    cmap = ListedColormap([NONE_COLOUR] + base).with_extremes(bad=EMPTY_COLOUR)
    shown = pref.copy(data=codes + 1)  # 0 = none, 1..C categories
    empty = []

    def draw(a, sub):
        img, ext = raster(np.asarray(sub.values, float), sub, statistic="max")
        empty.append(bool(np.isnan(img).any()))
        return a.imshow(img, origin="lower", extent=ext, cmap=cmap, vmin=-0.5, vmax=len(classes) + 0.5,
                        interpolation="nearest")

    _, axes = _map_panels(shown, draw, f"preferred {pref.attrs.get('by', 'category')}", "plot_preference_map",
                          ax, figure, output_file)
    n = np.bincount(codes + 1, minlength=len(classes) + 1)  # units per code: none, then each category
    handles = [Patch(facecolor=c, edgecolor="0.5", label=f"{lab} ({n[i + 1]})")
               for i, (c, lab) in enumerate(zip(base, classes)) if n[i + 1]]
    if n[0]:
        handles.append(Patch(facecolor=NONE_COLOUR, edgecolor="0.5", label=f"{pref.attrs.get('none', 'none')} ({n[0]})"))
    if any(empty):
        handles.append(Patch(facecolor=EMPTY_COLOUR, edgecolor="0.5", label="no unit"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return finish(axes, output_file)


def plot_dprime_map(obj: xr.DataArray, *, vmax: float | None = None, percentile: float = PERCENTILE,
                    ax: Any = None, figure: Any = None, output_file: OutputFile = None) -> Any:
    """Per-unit d′ (or t) map on a diverging colormap centred on 0.

    The scale is ±``vmax``, by default the ``percentile`` of |d′| (robust to near-constant units).
    """
    d = _per_unit(obj, "plot_dprime_map", " (select one category first)")
    v = np.asarray(d.values, float)
    lim = float(vmax) if vmax is not None else robust_limits(v, percentile, symmetric=True)[1]
    lim = lim or 1.0

    def draw(a, sub):
        img, ext = raster(np.asarray(sub.values, float), sub)
        return a.imshow(img, origin="lower", extent=ext, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")

    im, axes = _map_panels(d, draw, d.attrs.get("long_name", d.name or "d′"), "plot_dprime_map", ax, figure,
                           output_file)
    axes[0].figure.colorbar(im, ax=list(axes), shrink=0.8, label=str(d.name or "d′"), extend=extend(v, -lim, lim))
    return finish(axes, output_file)


def pinwheel_points(pinwheels: Any) -> np.ndarray:
    """(n, 2) x/y in mm of a :func:`~cortexsim.analysis.pinwheels` result, a Dataset with ``x_mm``/``y_mm``
    variables, or an array."""
    if isinstance(pinwheels, xr.Dataset):
        for x, y in (("pinwheel_x_mm", "pinwheel_y_mm"), ("x_mm", "y_mm")):
            if x in pinwheels and y in pinwheels:
                return np.stack([np.asarray(pinwheels[x], float), np.asarray(pinwheels[y], float)], axis=1)
        raise SheetError("pinwheels= needs a pinwheels() result (pinwheel_x_mm / pinwheel_y_mm), or an (n, 2) array.")
    return np.asarray(pinwheels, float).reshape(-1, 2)


def plot_orientation_map(obj: xr.Dataset | xr.DataArray, *, pinwheels: Any = None, ax: Any = None,
                         figure: Any = None, output_file: OutputFile = None) -> Any:
    """Preferred-orientation map on the cyclic HSV colormap (0–180°), optionally with pinwheel centres.

    Parameters
    ----------
    obj : :func:`~cortexsim.analysis.orientation_map` Dataset or a per-unit DataArray of degrees
    pinwheels : :func:`~cortexsim.analysis.pinwheels` result or (n, 2) array of (x_mm, y_mm), optional
        Drawn as black/white markers.
    """
    da = obj["preferred_orientation_deg"] if isinstance(obj, xr.Dataset) else obj
    pts = pinwheel_points(pinwheels) if pinwheels is not None else None

    def draw(a, sub):
        # averaging angles within a pixel is meaningless: average the doubled-angle vectors instead
        theta = np.deg2rad(2.0 * np.asarray(sub.values, float))
        re, ext = raster(np.cos(theta), sub)
        im_, _ = raster(np.sin(theta), sub)
        img = np.mod(np.rad2deg(np.arctan2(im_, re)) / 2.0, 180.0)
        handle = a.imshow(img, origin="lower", extent=ext, cmap="hsv", vmin=0, vmax=180, interpolation="nearest")
        a.set_facecolor(EMPTY_COLOUR)
        if pts is not None:
            a.plot(pts[:, 0], pts[:, 1], "o", ms=5, mfc="white", mec="black")
        return handle

    im, axes = _map_panels(_per_unit(da, "plot_orientation_map"), draw, "preferred orientation",
                           "plot_orientation_map", ax, figure, output_file)
    cb = axes[0].figure.colorbar(im, ax=list(axes), shrink=0.8, label="orientation (deg)")
    cb.set_ticks([0, 45, 90, 135, 180])
    return finish(axes, output_file)


def plot_unit_map(obj: xr.DataArray, *, cmap: str = "viridis", label: str | None = None,
                  percentile: float = PERCENTILE, ax: Any = None, figure: Any = None,
                  output_file: OutputFile = None) -> Any:
    """Any per-unit quantity on a sequential colormap (preferred numerosity, tuning width, entropy, PoZ …).

    The scale spans the (100 − ``percentile``, ``percentile``) percentiles (100: the full range).
    """
    values = _per_unit(obj, "plot_unit_map")
    v = np.asarray(values.values, float)
    lo, hi = robust_limits(v, percentile)

    def draw(a, sub):
        img, ext = raster(np.asarray(sub.values, float), sub)
        a.set_facecolor(EMPTY_COLOUR)
        return a.imshow(img, origin="lower", extent=ext, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")

    name = label or str(values.attrs.get("long_name", values.name or "value"))
    im, axes = _map_panels(values, draw, name, "plot_unit_map", ax, figure, output_file)
    axes[0].figure.colorbar(im, ax=list(axes), shrink=0.8, label=str(values.attrs.get("units", name)),
                            extend=extend(v, lo, hi))
    return finish(axes, output_file)


def plot_patches(obj: xr.Dataset, *, ax: Any = None, figure: Any = None, output_file: OutputFile = None) -> Any:
    """Smoothed selectivity on the mm grid (:func:`~cortexsim.analysis.patches`) with patch outlines and centroids."""
    p = obj
    require(p, ("smoothed", "label", "count"), "plot_patches", "a patches()")
    img = np.asarray(p["smoothed"].values, float)
    x, y = np.asarray(p["smoothed"]["x_mm"].values, float), np.asarray(p["smoothed"]["y_mm"].values, float)
    _, lim = robust_limits(img, symmetric=True)
    lim = max(lim, float(p.attrs.get("threshold", 0.0)) * 1.25)  # the threshold stays inside the scale
    (a,) = axes_for(1, ax=ax, figure=figure, output_file=output_file, figsize=(5.4, 4.4), func="plot_patches")
    mesh = a.pcolormesh(x, y, img, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
    labels = np.asarray(p["label"].values)
    if (labels > 0).any():
        a.contour(x, y, (labels > 0).astype(float), levels=[0.5], colors="black", linewidths=1.0)
        a.plot(np.asarray(p["centroid_x_mm"]), np.asarray(p["centroid_y_mm"]), "k+", ms=8)
    a.set(aspect="equal", xlabel="x (mm)", ylabel="y (mm)")
    n = int(p["count"])
    a.set_title(f"{n} patch{'' if n == 1 else 'es'}, {float(p['total_area_mm2']):.3g} mm²{where(p)}", fontsize=10)
    stat = p.attrs.get("stat", p.attrs.get("kind", "selectivity"))
    a.figure.colorbar(mesh, ax=a, shrink=0.8, label=f"smoothed {stat}", extend=extend(img, -lim, lim))
    return finish([a], output_file)
