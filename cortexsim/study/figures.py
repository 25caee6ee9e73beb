"""The report's panels, drawn from :class:`~cortexsim.study.stats.MapResult` objects (Sheets only).

Each function returns a matplotlib ``Figure`` built with the object-oriented API (no pyplot
state), so the report can inline it and a notebook can display it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NONE_COLOUR = "white"
EMPTY_COLOUR = "0.85"


def _grid(sheet_values: np.ndarray, like: Any) -> tuple[np.ndarray, list[float]]:
    """(image, imshow extent) of per-unit values on the package's raster (one unit per pixel on a grid)."""
    from ..grid import Grid, rasterize, unit_positions

    img = rasterize(np.asarray(sheet_values, float), unit_positions(like, ndim=2), statistic="mean")
    return np.asarray(img.values), Grid.of(img).extent()


def _category_cmap(categories: Sequence[str]):
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    base = colormaps["tab10" if len(categories) <= 10 else "tab20"]
    return ListedColormap([NONE_COLOUR] + [base(i % base.N) for i in range(len(categories))])


def _panels(n: int, width: float = 3.6, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n + 1.3, height), layout="constrained")
    return fig, fig.subplots(1, n, squeeze=False)[0]


def preference_maps(results: Mapping[str, Any]):
    """Each model's preferred category per unit (d′ > threshold; white: none), one shared legend."""
    first = next(iter(results.values()))
    cats = first.categories
    cmap = _category_cmap(cats)
    fig, axes = _panels(len(results))
    for ax, (label, r) in zip(axes, results.items()):
        lookup = {c: i + 1 for i, c in enumerate(cats)}
        codes = np.array([lookup.get(s, 0) for s in np.asarray(r.preference.values).astype(str)], float)
        img, extent = _grid(codes, r.preference)
        ax.imshow(img, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=len(cats) + 0.5,
                  interpolation="nearest")
        c = r.clustering
        ax.set_title(f"{label}\nclustering index {c['index']:.2f} (p = {c['p_value']:.3g})", fontsize=9)
        ax.set(xlabel="x (mm)", ylabel="y (mm)", facecolor=EMPTY_COLOUR)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=cmap(i + 1), edgecolor="0.4", label=c) for i, c in enumerate(cats)]
    handles.append(Patch(facecolor=NONE_COLOUR, edgecolor="0.4", label="none"))
    fig.legend(handles=handles, loc="outside right center", fontsize=7, title="preferred", title_fontsize=8)
    return fig


def dprime_maps(results: Mapping[str, Any], category: str):
    """d′ of ``category`` vs the rest on each model's sheet, one symmetric colour scale."""
    fig, axes = _panels(len(results))
    values = [np.asarray(r.dprime.sel({r.dprime.dims[0]: r.dprime[r.dprime.dims[0]].values[
        [str(c) for c in r.dprime[r.dprime.dims[0]].values].index(category)]}).values, float) for r in results.values()]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(1)
    lim = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
    im = None
    for ax, (label, r), v in zip(axes, results.items(), values):
        img, extent = _grid(v, r.preference)
        im = ax.imshow(img, origin="lower", extent=extent, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"{label}\nd′ ({category} vs rest), Moran's I {r.moran['per_category'].get(category, np.nan):.2f}",
                     fontsize=9)
        ax.set(xlabel="x (mm)", ylabel="y (mm)", facecolor=EMPTY_COLOUR)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=f"d′ ({category})")
    return fig


def smoothness(results: Mapping[str, Any]):
    """Response correlation of unit pairs against cortical distance; dashed: positions shuffled."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, (label, r) in enumerate(results.items()):
        s = r.smoothness
        colour = f"C{i}"
        ax.plot(s["distance_mm"], s["similarity"], "-o", ms=3, color=colour, label=label)
        ax.plot(s["distance_mm"], s["shuffled"], "--", color=colour, alpha=0.7, label=f"{label}, shuffled")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set(xlabel="cortical distance (mm)", ylabel="response correlation")
    ax.legend(fontsize=7)
    return fig


def nulls(results: Mapping[str, Any], key: str = "clustering", title: str = "clustering index"):
    """Permutation null (histogram of shuffled maps) with the observed value, one panel per model."""
    fig, axes = _panels(len(results), width=3.6, height=2.8)
    for ax, (label, r) in zip(axes, results.items()):
        stat = getattr(r, key)
        null = np.asarray(stat["null"], float)
        ax.hist(null, bins=max(5, min(30, len(null) // 4)), color="0.65", edgecolor="0.35",
                label=f"shuffled (n = {len(null)})")
        ax.axvline(stat["observed"], color="crimson", lw=2, label="observed")
        ax.set_title(f"{label}: {title} p = {stat['p_value']:.3g}", fontsize=9)
        ax.set_xlabel(f"{'mean cluster size' if key == 'clustering' else 'T'} (units)")
        ax.legend(fontsize=7)
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]]):
    """Task loss against step for each model (from the run folders' log.jsonl)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 3.0), layout="constrained")
    ax = fig.subplots()
    for label, hist in histories.items():
        ax.plot([h["step"] for h in hist], [h["task_loss"] for h in hist], label=label)
    ax.set(xlabel="step", ylabel="task loss (cross-entropy)")
    ax.legend(fontsize=8)
    return fig
