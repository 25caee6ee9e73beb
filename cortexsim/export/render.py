"""PNG renders of exported files: moved to :mod:`cortexsim.plotting.export` (matplotlib only in plotting).

``cortexsim.export.render_nifti`` / ``render_gifti`` and this module keep working; new code draws with
``cortexsim.plotting.plot_nifti`` / ``plot_gifti`` (``ax=`` / ``figure=``, ``output_file=``).
"""
from __future__ import annotations

from ..plotting.export import CMAP, FLAT_VIEW, render_gifti, render_nifti  # noqa: F401 - the old import path

__all__ = ["CMAP", "FLAT_VIEW", "render_gifti", "render_nifti"]
