"""Deprecated: the figures moved to :mod:`cortexsim.plotting` (``ax=``, ``output_file=``, returns Axes).

``analysis.plot_*(result, path, formats=("png", "svg"), **kw)`` still works for one release: it
warns (``DeprecationWarning``), draws with ``cortexsim.plotting.plot_*`` into a figure of its own,
writes ``path`` with each suffix of ``formats`` and returns the paths, as before.
This module does not import matplotlib itself (``cortexsim.plotting`` does, on first use).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

FORMATS: tuple[str, ...] = ("png", "svg")
_PLOTS = ("plot_preference_map", "plot_dprime_map", "plot_orientation_map", "plot_clustering_null", "plot_smoothness",
          "plot_patches", "plot_rdm", "plot_unit_map", "plot_tuning_curves", "plot_robustness")


def _files(path: str | os.PathLike, formats: Sequence[str]) -> list[Path]:
    base = Path(path)
    if base.suffix.lstrip(".").lower() in ("png", "svg", "pdf"):
        base = base.with_suffix("")
    return [base.with_name(f"{base.name}.{fmt}") for fmt in formats]


def _deprecated(name: str) -> Callable[..., list[Path]]:
    def plot(obj: Any, path: str | os.PathLike, formats: Sequence[str] = FORMATS, *args: Any, **kwargs: Any) -> list[Path]:
        warnings.warn(f"cortexsim.analysis.{name}(result, path, formats) is deprecated and will be removed in the next "
                      f"release; use cortexsim.plotting.{name}(result, output_file=[...]) (or ax=).",
                      DeprecationWarning, stacklevel=2)
        from .. import plotting

        extra = {"plot_dprime_map": ("vmax", "percentile"), "plot_orientation_map": ("pinwheels",),
                 "plot_unit_map": ("cmap", "label", "percentile"), "plot_tuning_curves": ("units", "max_units")}
        kwargs.update(zip(extra.get(name, ()), args))  # the old positional options
        files = _files(path, formats)
        getattr(plotting, name)(obj, output_file=files, **kwargs)
        return files

    plot.__name__ = plot.__qualname__ = name
    plot.__doc__ = f"Deprecated: :func:`cortexsim.plotting.{name}` with ``output_file=``; returns the paths written."
    return plot


for _name in _PLOTS:
    globals()[_name] = _deprecated(_name)


def save_figure(fig: Any, path: str | os.PathLike, formats: Sequence[str] = FORMATS, dpi: int = 120) -> list[Path]:
    """Deprecated: :func:`cortexsim.plotting.save_figure`."""
    from ..plotting import save_figure as save

    return save(fig, path, formats, dpi)


def robust_limits(values: Any, percentile: float = 99.0, symmetric: bool = False) -> tuple[float, float]:
    """Deprecated alias of :func:`cortexsim.plotting.robust_limits`."""
    from ..plotting import robust_limits as limits

    return limits(values, percentile, symmetric)
