"""The comparison figure: moved to :func:`cortexsim.plotting.plot_comparison` (matplotlib only in plotting).

``cortexsim.compare.plot_comparison(table, path)`` keeps its old form for old callers: it returns the
matplotlib Figure (``cortexsim.plotting.plot_comparison`` returns the (n_rows, 4) Axes, and takes
``ax=`` / ``figure=``).
"""
from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ..plotting.compare import BOTH_RGB, MODEL_RGB, TARGET_RGB  # noqa: F401 - the old import path


def plot_comparison(table: pd.DataFrame, path: str | os.PathLike | None = None, *, max_rows: int = 6,
                    dpi: int = 120) -> Any:
    """:func:`cortexsim.plotting.plot_comparison` saved to ``path`` (if given); returns the Figure."""
    from ..plotting.compare import plot_comparison as draw

    return draw(table, path, max_rows=max_rows, dpi=dpi)[0, 0].figure
