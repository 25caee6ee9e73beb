"""d.cortex on per-unit DataArrays: area selection, positions and maps without wrapping in a Dataset."""
from __future__ import annotations

import numpy as np
import pytest

import cortexsim as cx
from cortexsim import analysis


def _sheet():
    row, col = np.divmod(np.arange(16), 4)
    r = np.random.default_rng(0).normal(size=(6, 32)).astype(np.float32)
    return cx.make_sheet(r, x_mm=np.tile(col * 0.5, 2), y_mm=np.tile(row * 0.5, 2), row=np.tile(row, 2),
                         col=np.tile(col, 2), area=np.repeat(["V1", "IT"], 16), stimuli={"domain": np.repeat(["a", "b"], 3)})


def test_a_per_unit_result_selects_an_area_and_maps_itself():
    ds = _sheet()
    d = analysis.dprime(ds, by="domain", target="a")
    assert d.cortex.areas == ["V1", "IT"]
    it = d.cortex.area("IT")
    np.testing.assert_array_equal(it.values, d.values[16:])
    np.testing.assert_array_equal(it.cortex.positions, ds.cortex.area("IT").cortex.positions)
    img = it.cortex.map()
    assert img.dims == ("y_mm", "x_mm") and img.shape == (4, 4)
    np.testing.assert_allclose(img.values.ravel(), it.values)  # row-major grid: one unit per pixel
    xr_img = ds.cortex.area("IT").cortex.map(it)  # the Sheet's map of the same values is the same image
    np.testing.assert_array_equal(xr_img.values, img.values)


def test_the_accessor_says_what_a_result_lacks():
    d = analysis.dprime(_sheet(), by="domain", target="a")
    with pytest.raises(cx.SheetError, match="no area 'LGN'.*areas are \\['V1', 'IT'\\]"):
        d.cortex.area("LGN")
    with pytest.raises(cx.SheetError, match=r"needs the unit coords \['x_mm', 'y_mm'\]"):
        d.drop_vars(["x_mm", "y_mm"]).cortex.positions
    with pytest.raises(cx.SheetError, match="on a Sheet needs the values"):
        _sheet().cortex.map()
