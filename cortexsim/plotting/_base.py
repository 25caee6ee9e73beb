"""What every ``cortexsim.plotting`` function shares: where it draws, how it saves, colour scales.

A plot draws into the Axes it is given (``ax=``), into new Axes of a given Figure (``figure=``),
or into a new figure: a pyplot figure when nothing is saved (so it shows in a notebook or with
``plt.show()``), a bare :class:`matplotlib.figure.Figure` when ``output_file`` is given and no
Axes (no pyplot state: scripts and ``cortexsim analyze`` can draw thousands without leaking).
It saves only when given ``output_file`` — one path, or several (one file per format, e.g.
``["map.png", "map.svg"]``); the format is the path's suffix.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from ..errors import ParameterError, ParameterTypeError, SheetError

FORMATS: tuple[str, ...] = ("png", "svg")
#: Colour of units without preference, and of sheet pixels without a unit (both in the legend).
NONE_COLOUR = "white"
EMPTY_COLOUR = "0.85"
#: Percentile of the values a continuous colour scale spans (robust to a few extreme units).
PERCENTILE = 99.0
#: Suffixes matplotlib writes that make sense here.
SUFFIXES = ("png", "svg", "pdf", "eps", "jpg", "tif")

OutputFile = str | os.PathLike | Sequence[str | os.PathLike] | None


def axes_for(n: int, *, ax: Any = None, figure: Figure | None = None, output_file: OutputFile = None,
             figsize: tuple[float, float] = (5.0, 3.6), func: str = "plot") -> list[Axes]:
    """``n`` Axes to draw into: ``ax`` (one Axes, or a sequence of ``n``), new ones in ``figure``, or a new figure."""
    if ax is not None:
        axes = [ax] if isinstance(ax, Axes) else list(np.ravel(ax))
        if not all(isinstance(a, Axes) for a in axes):
            raise ParameterTypeError(f"{func}: ax must be a matplotlib Axes (or one per panel); got {type(ax).__name__}.")
        if len(axes) != n:
            raise ParameterError(f"{func}: draws {n} panel(s) (one per area) but got {len(axes)} Axes; "
                                 f"pass {n} Axes, or select one area first (d.cortex.area(name)).")
        return axes
    if figure is None:
        figure = new_figure(figsize, output_file)
    return list(figure.subplots(1, n, squeeze=False)[0])


def finish(axes: Sequence[Axes], output_file: OutputFile) -> Any:
    """Save the figure of ``axes`` to ``output_file`` (if given); return the Axes (one, or an array)."""
    if output_file is not None:
        save_figure(axes[0].figure, output_file)
    return axes[0] if len(axes) == 1 else np.asarray(axes, dtype=object)


def output_paths(output_file: OutputFile) -> list[Path]:
    """The files ``output_file`` names (a path or a sequence of paths), each with a known suffix."""
    files = [output_file] if isinstance(output_file, (str, os.PathLike)) else list(output_file or [])
    paths = [Path(f) for f in files]
    for p in paths:
        if p.suffix.lstrip(".").lower() not in SUFFIXES:
            raise ParameterError(f"output_file {str(p)!r}: the suffix names the format; use one of "
                                 f"{', '.join('.' + s for s in SUFFIXES)}.")
    return paths


def save_figure(fig: Figure, path: OutputFile, formats: Sequence[str] | None = None, dpi: int = 120) -> list[Path]:
    """Save ``fig`` to ``path``; returns the paths written.

    ``formats`` given (the analysis API of old): ``path`` is a stem, one file per format. Otherwise
    ``path`` is a file name or a sequence of them, the format from each suffix. Image layers are
    rasterised inside vector files (a per-unit map of 10⁵ units is not 10⁵ SVG squares); SVG keeps
    text as text.
    """
    if formats is not None:
        base = Path(path)  # type: ignore[arg-type]
        if base.suffix.lstrip(".").lower() in SUFFIXES:
            base = base.with_suffix("")
        targets = [base.with_name(f"{base.name}.{fmt}") for fmt in formats]
    else:
        targets = output_paths(path)
    for ax in fig.axes:
        for artist in (*ax.images, *ax.collections):
            if isinstance(artist, (AxesImage, QuadMesh)):
                artist.set_rasterized(True)
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # editable, searchable text
            fig.savefig(target, format=target.suffix.lstrip(".").lower(), dpi=dpi, bbox_inches="tight")
    return targets


def save_atomic(fig: Figure, output_file: OutputFile, *, dpi: int = 120, tight: bool = True) -> list[Path]:
    """Save ``fig`` to each path of ``output_file`` (format from the suffix), each written atomically.

    For figures that land in folders other tools read (run folders, export and compare outputs):
    a killed process never leaves a half-written image (:func:`cortexsim.atomic.atomic_path`).
    Returns the paths written.
    """
    from ..atomic import atomic_path

    paths = output_paths(output_file)
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".").lower(), dpi=dpi,
                        **({"bbox_inches": "tight"} if tight else {}))
    return paths


def new_figure(figsize: tuple[float, float], output_file: OutputFile) -> Figure:
    """A new figure: a bare Figure when it is only saved (no pyplot state), else a pyplot one (notebooks)."""
    if output_file is not None:
        return Figure(figsize=figsize)
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize)


def require(result: Any, names: Sequence[str], func: str, what: str) -> None:
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


def extend(values: Any, lo: float, hi: float) -> str:
    """The colour bar's ``extend`` for values beyond (lo, hi)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    below, above = bool(v.size and v.min() < lo), bool(v.size and v.max() > hi)
    return ("neither", "max", "min", "both")[2 * below + above]


def where(obj: Any) -> str:
    """' — AREA, CATEGORY' from an analysis result's ``area`` coord / attrs (empty when unknown)."""
    attrs = getattr(obj, "attrs", {})
    area = attrs.get("area")
    if area is None and "area" in getattr(obj, "coords", {}):
        names = np.unique(np.asarray(obj["area"].values).astype(str))
        area = names[0] if len(names) == 1 else None
    parts = [str(x) for x in (area, attrs.get("category")) if x not in (None, "", "None")]
    return f" — {', '.join(parts)}" if parts else ""


def palette(n: int) -> list[Any]:
    """``n`` distinct colours (tab10, tab20 beyond 10)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
