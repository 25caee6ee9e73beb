"""Schema validation: each problem raises a SheetError naming it."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import SheetError


def test_make_sheet_schema(small_sheet):
    ds = small_sheet
    assert ds.responses.dims == ("stimulus", "unit")
    for name in ("area", "layer", "channel", "row", "col", "x_mm", "y_mm", "unit_id"):
        assert ds[name].dims == ("unit",)
    assert list(ds.stimulus_id.values[:2]) == ["s0000", "s0001"]
    assert ds.x_mm.attrs["units"] == "mm"
    assert ds.attrs["cortexsim_version"] == cx.__version__ and ds.attrs["model"] == "test"
    assert cx.validate_sheet(ds) is ds


def test_sheet_error_is_value_error():
    assert issubclass(SheetError, ValueError)


def test_missing_coord(small_sheet):
    with pytest.raises(SheetError, match="missing the unit coord 'x_mm'"):
        cx.validate_sheet(small_sheet.drop_vars("x_mm"))


def test_positions_not_finite(small_sheet):
    x = small_sheet.x_mm.values.copy()
    x[4] = np.nan
    with pytest.raises(SheetError, match=r"'x_mm' has 1 non-finite.*unit index 4"):
        cx.validate_sheet(small_sheet.assign_coords(x_mm=("unit", x)))


def test_duplicated_unit_id(small_sheet):
    uid = small_sheet.unit_id.values.copy()
    uid[3] = uid[2]
    with pytest.raises(SheetError, match=r"unit_id has duplicates \(e.g. \[2\]\)"):
        cx.validate_sheet(small_sheet.assign_coords(unit_id=("unit", uid)))


def test_duplicated_stimulus_id(small_sheet):
    sid = small_sheet.stimulus_id.values.copy()
    sid[1] = sid[0]
    with pytest.raises(SheetError, match="stimulus_id has duplicates"):
        cx.validate_sheet(small_sheet.assign_coords(stimulus_id=("stimulus", sid)))


def test_nan_responses_rejected_unless_allowed(small_sheet):
    bad = small_sheet.copy(deep=True)
    bad.responses[2, 5] = np.inf
    bad.responses[0, 0] = np.nan
    with pytest.raises(SheetError, match="2 NaN/Inf"):
        cx.validate_sheet(bad)
    cx.validate_sheet(bad, allow_nonfinite=True)
    cx.validate_sheet(bad.chunk({"stimulus": 2}), allow_nonfinite=True)
    with pytest.raises(SheetError, match="2 NaN/Inf"):
        cx.validate_sheet(bad.chunk({"stimulus": 2}))  # dask path, chunk-wise


def test_wrong_dims(small_sheet):
    with pytest.raises(SheetError, match=r"dims \('stimulus', 'unit'"):
        cx.validate_sheet(small_sheet.transpose("unit", "stimulus"))
    with pytest.raises(SheetError, match="no 'responses'"):
        cx.validate_sheet(small_sheet.rename({"responses": "r"}))
    with pytest.raises(SheetError, match="xarray.Dataset"):
        cx.validate_sheet(small_sheet.responses)


def test_integer_responses_rejected(small_sheet):
    with pytest.raises(SheetError, match="floating point"):
        cx.validate_sheet(small_sheet.assign(responses=small_sheet.responses.astype(int)))


def test_make_sheet_length_mismatch():
    with pytest.raises(SheetError, match="coord 'x_mm' has shape \\(3,\\) but responses have 4 units"):
        cx.make_sheet(np.zeros((2, 4), np.float32), x_mm=np.zeros(3), y_mm=np.zeros(4))
    with pytest.raises(SheetError, match="2 rows but responses have 3 stimuli"):
        cx.make_sheet(np.zeros((3, 4), np.float32), x_mm=np.zeros(4), y_mm=np.zeros(4), stimuli={"a": [1, 2]})
    with pytest.raises(SheetError, match="must have 2 to 4 dims"):
        cx.make_sheet(np.zeros(4, np.float32), x_mm=np.zeros(4), y_mm=np.zeros(4))


def test_accessor(small_sheet):
    ds = small_sheet
    np.testing.assert_array_equal(ds.cortex.positions, np.stack([ds.x_mm, ds.y_mm], axis=1))
    assert ds.cortex.areas == ["IT"]
    with pytest.raises(SheetError, match="no area 'V1'.*\\['IT'\\]"):
        ds.cortex.area("V1")
    values = xr.DataArray(np.arange(9.0), dims="unit")
    img = ds.cortex.map(values)
    assert img.dims == ("y_mm", "x_mm") and img.shape == (3, 3)
    # unit (row, col) = divmod(i, 3) -> pixel [row, col] holds value i
    np.testing.assert_array_equal(img.values, np.arange(9.0).reshape(3, 3))
    # pixels are centred on the first unit: 2-mm pixel (1, 1) spans [1, 3) mm and averages 4 units
    coarse = ds.cortex.map(values, resolution_mm=2.0)
    assert coarse.shape == (2, 2) and coarse.values[0, 0] == 0.0
    assert coarse.values[1, 1] == pytest.approx(np.mean([4, 5, 7, 8]))
    np.testing.assert_allclose(coarse.x_mm, [0.0, 2.0])
    with pytest.raises(SheetError, match="one value per unit"):
        ds.cortex.map(np.arange(4.0))


def test_accessor_area_and_3d():
    ds = cx.make_sheet(
        np.ones((2, 4), np.float32), x_mm=[0, 1, 0, 1], y_mm=[0, 0, 1, 1], z_mm=[0, 0, 0, 1],
        area=["V1", "V1", "IT", "IT"],
    )
    assert ds.cortex.areas == ["V1", "IT"] and ds.cortex.positions.shape == (4, 3)
    assert ds.cortex.area("IT").sizes["unit"] == 2
