"""Training curves of a run: task loss and spatial losses against step (``RUN_DIR/curves.png``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._base import OutputFile, axes_for, save_atomic


def plot_curves(records: Sequence[Mapping[str, Any]], output_file: OutputFile = None, *, title: str = "",
                ax: Any = None, figure: Any = None) -> Any:
    """Task loss (left panel) and spatial losses, total and per layer (right panel), against step.

    Parameters
    ----------
    records : log records as the trainer writes them (``Trainer.fit()`` / ``read_log(run_dir)``): each
        with ``step``, ``task_loss``, ``spatial_loss`` and one ``spatial/<layer>`` per regularised layer
        (unweighted)
    output_file : path(s) to write, the format from each suffix; each is written atomically (a run
        folder never holds a half-written figure)
    title : title of the left panel (default "task loss")
    ax, figure : two Axes to draw into, or a Figure to add them to (default: a new figure)

    Returns the two Axes (a NumPy object array).
    """
    axes = axes_for(2, ax=ax, figure=figure, output_file=output_file, figsize=(10, 4), func="plot_curves")
    ax1, ax2 = axes
    steps = [r["step"] for r in records]
    ax1.plot(steps, [r["task_loss"] for r in records], label="task")
    ax1.set(xlabel="step", ylabel="task loss", title=title or "task loss")
    ax2.plot(steps, [r["spatial_loss"] for r in records], "k", lw=2, label="total (weighted)")
    layers = list(dict.fromkeys(k for r in records for k in r if k.startswith("spatial/")))
    for key in layers:
        ax2.plot(steps, [r.get(key, float("nan")) for r in records], lw=1, label=key[len("spatial/"):])
    ax2.set(xlabel="step", ylabel="spatial loss", title="spatial loss")
    ax2.legend(fontsize=7)
    fig = ax1.figure
    if output_file is not None:
        fig.tight_layout()
        save_atomic(fig, output_file, dpi=100, tight=False)
    return np.asarray(axes, dtype=object)
