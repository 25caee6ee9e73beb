"""Simulated fMRI (cortexsim.compare.voxelize, SimulatedCortex.fmri): patch areas vs voxel size and PSF, signal conserved."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from scipy.stats import ncx2

import cortexsim as cx
from cortexsim import compare, export
from cortexsim.errors import SheetError
from cortexsim.grid import FWHM_PER_SIGMA

R_MM, CENTRE = 4.0, np.array([12.1, 11.9])  # the planted disc of face-selective units


@pytest.fixture(scope="module")
def disc_sheet():
    """Units on a 0.2 mm grid over 24 × 24 mm; a disc responds 1 to faces, everything else 0."""
    axis = np.arange(0, 24.0, 0.2)
    pos = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    inside = np.hypot(*(pos - CENTRE).T) < R_MM
    rng = np.random.default_rng(0)
    faces = inside[None] * 1.0 + 0.01 * rng.normal(size=(3, len(pos)))  # a little noise: d′ needs variance
    objects = 0.01 * rng.normal(size=(3, len(pos)))
    return cx.make_sheet(np.r_[faces, objects].astype(np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1], area="IT",
                         stimuli={"domain": ["faces"] * 3 + ["objects"] * 3})


def face_map(vox):
    return vox.responses.isel(stimulus=slice(0, 3)).mean("stimulus").values


def expected_radius(threshold, sigma_mm):
    """Radius where a unit disc (radius R) blurred by an isotropic Gaussian σ equals ``threshold``.

    The blurred disc at distance r is P(|X + r| < R), X ~ N(0, σ² I): a non-central χ² with 2 dof.
    """
    return brentq(lambda r: ncx2.cdf((R_MM / sigma_mm) ** 2, 2, (r / sigma_mm) ** 2) - threshold, 1e-6, 3 * R_MM)


@pytest.mark.parametrize("voxel", [0.5, 1.0, 2.0])
def test_without_psf_the_half_max_patch_is_the_disc(disc_sheet, voxel):
    vox = compare.voxelize(disc_sheet, voxel)
    area = (face_map(vox) > 0.5).sum() * voxel ** 2
    # voxel averaging is a box blur: the half-max contour stays on the disc's edge, up to the voxels cut by it
    assert area == pytest.approx(np.pi * R_MM ** 2, abs=2 * np.pi * R_MM * voxel / 4)
    cx.validate_sheet(vox)  # a Sheet of voxels
    assert int(vox.n_units.sum()) == disc_sheet.sizes["unit"]


@pytest.mark.parametrize("fwhm", [2.0, 4.0])
def test_psf_grows_low_and_shrinks_high_threshold_patches_as_a_blurred_disc(disc_sheet, fwhm):
    voxel = 0.5
    sharp = face_map(compare.voxelize(disc_sheet, voxel))
    blurred = face_map(compare.voxelize(disc_sheet, voxel, fwhm))
    sigma = np.sqrt((fwhm / FWHM_PER_SIGMA) ** 2 + voxel ** 2 / 12)  # PSF ∘ voxel box, both as Gaussians
    for theta in (0.25, 0.75):
        area = (blurred > theta).sum() * voxel ** 2
        want = np.pi * expected_radius(theta, sigma) ** 2
        assert area == pytest.approx(want, rel=0.03)  # measured: within 1 %
    assert (blurred > 0.25).sum() > (sharp > 0.25).sum()  # low threshold: the patch grows
    assert (blurred > 0.75).sum() < (sharp > 0.75).sum()  # high threshold: it shrinks
    assert blurred.max() == pytest.approx(ncx2.cdf((R_MM / sigma) ** 2, 2, 0.0), rel=0.03)  # peak = centre value


@pytest.mark.parametrize("fwhm", [0.0, 3.0])
def test_total_signal_is_conserved_2d_and_3d(fwhm):
    rng = np.random.default_rng(1)
    pos2 = rng.uniform(0, 15, size=(3000, 2))
    pos3 = rng.uniform(0, 8, size=(3000, 3))
    r = rng.gamma(2.0, size=(5, 3000)).astype(np.float64)
    for pos in (pos2, pos3):
        ds = cx.make_sheet(r, x_mm=pos[:, 0], y_mm=pos[:, 1], z_mm=pos[:, 2] if pos.shape[1] == 3 else None, area="IT")
        vox = compare.voxelize(ds, 1.5, fwhm)
        total = (vox.responses * vox.n_units).sum("unit").values
        np.testing.assert_allclose(total, r.sum(axis=1), rtol=1e-9)
        assert ("z_mm" in vox.coords) == (pos.shape[1] == 3)
    # a uniform response stays uniform on the sheet, edges and unevenly filled voxels included
    ds = cx.make_sheet(np.full((1, 3000), 2.5), x_mm=pos2[:, 0], y_mm=pos2[:, 1], area="IT")
    np.testing.assert_allclose(compare.voxelize(ds, 1.5, 3.0).responses.values, 2.5, rtol=1e-9)


def test_lazy_on_a_streamed_sheet_and_every_analysis_runs_on_voxels(disc_sheet, tmp_path):
    cx.save_sheet(disc_sheet, tmp_path / "s.h5")
    lazy = cx.open_sheet(tmp_path / "s.h5", chunks={"stimulus": 2})
    vox = compare.voxelize(lazy, 1.0, 2.0)
    assert hasattr(vox.responses.data, "dask")  # nothing computed yet
    eager = compare.voxelize(disc_sheet, 1.0, 2.0)
    np.testing.assert_allclose(vox.responses.values, eager.responses.values, rtol=1e-6)
    assert list(vox.domain.values) == list(disc_sheet.domain.values)
    from cortexsim.analysis.selectivity import dprime

    d = dprime(eager, "domain", "faces")
    inside = np.hypot(eager.x_mm - CENTRE[0], eager.y_mm - CENTRE[1]) < R_MM - 2
    far = np.hypot(eager.x_mm - CENTRE[0], eager.y_mm - CENTRE[1]) > R_MM + 4
    assert float(d[inside].min()) > 10 and float(np.median(abs(d[far]))) < 2
    nii = export.to_nifti(d, tmp_path / "vox.nii.gz", voxel_mm=1.0)  # voxels export as the units they are
    back = compare.load_map(nii).sample(np.c_[eager.x_mm, eager.y_mm])[:, 0]
    np.testing.assert_allclose(back, d.values, rtol=1e-5)


def test_simulated_cortex_fmri_is_record_then_voxelize():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()
    cortex = cx.SimulatedCortex(model, {"V1": "0"})
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    f = cortex.fmri(x, voxel_mm=2.0, psf_fwhm_mm=3.0, progress=False)
    want = compare.voxelize(cortex.record(x, progress=False), 2.0, 3.0)
    np.testing.assert_allclose(f.responses.values, want.responses.values, rtol=1e-6)
    assert f.attrs["layout"] == "voxels" and f.sizes["unit"] < 4 * 16 * 16


def test_bad_voxelize_input():
    ds = cx.make_sheet(np.ones((2, 4)), x_mm=np.arange(4.0), y_mm=np.zeros(4), area="IT")
    with pytest.raises(SheetError, match="voxel_mm must be a positive"):
        compare.voxelize(ds, 0.0)
    with pytest.raises(SheetError, match="psf_fwhm_mm must be"):
        compare.voxelize(ds, 1.0, -1.0)
    with pytest.raises(SheetError, match="needs a Sheet"):
        compare.voxelize(ds.responses, 1.0)
    with pytest.raises(SheetError, match="no area 'V4'"):
        compare.voxelize(ds, 1.0, area="V4")


def test_voxelize_stays_the_function_after_its_submodule_is_imported():
    import importlib

    module = importlib.import_module("cortexsim.compare.voxelize")
    assert module.__name__ == "cortexsim.compare.voxelize" and compare.voxelize is module.voxelize and callable(compare.voxelize)
