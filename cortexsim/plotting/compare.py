"""Side-by-side figure of a brain-map comparison: model, aligned target, patch overlap, null distribution."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ._base import OutputFile, axes_for, new_figure, require, save_atomic

#: Overlap colours: model only, target only, both (RGB).
MODEL_RGB, TARGET_RGB, BOTH_RGB = (0.84, 0.15, 0.16), (0.12, 0.47, 0.71), (0.45, 0.1, 0.55)


def _slice(img: np.ndarray) -> np.ndarray:
    return img[img.shape[0] // 2] if img.ndim == 3 else img  # 3-D: the middle z slice


def overlap_rgb(model_mask: np.ndarray, target_mask: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """RGB image (…, 3) of two patch masks: red model only, blue target only, purple both, grey the rest
    of the pixels where both maps are ``defined``, white elsewhere."""
    rgb = np.ones(model_mask.shape + (3,))
    rgb[defined] = 0.85
    rgb[model_mask & ~target_mask], rgb[target_mask & ~model_mask] = MODEL_RGB, TARGET_RGB
    rgb[model_mask & target_mask] = BOTH_RGB
    return rgb


def plot_comparison(table: pd.DataFrame, output_file: OutputFile = None, *, max_rows: int = 6, ax: Any = None,
                    figure: Any = None, dpi: int = 120) -> np.ndarray:
    """Draw a :func:`~cortexsim.compare.compare_maps` result, one row of four panels per map pair.

    Parameters
    ----------
    table : the DataFrame of ``compare_maps`` (its ``attrs`` hold the grid, the model and aligned
        target images and the null r values of each row)
    output_file : path(s) to write (format from the suffix), each atomically
    max_rows : draw at most this many map pairs
    ax : Axes (n_rows, 4) (or n_rows · 4 in row order) to draw into; figure : a Figure to add them to

    Panels: the model map; the target resampled into the model's frame after alignment; the
    thresholded patches of both (red: model only, blue: target only, purple: both, grey: the rest
    of the overlap) with Dice; the null distribution of Pearson r with the observed r and its
    p-value. 3-D maps show their middle z slice. Returns the Axes, shape (n_rows, 4).
    """
    from ..compare.stats import threshold_patches
    from ..geometry import Grid

    attrs = table.attrs
    require(attrs, ("grid", "model_images", "target_images", "null_r"), "plot_comparison", "a compare_maps")
    if len(table) == 0:
        raise ParameterError("plot_comparison: the table has no map pairs to draw.")
    g = attrs["grid"]
    grid = Grid(tuple(g["origin_mm"]), float(g["resolution_mm"]), tuple(g["shape"]))
    n = min(len(table), max_rows)
    if ax is not None:
        axes = np.asarray(axes_for(4 * n, ax=ax, func="plot_comparison"), dtype=object).reshape(n, 4)
    else:
        fig = figure if figure is not None else new_figure((15, 3.6 * n), output_file)
        axes = fig.subplots(n, 4, squeeze=False)
    fig = axes[0, 0].figure
    ext = grid.extent()
    for k in range(n):
        row = table.iloc[k]
        m_img, t_img = attrs["model_images"][k], attrs["target_images"][k]
        for a, img, title in ((axes[k, 0], m_img, f"model: {row.model_map}"),
                              (axes[k, 1], t_img, f"target (aligned): {row.target_map}")):
            s = _slice(img)
            lim = np.nanmax(np.abs(s)) if np.isfinite(s).any() else 1.0
            im = a.imshow(s, origin="lower", extent=ext, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            fig.colorbar(im, ax=a, shrink=0.8)
            a.set(title=title, xlabel="x (mm)", ylabel="y (mm)")
            a.title.set_fontsize(9)
        mp = threshold_patches(m_img, grid, row.model_threshold)["mask"]
        tp = threshold_patches(t_img, grid, row.target_threshold)["mask"]
        both = np.isfinite(m_img) & np.isfinite(t_img)
        axes[k, 2].imshow(overlap_rgb(_slice(mp), _slice(tp), _slice(both)), origin="lower", extent=ext,
                          interpolation="nearest")
        axes[k, 2].set_title(f"patches: model > {row.model_threshold:.3g} (red), target > {row.target_threshold:.3g} "
                             f"(blue)\nDice {row.dice:.2f}, Jaccard {row.jaccard:.2f}", fontsize=8)
        axes[k, 2].set_xlabel("x (mm)")
        a = axes[k, 3]
        a.hist(attrs["null_r"][k], bins=40, color="0.6", edgecolor="0.4")
        a.axvline(row.pearson_r, color=MODEL_RGB, lw=2)
        a.set_title(f"r = {row.pearson_r:.3f}, p = {row.p_value:.3g}\n{row.null} null, {row.n_perm} surrogates",
                    fontsize=9)
        a.set_xlabel("Pearson r")
    head = f"align: {table['align'].iloc[0]}"
    if "rotation_deg" in table:
        head += f" (rotation {table['rotation_deg'].iloc[0]:.1f}°, scale {table['scale'].iloc[0]:.3f})"
    if "rsa_kendall_tau" in table:
        head += f"; RSA Kendall τ = {table['rsa_kendall_tau'].iloc[0]:.2f} (p = {table['rsa_p_value'].iloc[0]:.3g})"
    fig.suptitle(head, fontsize=10)
    if ax is None:
        fig.tight_layout()
    if output_file is not None:
        save_atomic(fig, output_file, dpi=dpi)
    return axes
