"""Categorical maps (e.g. preferred category) as integer labels with a label table.

Label 0 is ``Unknown`` (outside the sheet: no unit there), the map's classes are
1…C in the order of ``attrs["classes"]`` (as the preference maps store it), and
units without a preference (``attrs["none"]``, default ``"none"``) get C+1. The
table is written as a JSON sidecar and as a FreeSurfer-style colour LUT
(``index name R G B A`` per line, A = 0 as in ``FreeSurferColorLUT.txt``), which
FreeSurfer's freeview, FSLeyes and nilearn users can read.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import MapError
from .files import write_text

UNKNOWN = "Unknown"
_NONE_RGBA = (200, 200, 200, 255)


@dataclass(frozen=True)
class LabelTable:
    """Label names and colours; ``names[k]`` / ``colours[k]`` belong to label value k."""

    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int, int], ...]  # RGBA 0-255

    def to_json(self) -> dict[str, Any]:
        return {str(k): {"name": n, "rgba": list(c)} for k, (n, c) in enumerate(zip(self.names, self.colours))}

    def index(self, name: str) -> int:
        return self.names.index(name)


def palette(n: int) -> list[tuple[int, int, int, int]]:
    """``n`` distinct RGBA colours, 0-255 (those of the figures: :func:`cortexsim.plotting._base.palette`)."""
    from ..plotting._base import palette as figure_palette  # matplotlib's colour maps, imported in plotting only

    return [tuple(int(round(255 * c)) for c in rgba) for rgba in figure_palette(n)]  # type: ignore[misc]


def encode_labels(values: Any, attrs: dict[str, Any] | None = None) -> tuple[np.ndarray, LabelTable]:
    """Integer labels (n_units,) ≥ 1 and their table for a categorical per-unit map.

    Parameters
    ----------
    values : ndarray or DataArray (n_units,) of str (or numbers with ``attrs["categorical"]``)
    attrs : dict, optional
        The map's attrs (``classes``, ``none``); a DataArray's own attrs by default.
    """
    from ..analysis.clustering import preference_codes

    attrs = dict(values.attrs if isinstance(values, xr.DataArray) and attrs is None else attrs or {})
    arr = np.asarray(values.values if isinstance(values, xr.DataArray) else values)
    if arr.ndim != 1:
        raise MapError(f"a label map must be 1-D (one label per unit); got shape {arr.shape}.")
    none = str(attrs.get("none", "none"))
    try:
        codes, classes = preference_codes(xr.DataArray(arr, dims="unit", attrs=attrs), none=none)
    except Exception as exc:  # SheetError from unknown labels: re-raise as a map problem
        raise MapError(f"cannot encode the label map: {exc}") from exc
    labels = np.where(codes >= 0, codes + 1, len(classes) + 1).astype(np.int32)
    names = (UNKNOWN, *classes, none)
    colours = ((0, 0, 0, 0), *palette(len(classes)), _NONE_RGBA)
    return labels, LabelTable(tuple(str(n) for n in names), colours)  # type: ignore[arg-type]


def lut_text(table: LabelTable) -> str:
    """A FreeSurfer-style colour LUT (``#No. Label Name: R G B A``)."""
    lines = ["#No. Label Name:                R   G   B   A"]
    for k, (name, (r, g, b, _a)) in enumerate(zip(table.names, table.colours)):
        safe = re.sub(r"\s+", "_", name) or f"label{k}"  # FreeSurfer names have no spaces
        lines.append(f"{k:<4d} {safe:<25s} {r:3d} {g:3d} {b:3d}   0")
    return "\n".join(lines) + "\n"


def write_lut(path: str | os.PathLike, table: LabelTable) -> Path:
    """Write the FreeSurfer-style LUT of ``table`` atomically."""
    return write_text(path, lut_text(table))


def read_lut(path: str | os.PathLike) -> dict[int, tuple[str, tuple[int, int, int]]]:
    """Parse a FreeSurfer-style LUT: label value -> (name, (R, G, B))."""
    out: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 5:
            raise MapError(f"{path}: LUT line {line!r} needs 'index name R G B [A]'.")
        out[int(parts[0])] = (parts[1], (int(parts[2]), int(parts[3]), int(parts[4])))
    return out
