"""Figures of smoothness, patches and RDMs: files matplotlib/PIL/XML read back, drawn content, bad input."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import SheetError, analysis
from cortexsim.analysis.cli import main


def _svg_text(path) -> str:
    root = ET.parse(path).getroot()  # well-formed SVG
    assert root.tag.endswith("svg")
    return " ".join(t.strip() for t in root.itertext() if t.strip())


def _colours(path) -> int:
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return len(np.unique(img.reshape(-1, img.shape[-1]), axis=0))


def _smooth_sheet(n_side=20, n_stim=40, seed=0):
    """Units on a 1 mm grid whose responses vary smoothly with position (nearby units correlate)."""
    rng = np.random.default_rng(seed)
    y, x = np.divmod(np.arange(n_side * n_side), n_side)
    freq = rng.normal(size=(n_stim, 2)) * 0.3
    phase = rng.uniform(0, 2 * np.pi, size=(n_stim, 1))
    r = np.sin(freq[:, :1] * x + freq[:, 1:] * y + phase) + 0.1 * rng.normal(size=(n_stim, x.size))
    return cx.make_sheet(r.astype(np.float32), x_mm=x * 1.0, y_mm=y * 1.0, area="V1",
                         stimuli={"domain": np.repeat(["faces", "objects"], n_stim // 2)})


def test_smoothness_figure_draws_the_sheet_and_the_shuffled_control(tmp_path):
    sm = analysis.smoothness(_smooth_sheet(), bins=np.array([0.5, 1.5, 3.0, 6.0, 9.0]), seed=0)
    assert float(sm["similarity"][0]) > float(sm["similarity_shuffled"][0]) + 0.3  # the curve is worth drawing
    png, svg = analysis.plot_smoothness(sm, tmp_path / "sm")
    assert png.suffix == ".png" and _colours(png) > 20
    text = _svg_text(svg)
    assert "positions shuffled" in text and "cortical distance (mm)" in text and "response correlation" in text
    _, svg2 = analysis.plot_smoothness(sm.drop_vars("similarity_shuffled"), tmp_path / "sm2")
    assert "positions shuffled" not in _svg_text(svg2)
    with pytest.raises(SheetError, match="smoothness"):
        analysis.plot_smoothness(xr.Dataset({"x": ("a", [1.0])}), tmp_path / "bad")


def test_patches_figure_outlines_planted_patches(tmp_path):
    g = np.arange(0, 60, 1.0)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    t = np.where(np.hypot(x - 20, y - 25) <= 8, 8.0, 0.0) + np.where(np.hypot(x - 45, y - 40) <= 7, 8.0, 0.0)
    values = xr.DataArray(t, dims="unit", coords={"x_mm": ("unit", x), "y_mm": ("unit", y)}, name="t")
    p = analysis.patches(values, stat="t")
    assert int(p["count"]) == 2
    png, svg = analysis.plot_patches(p, tmp_path / "patches", formats=("png", "svg"))
    text = _svg_text(svg)
    assert f"2 patches, {float(p['total_area_mm2']):.3g} mm²" in text and "smoothed t" in text
    img = mpimg.imread(png)[..., :3]
    # The planted patches are drawn red (high t) on a white/blue background.
    red = (img[..., 0] > 0.6) & (img[..., 2] < 0.4)
    assert red.sum() > 500
    with pytest.raises(SheetError, match="patches"):
        analysis.plot_patches(xr.Dataset(), tmp_path / "bad")


def test_rdm_figure_labels_conditions_and_has_one_panel_per_area(tmp_path):
    rng = np.random.default_rng(2)
    dom = np.repeat(["faces", "bodies", "places"], 6)
    r = rng.normal(size=(18, 40)) + np.repeat(np.eye(3), 6, axis=0) @ rng.normal(size=(3, 40)) * 3
    ds = cx.make_sheet(r.astype(np.float32), x_mm=np.arange(40.0), y_mm=np.zeros(40),
                       area=np.repeat(["V4", "IT"], 20), stimuli={"domain": dom})
    rdm = analysis.rdm(ds, by="domain")
    assert rdm.dims == ("area", "domain_a", "domain_b")
    _, svg = analysis.plot_rdm(rdm, tmp_path / "rdm")
    text = _svg_text(svg)
    assert "RDM — V4" in text and "RDM — IT" in text and "1 − Pearson r" in text
    assert all(name in text for name in ("faces", "bodies", "places"))
    with pytest.raises(SheetError, match="RDM"):
        analysis.plot_rdm(xr.DataArray(np.zeros(3), dims="x"), tmp_path / "bad")


def test_analyze_all_writes_every_figure(tmp_path):
    path = cx.save_sheet(_smooth_sheet(), tmp_path / "s.h5")
    out = tmp_path / "out"
    assert main([str(path), "--what", "all", "--n-perm", "3", "--threshold", "0.5", "--out", str(out)]) == 0
    figures = json.loads((out / "summary.json").read_text())["figures"]
    for name in ("smoothness", "rdm", "dprime_faces", "dprime_objects", "patches_faces", "patches_objects"):
        assert f"V1_{name}.png" in figures and f"V1_{name}.svg" in figures
        assert (out / f"V1_{name}.png").exists()
    assert "d′ faces vs the rest" in _svg_text(out / "V1_dprime_faces.svg")


def test_analyze_pinwheels_marks_planted_pinwheels_on_the_orientation_map(tmp_path):
    step, size = 0.5, 10.0
    g = np.arange(0, size, step)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    phi = sum(s * np.arctan2(y - cy, x - cx_) for (cx_, cy), s in (((2.6, 3.1), 1), ((7.1, 6.4), -1)))
    theta = np.degrees(0.5 * phi) % 180.0
    ori = np.repeat(np.arange(8) * 22.5, 2)
    r = np.exp(2.0 * (np.cos(np.deg2rad(2 * (ori[:, None] - theta[None]))) - 1))
    ds = cx.make_sheet(r.astype(np.float32), x_mm=x, y_mm=y, area="V1",
                       stimuli={"orientation_deg": ori, "sf_cpd": np.ones(16), "phase": np.tile([0.0, 180.0], 8)})
    path = cx.save_sheet(ds, tmp_path / "pw.h5")
    out = tmp_path / "out"
    assert main([str(path), "--what", "orientation,pinwheels", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    pw = analysis.pinwheels(analysis.orientation_map(ds))
    assert summary["areas"]["V1"]["pinwheels"]["count"] == int(pw["count"]) == 2
    assert "V1_pinwheels.png" in summary["figures"] and _colours(out / "V1_pinwheels.png") > 50
    # one white-faced marker per pinwheel in the SVG
    svg = (out / "V1_pinwheels.svg").read_text()
    assert svg.count('style="fill: #ffffff; stroke: #000000') == 2


def test_unit_map_and_tuning_curve_figures(tmp_path):
    side = 8
    row, col = np.divmod(np.arange(side * side), side)
    ori = np.repeat(np.arange(8) * 22.5, 3)
    theta = (col * 22.5) % 180
    kappa = np.where(col % 2 == 0, 4.0, 0.2)  # even columns sharply tuned, odd ones nearly flat
    r = np.exp(kappa * (np.cos(np.deg2rad(2 * (ori[:, None] - theta[None]))) - 1))
    ds = cx.make_sheet(r.astype(np.float32), x_mm=col * 1.0, y_mm=row * 1.0, area="V1",
                       stimuli={"orientation_deg": ori})
    curves = analysis.tuning_curves(ds, by="orientation_deg")
    _, svg = analysis.plot_tuning_curves(curves, tmp_path / "tc", max_units=4)
    text = _svg_text(svg)
    shown = [int(w) for w in text.split("unit ")[1:] for w in [w.split()[0]]]
    assert len(shown) == 4 and all(col[u] % 2 == 0 for u in shown)  # the most tuned units are drawn
    assert "orientation_deg" in text and "mean response" in text
    _, svg = analysis.plot_tuning_curves(curves, tmp_path / "tc2", units=[1, 3])
    assert "unit 1" in _svg_text(svg) and "unit 3" in _svg_text(svg) and "unit 0" not in _svg_text(svg)

    width = analysis.orientation_map(ds)["circular_variance"]
    png, svg = analysis.plot_unit_map(width, tmp_path / "cv", label="circular variance")
    assert "circular variance" in _svg_text(svg) and _colours(png) > 10
    img = mpimg.imread(png)[..., :3]
    assert img.std() > 0.05
    with pytest.raises(SheetError, match="per-unit"):
        analysis.plot_unit_map(curves, tmp_path / "bad")
    with pytest.raises(SheetError, match="condition, unit"):
        analysis.plot_tuning_curves(width, tmp_path / "bad")
