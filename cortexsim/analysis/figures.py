"""Figures of the analyses, written as PNG and SVG (matplotlib, no display needed).

Each ``plot_*`` function takes an analysis result and an output path (suffix
ignored), draws with :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot
state), saves one file per format and returns the written paths. Per-unit maps
are rasterised on the sheet in mm with ``ds.cortex.map`` (one unit per pixel on
regular sheets); a Sheet with several areas gets one panel per area.

Colour scales of continuous maps are robust: they span the ``percentile`` (default 99)
of the values, not their extremes, so a few near-constant units with a huge d′ do
not wash out the map (values beyond are drawn in the end colours; the colour bar
gets an arrow). Titles name the area and category (from the coords / ``attrs``).
In SVG/PDF the image layers are embedded as rasters (axes, text and outlines stay
vectors), so a per-unit map of 10⁵ units is not written as 10⁵ vector squares.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch

from ..errors import SheetError

FORMATS: tuple[str, ...] = ("png", "svg")
#: Colour of units without preference, and of sheet pixels without a unit (both in the legend).
NONE_COLOUR = "white"
EMPTY_COLOUR = "0.85"
#: Percentile of the values a continuous colour scale spans (robust to a few extreme units).
PERCENTILE = 99.0


def save_figure(fig: Figure, path: str | os.PathLike, formats: Sequence[str] = FORMATS, dpi: int = 120) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats``; returns the paths written."""
    base = Path(path)
    if base.suffix.lstrip(".").lower() in ("png", "svg", "pdf"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    for ax in fig.axes:  # image layers as rasters inside vector files (a no-op for PNG)
        for artist in (*ax.images, *ax.collections):
            if isinstance(artist, (AxesImage, QuadMesh)):
                artist.set_rasterized(True)
    out = []
    for fmt in formats:
        target = base.with_name(f"{base.name}.{fmt}")
        # SVG keeps text as text (editable in Illustrator/Inkscape, searchable) instead of glyph paths.
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(target, format=fmt, dpi=dpi, bbox_inches="tight")
        out.append(target)
    return out


def _require(result: xr.Dataset, names: Sequence[str], func: str, what: str) -> None:
    """Raise a SheetError naming the first variable of ``names`` missing from an analysis result."""
    for name in names:
        if name not in result:
            raise SheetError(f"{func} needs {what} result; {name!r} is missing.")


def robust_limits(values: Any, percentile: float = PERCENTILE, symmetric: bool = False) -> tuple[float, float]:
    """Colour limits spanning the central ``percentile`` of the finite values.

    ``symmetric``: (-L, L) with L the ``percentile`` of |values| (diverging maps centred on 0);
    else the (100 - p, p) percentiles. All-NaN or constant values give a non-empty range.
    """
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        lim = float(np.percentile(np.abs(v), percentile)) or float(np.abs(v).max()) or 1.0
        return -lim, lim
    lo, hi = (float(x) for x in np.percentile(v, [100.0 - percentile, percentile]))
    if hi <= lo:
        lo, hi = float(v.min()), float(v.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _extend(values: Any, lo: float, hi: float) -> str:
    """The colour bar's ``extend`` for values beyond (lo, hi)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    below, above = bool(v.size and v.min() < lo), bool(v.size and v.max() > hi)
    return ("neither", "max", "min", "both")[2 * below + above]


def _where(obj: Any) -> str:
    """' — AREA, CATEGORY' from an analysis result's ``area`` coord / attrs (empty when unknown)."""
    attrs = getattr(obj, "attrs", {})
    area = attrs.get("area")
    if area is None and "area" in getattr(obj, "coords", {}):
        names = np.unique(np.asarray(obj["area"].values).astype(str))
        area = names[0] if len(names) == 1 else None
    parts = [str(x) for x in (area, attrs.get("category")) if x not in (None, "", "None")]
    return f" — {', '.join(parts)}" if parts else ""


def _areas(da: xr.DataArray) -> list[tuple[str, xr.DataArray]]:
    if "area" not in da.coords:
        return [("", da)]
    names = np.asarray(da["area"].values).astype(str)
    _, first = np.unique(names, return_index=True)
    order = [names[i] for i in sorted(first)]
    return [(a, da.isel(unit=np.flatnonzero(names == a))) for a in order]


def _raster(values: np.ndarray, like: xr.DataArray, statistic: str = "mean") -> tuple[np.ndarray, list[float]]:
    """(image (ny, nx), imshow extent in mm) of per-unit ``values`` placed by x_mm / y_mm."""
    if "x_mm" not in like.coords or "y_mm" not in like.coords:
        raise SheetError("plotting a map needs the unit coords x_mm / y_mm; keep the Sheet's unit coords.")
    from ..grid import Grid, rasterize, unit_positions, unit_spacing

    pos = unit_positions(like, ndim=2)
    # unit_spacing, not the nearest-neighbour distance: on jittered / retinotopic sheets the latter
    # leaves most pixels empty and the map a speckle (one unit per pixel on regular sheets either way)
    img = rasterize(values, pos, statistic=statistic, resolution_mm=unit_spacing(pos))  # the one raster routine
    return np.asarray(img.values), Grid.of(img).extent()


def _map_figure(da: xr.DataArray, draw: Any, title: str) -> tuple[Figure, Any, np.ndarray]:
    """One panel per area; ``draw(ax, sub)`` renders a panel and returns its image handle."""
    panels = _areas(da)
    fig = Figure(figsize=(4.2 * len(panels) + 1.0, 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (area, sub) in zip(axes, panels):
        im = draw(ax, sub)
        ax.set_title(f"{title}{' — ' + area if area else ''}", fontsize=9)
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        ax.set_aspect("equal")
    return fig, im, axes


def plot_preference_map(pref: xr.DataArray, path: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Categorical preference map (:func:`preference_map`): one colour per class, ``none`` white.

    The legend lists the classes some unit prefers (a class no unit prefers has no colour on the
    map), ``none`` when some unit has no preference, and "no unit" (grey) for sheet pixels
    without a unit, so every colour on the map is in the legend and nothing else is.
    """
    from .clustering import preference_codes

    codes, classes = preference_codes(pref)
    base = _palette(len(classes))
    cmap = ListedColormap([NONE_COLOUR] + base).with_extremes(bad=EMPTY_COLOUR)
    shown = pref.copy(data=codes + 1)  # 0 = none, 1..C classes
    empty = []

    def draw(ax, sub):
        img, extent = _raster(np.asarray(sub.values, float), sub, statistic="max")
        empty.append(bool(np.isnan(img).any()))
        return ax.imshow(img, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=len(classes) + 0.5,
                         interpolation="nearest")

    fig, _, axes = _map_figure(shown, draw, f"preferred {pref.attrs.get('by', 'category')}")
    n = np.bincount(codes + 1, minlength=len(classes) + 1)  # units per code: none, then each class
    handles = [Patch(facecolor=c, edgecolor="0.5", label=f"{lab} ({n[i + 1]})")
               for i, (c, lab) in enumerate(zip(base, classes)) if n[i + 1]]
    if n[0]:
        handles.append(Patch(facecolor=NONE_COLOUR, edgecolor="0.5", label=f"{pref.attrs.get('none', 'none')} ({n[0]})"))
    if any(empty):
        handles.append(Patch(facecolor=EMPTY_COLOUR, edgecolor="0.5", label="no unit"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return save_figure(fig, path, formats)


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_dprime_map(d: xr.DataArray, path: str | os.PathLike, formats: Sequence[str] = FORMATS,
                    vmax: float | None = None, percentile: float = PERCENTILE) -> list[Path]:
    """Per-unit d′ (or t) map on a diverging colormap centred on 0.

    The scale is ±``vmax``, by default the ``percentile`` of |d′| (robust to near-constant units).
    """
    if d.dims != ("unit",):
        raise SheetError(f"plot_dprime_map needs a per-unit DataArray; got dims {d.dims} (select one category first).")
    v = np.asarray(d.values, float)
    lim = float(vmax) if vmax is not None else robust_limits(v, percentile, symmetric=True)[1]
    lim = lim or 1.0

    def draw(ax, sub):
        img, extent = _raster(np.asarray(sub.values, float), sub)
        return ax.imshow(img, origin="lower", extent=extent, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")

    fig, im, axes = _map_figure(d, draw, d.attrs.get("long_name", d.name or "d′"))
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=str(d.name or "d′"), extend=_extend(v, -lim, lim))
    return save_figure(fig, path, formats)


def plot_orientation_map(ori: xr.Dataset | xr.DataArray, path: str | os.PathLike, formats: Sequence[str] = FORMATS,
                         pinwheels: Any = None) -> list[Path]:
    """Preferred-orientation map on the cyclic HSV colormap (0–180°), optionally with pinwheel centres.

    Parameters
    ----------
    ori : :func:`orientation_map` Dataset or a per-unit DataArray of degrees
    pinwheels : (n, 2) array of (x_mm, y_mm), or a Dataset with ``x_mm``/``y_mm`` variables, optional
        Drawn as black/white markers.
    """
    da = ori["preferred_orientation_deg"] if isinstance(ori, xr.Dataset) else ori

    def draw(ax, sub):
        # averaging angles within a pixel is meaningless: average the doubled-angle vectors instead
        theta = np.deg2rad(2.0 * np.asarray(sub.values, float))
        re, extent = _raster(np.cos(theta), sub)
        im_, _ = _raster(np.sin(theta), sub)
        img = np.mod(np.rad2deg(np.arctan2(im_, re)) / 2.0, 180.0)
        handle = ax.imshow(img, origin="lower", extent=extent, cmap="hsv", vmin=0, vmax=180, interpolation="nearest")
        ax.set_facecolor(EMPTY_COLOUR)
        if pinwheels is not None:
            pts = (np.stack([np.asarray(pinwheels["x_mm"]), np.asarray(pinwheels["y_mm"])], axis=1)
                   if isinstance(pinwheels, xr.Dataset) else np.asarray(pinwheels, float).reshape(-1, 2))
            ax.plot(pts[:, 0], pts[:, 1], "o", ms=5, mfc="white", mec="black")
        return handle

    fig, im, axes = _map_figure(da, draw, "preferred orientation")
    cb = fig.colorbar(im, ax=list(axes), shrink=0.8, label="orientation (deg)")
    cb.set_ticks([0, 45, 90, 135, 180])
    return save_figure(fig, path, formats)


def plot_clustering_null(ci: xr.Dataset, path: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Histogram of the permutation null of a clustering/topography index with the observed value."""
    _require(ci, ("null", "observed", "index"), "plot_clustering_null", "a clustering_index/topography_index")
    null = np.asarray(ci["null"].values, float)
    obs = float(ci["observed"])
    fig = Figure(figsize=(5.0, 3.5))
    ax = fig.subplots()
    ax.hist(null, bins=max(5, min(30, len(null))), color="0.6", edgecolor="0.3", label=f"permuted maps (n={len(null)})")
    ax.axvline(obs, color="crimson", lw=2, label="observed")
    ax.axvline(float(null.mean()), color="0.2", ls="--", lw=1, label="null mean")
    ax.set_xlabel("mean component size (units)" if "observed_per_class" in ci else "topography")
    ax.set_ylabel("maps")
    ax.set_title(f"index = {float(ci['index']):.3g} (p = {float(ci.get('p_value', np.nan)):.3g}){_where(ci)}",
                 fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, path, formats)


def plot_smoothness(sm: xr.Dataset, path: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Similarity vs cortical distance (:func:`smoothness`), with the position-shuffled control dashed."""
    if "similarity" not in sm or "distance_bin" not in sm.dims:
        raise SheetError("plot_smoothness needs a smoothness() result (similarity over distance_bin).")
    x = np.asarray(sm["distance_bin"].values, float)
    fig = Figure(figsize=(5.0, 3.5))
    ax = fig.subplots()
    ax.plot(x, np.asarray(sm["similarity"].values, float), "o-", color="crimson", label="sheet")
    if "similarity_shuffled" in sm:
        ax.plot(x, np.asarray(sm["similarity_shuffled"].values, float), "o--", color="0.4", label="positions shuffled")
    metric = sm.attrs.get("metric", "")
    ax.set_xlabel("cortical distance (mm)")
    ax.set_ylabel({"correlation": "response correlation", "absdiff": "|difference| (lower = more similar)",
                   "circular": "orientation difference (deg)"}.get(metric, "similarity"))
    ax.legend(fontsize=8, frameon=False)
    if _where(sm):
        ax.set_title(f"smoothness{_where(sm)}", fontsize=10)
    return save_figure(fig, path, formats)


def plot_patches(p: xr.Dataset, path: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Smoothed selectivity on the mm grid (:func:`patches`) with patch outlines and centroids."""
    _require(p, ("smoothed", "label", "count"), "plot_patches", "a patches()")
    img = np.asarray(p["smoothed"].values, float)
    x, y = np.asarray(p["smoothed"]["x_mm"].values, float), np.asarray(p["smoothed"]["y_mm"].values, float)
    lo, lim = robust_limits(img, symmetric=True)
    lim = max(lim, float(p.attrs.get("threshold", 0.0)) * 1.25)  # the threshold stays inside the scale
    fig = Figure(figsize=(5.4, 4.4))
    ax = fig.subplots()
    mesh = ax.pcolormesh(x, y, img, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
    labels = np.asarray(p["label"].values)
    if (labels > 0).any():
        ax.contour(x, y, (labels > 0).astype(float), levels=[0.5], colors="black", linewidths=1.0)
        ax.plot(np.asarray(p["centroid_x_mm"]), np.asarray(p["centroid_y_mm"]), "k+", ms=8)
    ax.set(aspect="equal", xlabel="x (mm)", ylabel="y (mm)")
    n = int(p["count"])
    ax.set_title(f"{n} patch{'' if n == 1 else 'es'}, {float(p['total_area_mm2']):.3g} mm²{_where(p)}", fontsize=10)
    fig.colorbar(mesh, ax=ax, shrink=0.8, label=f"smoothed {p.attrs.get('kind', 'selectivity')}",
                 extend=_extend(img, -lim, lim))
    return save_figure(fig, path, formats)


def plot_rdm(r: xr.DataArray, path: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Representational dissimilarity matrix (:func:`rdm`); one panel per area when it has an ``area`` dim."""
    panels = [(str(a), r.sel(area=a)) for a in r["area"].values] if "area" in r.dims else [("", r)]
    if panels[0][1].ndim != 2:
        raise SheetError(f"plot_rdm needs an (n, n) RDM per area; got dims {r.dims}.")
    fig = Figure(figsize=(4.4 * len(panels) + 1.0, 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    vmax = float(np.nanmax(r.values)) if np.isfinite(r.values).any() else 1.0
    for ax, (area, m) in zip(axes, panels):
        im = ax.imshow(np.asarray(m.values, float), cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        labels = np.asarray(m[m.dims[0]].values).astype(str)
        if len(labels) <= 20:  # condition names; stimulus-level RDMs are too many to label
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_title(f"RDM{' — ' + area if area else ''}", fontsize=9)
    metric = str(r.attrs.get("metric", "correlation"))
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="1 − Pearson r" if metric == "correlation" else f"{metric} distance")
    return save_figure(fig, path, formats)


def plot_unit_map(values: xr.DataArray, path: str | os.PathLike, formats: Sequence[str] = FORMATS,
                  cmap: str = "viridis", label: str | None = None, percentile: float = PERCENTILE) -> list[Path]:
    """Any per-unit quantity on a sequential colormap (preferred numerosity, tuning width, entropy, PoZ …).

    The scale spans the (100 − ``percentile``, ``percentile``) percentiles (100: the full range).
    """
    if values.dims != ("unit",):
        raise SheetError(f"plot_unit_map needs a per-unit DataArray; got dims {values.dims}.")
    v = np.asarray(values.values, float)
    lo, hi = robust_limits(v, percentile)

    def draw(ax, sub):
        img, extent = _raster(np.asarray(sub.values, float), sub)
        ax.set_facecolor(EMPTY_COLOUR)
        return ax.imshow(img, origin="lower", extent=extent, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")

    name = label or str(values.attrs.get("long_name", values.name or "value"))
    fig, im, axes = _map_figure(values, draw, name)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=str(values.attrs.get("units", name)), extend=_extend(v, lo, hi))
    return save_figure(fig, path, formats)


def plot_tuning_curves(curves: xr.DataArray, path: str | os.PathLike, formats: Sequence[str] = FORMATS,
                       units: Sequence[int] | None = None, max_units: int = 12) -> list[Path]:
    """Tuning curves (:func:`tuning_curves`, dims (condition, unit)): one line per unit.

    ``units`` picks unit positions to draw; default: the ``max_units`` units with the
    largest response range (the most tuned), so the figure shows tuning, not noise.
    """
    if curves.ndim != 2 or "unit" not in curves.dims:
        raise SheetError(f"plot_tuning_curves needs a (condition, unit) DataArray; got dims {curves.dims}.")
    by = next(d for d in curves.dims if d != "unit")
    c = curves.transpose(by, "unit")
    values = np.asarray(c.values, float)
    if units is None:
        span = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
        units = np.argsort(np.nan_to_num(span, nan=-np.inf))[::-1][:max_units]
    x = np.asarray(c[by].values)
    numeric = np.issubdtype(x.dtype, np.number)
    fig = Figure(figsize=(5.4, 3.6))
    ax = fig.subplots()
    for u in units:
        ax.plot(x if numeric else np.arange(len(x)), values[:, u], "o-", ms=3, lw=1, label=f"unit {int(u)}")
    if not numeric:
        ax.set_xticks(np.arange(len(x)), x.astype(str), rotation=45)
    ax.set_xlabel(by)
    ax.set_ylabel("mean response")
    ax.set_title(f"{by} tuning{_where(curves)}", fontsize=10)
    ax.legend(fontsize=6, frameon=False, ncol=2)
    return save_figure(fig, path, formats)


def plot_robustness(result: xr.Dataset, path: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Accuracy vs perturbation (:func:`weight_noise_robustness`, :func:`input_noise_robustness`,
    :func:`pruning_curve`): mean ± s.d. over repeats, one line per noise kind; the RSM similarity
    of class weights on a second axis when present."""
    _require(result, ("accuracy",), "plot_robustness", "a weight/input-noise or pruning")
    acc = result["accuracy"]
    x_dim = "fraction" if "fraction" in acc.dims else "level"
    if x_dim not in acc.dims:
        raise SheetError(f"plot_robustness needs an accuracy over 'level' or 'fraction'; got dims {acc.dims}.")
    x = np.asarray(acc[x_dim].values, float)
    fig = Figure(figsize=(5.2, 3.6))
    ax = fig.subplots()
    lines = [(str(k), acc.sel(kind=k)) for k in acc["kind"].values] if "kind" in acc.dims else [("accuracy", acc)]
    for name, a in lines:
        mean = a.mean("repeat") if "repeat" in a.dims else a
        ax.plot(x, np.asarray(mean.values, float), "o-", label=name)
        if "repeat" in a.dims and a.sizes["repeat"] > 1:
            sd = np.asarray(a.std("repeat").values, float)
            ax.fill_between(x, mean.values - sd, mean.values + sd, alpha=0.2)
    if "clean_accuracy" in result.attrs:
        ax.axhline(float(result.attrs["clean_accuracy"]), color="0.4", ls=":", lw=1, label="clean")
    ax.set_xlabel("fraction of channels pruned" if x_dim == "fraction" else "noise level")
    ax.set_ylabel("accuracy")
    if "rsm_similarity" in result:
        ax2 = ax.twinx()
        rsm = result["rsm_similarity"]
        rsm = rsm.mean("repeat") if "repeat" in rsm.dims else rsm
        ax2.plot(x, np.asarray(rsm.values, float), "s--", color="crimson", label="class-weight RSM similarity")
        ax2.set_ylabel("RSM similarity to clean", color="crimson")
        ax2.legend(fontsize=8, frameon=False, loc="lower right")
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    return save_figure(fig, path, formats)
