"""Plots of analysis statistics: permutation nulls, smoothness, RDMs, tuning curves, robustness."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import SheetError
from ._base import OutputFile, axes_for, finish, require, where


def plot_clustering_null(obj: xr.Dataset, *, ax: Any = None, figure: Any = None,
                         output_file: OutputFile = None) -> Any:
    """Histogram of the permutation ``null`` of a clustering/topography index with the observed value."""
    ci = obj
    require(ci, ("null", "observed", "index"), "plot_clustering_null", "a clustering_index/topography_index")
    null = np.asarray(ci["null"].values, float)
    obs = float(ci["observed"])
    (a,) = axes_for(1, ax=ax, figure=figure, output_file=output_file, func="plot_clustering_null")
    a.hist(null, bins=max(5, min(30, len(null))), color="0.6", edgecolor="0.3", label=f"permuted maps (n={len(null)})")
    a.axvline(obs, color="crimson", lw=2, label="observed")
    a.axvline(float(null.mean()), color="0.2", ls="--", lw=1, label="null mean")
    a.set_xlabel("mean component size (units)" if "observed_per_class" in ci or "observed_per_category" in ci
                 else "topography")
    a.set_ylabel("maps")
    a.set_title(f"index = {float(ci['index']):.3g} (p = {float(ci.get('p_value', np.nan)):.3g}){where(ci)}", fontsize=10)
    a.legend(fontsize=8, frameon=False)
    return finish([a], output_file)


def plot_smoothness(obj: xr.Dataset, *, ax: Any = None, figure: Any = None, output_file: OutputFile = None) -> Any:
    """Similarity vs cortical distance (:func:`~cortexsim.analysis.smoothness`), the position-shuffled control dashed."""
    sm = obj
    if "similarity" not in sm or "distance_bin" not in sm.dims:
        raise SheetError("plot_smoothness needs a smoothness() result (similarity over distance_bin).")
    x = np.asarray(sm["distance_bin"].values, float)
    (a,) = axes_for(1, ax=ax, figure=figure, output_file=output_file, func="plot_smoothness")
    a.plot(x, np.asarray(sm["similarity"].values, float), "o-", color="crimson", label="sheet")
    if "similarity_shuffled" in sm:
        a.plot(x, np.asarray(sm["similarity_shuffled"].values, float), "o--", color="0.4", label="positions shuffled")
    metric = sm.attrs.get("metric", "")
    a.set_xlabel("cortical distance (mm)")
    a.set_ylabel({"correlation": "response correlation", "absdiff": "|difference| (lower = more similar)",
                  "circular": "orientation difference (deg)"}.get(metric, "similarity"))
    a.legend(fontsize=8, frameon=False)
    if where(sm):
        a.set_title(f"smoothness{where(sm)}", fontsize=10)
    return finish([a], output_file)


def plot_rdm(obj: xr.DataArray, *, ax: Any = None, figure: Any = None, output_file: OutputFile = None) -> Any:
    """Representational dissimilarity matrix (:func:`~cortexsim.analysis.rdm`); one panel per area when it has an ``area`` dim."""
    r = obj
    panels = [(str(a), r.sel(area=a)) for a in r["area"].values] if "area" in r.dims else [("", r)]
    if panels[0][1].ndim != 2:
        raise SheetError(f"plot_rdm needs an (n, n) RDM per area; got dims {r.dims}.")
    axes = axes_for(len(panels), ax=ax, figure=figure, output_file=output_file,
                    figsize=(4.4 * len(panels) + 1.0, 4.0), func="plot_rdm")
    vmax = float(np.nanmax(r.values)) if np.isfinite(r.values).any() else 1.0
    for a, (area, m) in zip(axes, panels):
        im = a.imshow(np.asarray(m.values, float), cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        labels = np.asarray(m[m.dims[0]].values).astype(str)
        if len(labels) <= 20:  # condition names; stimulus-level RDMs are too many to label
            a.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
            a.set_yticks(range(len(labels)), labels, fontsize=7)
        a.set_title(f"RDM{' — ' + area if area else ''}", fontsize=9)
    metric = str(r.attrs.get("metric", "correlation"))
    axes[0].figure.colorbar(im, ax=list(axes), shrink=0.8,
                            label="1 − Pearson r" if metric == "correlation" else f"{metric} distance")
    return finish(axes, output_file)


def plot_tuning_curves(obj: xr.DataArray, *, units: Sequence[int] | None = None, max_units: int = 12,
                       ax: Any = None, figure: Any = None, output_file: OutputFile = None) -> Any:
    """Tuning curves (:func:`~cortexsim.analysis.tuning_curves`, dims (condition, unit)): one line per unit.

    ``units`` picks unit positions to draw; default: the ``max_units`` units with the
    largest response range (the most tuned), so the figure shows tuning, not noise.
    """
    curves = obj
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
    (a,) = axes_for(1, ax=ax, figure=figure, output_file=output_file, figsize=(5.4, 3.6), func="plot_tuning_curves")
    for u in units:
        a.plot(x if numeric else np.arange(len(x)), values[:, u], "o-", ms=3, lw=1, label=f"unit {int(u)}")
    if not numeric:
        a.set_xticks(np.arange(len(x)), x.astype(str), rotation=45)
    a.set(xlabel=by, ylabel="mean response")
    a.set_title(f"{by} tuning{where(curves)}", fontsize=10)
    a.legend(fontsize=6, frameon=False, ncol=2)
    return finish([a], output_file)


def plot_robustness(obj: xr.Dataset, *, ax: Any = None, figure: Any = None, output_file: OutputFile = None) -> Any:
    """Accuracy vs perturbation (weight/input noise, pruning): mean ± s.d. over repeats, one line per noise kind;
    the RSM similarity of class weights on a second axis when present."""
    result = obj
    require(result, ("accuracy",), "plot_robustness", "a weight/input-noise or pruning")
    acc = result["accuracy"]
    x_dim = "fraction" if "fraction" in acc.dims else "level"
    if x_dim not in acc.dims:
        raise SheetError(f"plot_robustness needs an accuracy over 'level' or 'fraction'; got dims {acc.dims}.")
    x = np.asarray(acc[x_dim].values, float)
    (a,) = axes_for(1, ax=ax, figure=figure, output_file=output_file, figsize=(5.2, 3.6), func="plot_robustness")
    lines = [(str(k), acc.sel(kind=k)) for k in acc["kind"].values] if "kind" in acc.dims else [("accuracy", acc)]
    for name, line in lines:
        mean = line.mean("repeat") if "repeat" in line.dims else line
        a.plot(x, np.asarray(mean.values, float), "o-", label=name)
        if "repeat" in line.dims and line.sizes["repeat"] > 1:
            sd = np.asarray(line.std("repeat").values, float)
            a.fill_between(x, mean.values - sd, mean.values + sd, alpha=0.2)
    if "clean_accuracy" in result.attrs:
        a.axhline(float(result.attrs["clean_accuracy"]), color="0.4", ls=":", lw=1, label="clean")
    a.set_xlabel("fraction of channels pruned" if x_dim == "fraction" else "noise level")
    a.set_ylabel("accuracy")
    if "rsm_similarity" in result:
        a2 = a.twinx()
        rsm = result["rsm_similarity"]
        rsm = rsm.mean("repeat") if "repeat" in rsm.dims else rsm
        a2.plot(x, np.asarray(rsm.values, float), "s--", color="crimson", label="class-weight RSM similarity")
        a2.set_ylabel("RSM similarity to clean", color="crimson")
        a2.legend(fontsize=8, frameon=False, loc="lower right")
    a.legend(fontsize=8, frameon=False, loc="lower left")
    return finish([a], output_file)
