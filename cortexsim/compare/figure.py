"""Side-by-side figure of a comparison: model, aligned target, patch overlap, null distribution."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..grid import Grid
from .stats import threshold_patches

#: Overlap colours: model only, target only, both (RGB).
MODEL_RGB, TARGET_RGB, BOTH_RGB = (0.84, 0.15, 0.16), (0.12, 0.47, 0.71), (0.45, 0.1, 0.55)


def _slice(img: np.ndarray) -> np.ndarray:
    return img[img.shape[0] // 2] if img.ndim == 3 else img  # 3-D: the middle z slice


def plot_comparison(table: pd.DataFrame, path: str | os.PathLike | None = None, *, max_rows: int = 6,
                    dpi: int = 120) -> Any:
    """Draw a :func:`~cortexsim.compare.compare_maps` result, one row of four panels per map pair.

    Panels: the model map; the target resampled into the model's frame after
    alignment; the thresholded patches of both (red: model only, blue: target only,
    purple: both, grey: the rest of the overlap) with Dice; the null distribution of
    Pearson r with the observed r and its p-value. 3-D maps show their middle z slice.
    Returns the matplotlib Figure (saved as PNG/SVG atomically when ``path`` is given).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    g = table.attrs["grid"]
    grid = Grid(tuple(g["origin_mm"]), float(g["resolution_mm"]), tuple(g["shape"]))
    n = min(len(table), max_rows)
    fig, axes = plt.subplots(n, 4, figsize=(15, 3.6 * n), squeeze=False)
    ext = grid.extent()
    for k in range(n):
        row = table.iloc[k]
        m_img, t_img = table.attrs["model_images"][k], table.attrs["target_images"][k]
        for ax, img, title in ((axes[k, 0], m_img, f"model: {row.model_map}"),
                               (axes[k, 1], t_img, f"target (aligned): {row.target_map}")):
            s = _slice(img)
            lim = np.nanmax(np.abs(s)) if np.isfinite(s).any() else 1.0
            im = ax.imshow(s, origin="lower", extent=ext, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("x (mm)")
            ax.set_ylabel("y (mm)")
        mp = threshold_patches(m_img, grid, row.model_threshold)["mask"]
        tp = threshold_patches(t_img, grid, row.target_threshold)["mask"]
        mp, tp, both = _slice(mp), _slice(tp), _slice(np.isfinite(m_img) & np.isfinite(t_img))
        rgb = np.ones(mp.shape + (3,))
        rgb[both] = 0.85
        rgb[mp & ~tp], rgb[tp & ~mp], rgb[mp & tp] = MODEL_RGB, TARGET_RGB, BOTH_RGB
        axes[k, 2].imshow(rgb, origin="lower", extent=ext, interpolation="nearest")
        axes[k, 2].set_title(f"patches: model > {row.model_threshold:.3g} (red), target > {row.target_threshold:.3g} "
                             f"(blue)\nDice {row.dice:.2f}, Jaccard {row.jaccard:.2f}", fontsize=8)
        axes[k, 2].set_xlabel("x (mm)")
        null = table.attrs["null_r"][k]
        ax = axes[k, 3]
        ax.hist(null, bins=40, color="0.6", edgecolor="0.4")
        ax.axvline(row.pearson_r, color=MODEL_RGB, lw=2)
        ax.set_title(f"r = {row.pearson_r:.3f}, p = {row.p_value:.3g}\n{row.null} null, {row.n_perm} surrogates",
                     fontsize=9)
        ax.set_xlabel("Pearson r")
    head = f"align: {table['align'].iloc[0]}"
    if "rotation_deg" in table:
        head += f" (rotation {table['rotation_deg'].iloc[0]:.1f}°, scale {table['scale'].iloc[0]:.3f})"
    if "rsa_kendall_tau" in table:
        head += f"; RSA Kendall τ = {table['rsa_kendall_tau'].iloc[0]:.2f} (p = {table['rsa_p_value'].iloc[0]:.3g})"
    fig.suptitle(head, fontsize=10)
    fig.tight_layout()
    if path is not None:
        from ..io import atomic_path

        p = Path(path)
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=p.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
    return fig
