"""Figures (issue 13, points 12-13): robust colour scales, SVG sizes, preference legend, titles."""
from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import cortexsim as cx
from cortexsim import analysis
from cortexsim.plotting import robust_limits


def _grid_da(values: np.ndarray, side: int, spacing: float = 1.0, area: str = "V1", name: str = "d") -> xr.DataArray:
    row, col = np.divmod(np.arange(side * side), side)
    return xr.DataArray(values, dims="unit", name=name,
                        coords={"x_mm": ("unit", col * spacing), "y_mm": ("unit", row * spacing),
                                "area": ("unit", np.full(side * side, area))})


def _saturated_fraction(png) -> float:
    """Fraction of the image's pixels that are clearly coloured (not white/grey/black)."""
    rgb = np.asarray(Image.open(png).convert("RGB"), float)
    return float(((rgb.max(-1) - rgb.min(-1)) > 60).mean())


def _svg_texts(svg) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", open(svg, encoding="utf-8").read())


def test_robust_limits_are_percentiles_of_the_finite_values():
    v = np.r_[np.arange(1.0, 101.0), np.nan, np.inf]
    assert robust_limits(v, 99) == pytest.approx((1.99, 99.01))  # numpy's linear percentiles of 1..100
    assert robust_limits(-v, 90, symmetric=True) == pytest.approx((-90.1, 90.1))
    assert robust_limits(np.full(5, 3.0)) == (2.5, 3.5)  # constant: a non-empty range around it
    assert robust_limits([np.nan]) == (0.0, 1.0)


def test_dprime_map_colours_survive_one_near_constant_unit(tmp_path):
    """303 near-constant V1 units with d′ up to 1,755 blanked the demo's d′ figure (point 12)."""
    side = 30
    d = np.random.default_rng(0).normal(0, 1, side * side)
    d[7] = 1755.0
    da = _grid_da(d, side)
    robust = analysis.plot_dprime_map(da, tmp_path / "robust", formats=("png",))[0]
    extreme = analysis.plot_dprime_map(da, tmp_path / "extreme", formats=("png",), vmax=1755.0)[0]
    assert _saturated_fraction(robust) > 0.1 > 5 * _saturated_fraction(extreme)  # the latter: its colour bar

    def largest_tick(**kw):  # the colour bar's ticks (the axes' go to 29 mm)
        _, svg = analysis.plot_dprime_map(da, tmp_path / "ticks", formats=("png", "svg"), **kw)
        return max(abs(float(t.replace("−", "-"))) for t in _svg_texts(svg) if re.fullmatch(r"[−-]?\d+(\.\d+)?", t))

    assert largest_tick() < 30 and largest_tick(vmax=1755.0) >= 1000  # a ±2.6 scale, not ±1755


def test_svg_maps_embed_their_image_layers_as_rasters(tmp_path):
    """Per-unit maps in SVG were up to 27.8 MB: the patch map's mesh was written as one vector square a pixel."""
    side = 160  # 25,600 units
    yy, xx = np.divmod(np.arange(side * side), side)
    t = 8.0 * np.exp(-((xx - 60.0) ** 2 + (yy - 90.0) ** 2) / (2 * 12.0**2))
    p = analysis.patches(_grid_da(t, side, 0.25), sigma_mm=0.5, min_area_mm2=1.0).assign_attrs(area="IT",
                                                                                                 category="faces")
    png, svg = analysis.plot_patches(p, tmp_path / "patches")
    size = svg.stat().st_size
    text = svg.read_text(encoding="utf-8")
    assert size < 600_000, size
    assert text.count("<image") == 2 and "1 patch, " in "".join(_svg_texts(svg))  # map + colour bar; texts stay
    _, svg_map = analysis.plot_dprime_map(_grid_da(t, side, 0.25), tmp_path / "dmap")
    assert svg_map.stat().st_size < 600_000 and "<image" in svg_map.read_text(encoding="utf-8")


def test_patch_and_null_titles_name_the_area_and_category(tmp_path):
    side = 40
    yy, xx = np.divmod(np.arange(side * side), side)
    t = 9.0 * np.exp(-((xx - 20.0) ** 2 + (yy - 20.0) ** 2) / (2 * 5.0**2))
    p = analysis.patches(_grid_da(t, side), sigma_mm=1.0, min_area_mm2=5.0).assign_attrs(area="IT", category="faces")
    _, svg = analysis.plot_patches(p, tmp_path / "p")
    assert any(s.endswith("— IT, faces") for s in _svg_texts(svg)), _svg_texts(svg)
    ci = xr.Dataset({"null": ("perm", np.arange(5.0)), "observed": 7.0, "index": 1.5, "p_value": 0.1},
                    attrs={"area": "V4"})
    _, svg = analysis.plot_clustering_null(ci, tmp_path / "ci")
    assert any("— V4" in s for s in _svg_texts(svg))


def test_preference_legend_lists_exactly_the_colours_on_the_map(tmp_path):
    """'none' is white on the map and in the legend; empty pixels have their own entry; classes no unit
    prefers are not listed (they were, and 'none' looked grey on the map)."""
    side = 12
    row, col = np.divmod(np.arange(side * side), side)
    keep = ~((row >= 4) & (row < 8) & (col >= 4) & (col < 8))  # a hole of 16 pixels without units
    labels = np.where(col < 4, "faces", np.where(col < 8, "none", "places"))[keep]
    pref = xr.DataArray(labels, dims="unit", coords={"x_mm": ("unit", col[keep] * 1.0), "y_mm": ("unit", row[keep] * 1.0)},
                        attrs={"classes": ["faces", "objects", "places"], "none": "none", "by": "domain"})
    png, svg = analysis.plot_preference_map(pref, tmp_path / "pref")
    legend = [t for t in _svg_texts(svg) if re.search(r"\(\d+\)$", t) or t == "no unit"]
    assert legend == ["faces (48)", "places (48)", "none (32)", "no unit"]
    rgb = np.asarray(Image.open(png).convert("RGB"))
    colours = {tuple(c) for c in rgb.reshape(-1, 3)}
    assert (255, 255, 255) in colours and (217, 217, 217) in colours  # 'none' white, empty pixels 0.85 grey
    full = pref.copy(data=np.where(labels == "none", "faces", labels))
    _, svg = analysis.plot_preference_map(full, tmp_path / "full")
    assert not any(t.startswith("none") for t in _svg_texts(svg))


def test_a_jittered_sheet_is_drawn_without_speckle(tmp_path):
    """On a jittered sheet the nearest-neighbour pixel left most pixels empty (the demo's V1 was 80 % grey)."""
    rng = np.random.default_rng(1)
    n = 4000
    pos = rng.uniform(0, 20, (n, 2))
    ds = cx.make_sheet(rng.normal(size=(2, n)).astype(np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1], area="V1")
    da = ds.responses.isel(stimulus=0, drop=True)
    png = analysis.plot_unit_map(da, tmp_path / "u", formats=("png",))[0]
    rgb = np.asarray(Image.open(png).convert("RGB"))
    grey = (np.abs(rgb.astype(int) - 217) <= 2).all(-1).sum()
    coloured = ((rgb.max(-1).astype(int) - rgb.min(-1)) > 40).sum()
    assert grey < 0.6 * coloured, (grey, coloured)
