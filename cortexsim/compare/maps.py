"""``compare_maps``: a model map against a brain map, as a tidy table.

Pipeline (every step documented in the table's columns):

1. both maps are loaded as :class:`~cortexsim.compare.targets.BrainMap` (NIfTI, GIFTI,
   NumPy, per-unit DataArrays, Sheets) and paired by name (``dprime_faces`` ↔ ``faces``);
2. a common grid is laid over the model's footprint in the model's mm frame, at
   ``resolution_mm`` (default: the coarser of the two maps' spacings, made coarser
   still if the sheet would exceed ``max_pixels`` pixels, which the spatial null's
   n × n matrix needs);
3. the target is aligned (``align``: none, a user affine model mm → target mm,
   ``"patches"`` or ``"correlation"``, see :mod:`cortexsim.compare.align`) and sampled
   at the transformed pixel centres (NaN-aware linear interpolation, after
   anti-aliasing when the pixels are coarser than its voxels);
4. on the pixels where both are defined: Pearson and Spearman r, the p-value of
   Pearson r under a spatial null (surrogates of the model map,
   :mod:`cortexsim.compare.nulls`), thresholded patches of each map (Otsu's threshold
   by default), their Dice / Jaccard overlap, counts, areas and matched-centroid
   distance; with ≥ 3 category pairs, RSA (Kendall τ) across categories.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MapError
from ..grid import Grid
from .align import Transform, align_by_correlation, align_by_patches
from .nulls import NULLS, null_correlations, p_value
from .stats import centroid_distance, dice_jaccard, otsu_threshold, rsa_maps, threshold_patches
from .targets import BrainMap, load_map

ALIGN: tuple[str, ...] = ("none", "patches", "correlation")
#: Fewest overlapping pixels a comparison accepts.
MIN_OVERLAP_PIXELS = 10


def _key(name: str) -> str:
    return str(name).rsplit("_", 1)[-1].lower()


def pair_maps(model: Sequence[str], target: Sequence[str], match: Mapping[str, str] | None = None) -> list[tuple[int, int]]:
    """(model index, target index) pairs: ``match`` (model name → target name), the only map of each,
    equal names, or equal last ``_``-separated token (``dprime_faces`` ↔ ``faces``)."""
    if match:
        pairs = []
        for m, t in match.items():
            if m not in model or t not in target:
                raise MapError(f"match {m!r} → {t!r}: model maps are {list(model)}, target maps {list(target)}.")
            pairs.append((list(model).index(m), list(target).index(t)))
        return pairs
    if len(model) == 1 and len(target) == 1:
        return [(0, 0)]
    exact = [(i, list(target).index(m)) for i, m in enumerate(model) if m in target]
    if exact:
        return exact
    keys = {_key(t): j for j, t in enumerate(target)}
    pairs = [(i, keys[_key(m)]) for i, m in enumerate(model) if _key(m) in keys]
    if not pairs:
        raise MapError(f"no model map pairs with a target map by name (model {list(model)}, target {list(target)}); "
                       f"pass match={{model_name: target_name}} (CLI: --match m=t,...) or one map each.")
    return pairs


def _thresholds(threshold: Any, n: int) -> list[tuple[float | None, float | None]]:
    if threshold is None or threshold == "otsu":
        return [(None, None)] * n
    if isinstance(threshold, (tuple, list)) and len(threshold) == 2:
        return [(float(threshold[0]), float(threshold[1]))] * n
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise MapError(f"threshold must be a number, a (model, target) pair or 'otsu'; got {threshold!r}.") from None
    return [(t, t)] * n


def _common_grid(model: BrainMap, resolution_mm: float | None, target: BrainMap, max_pixels: int
                 ) -> tuple[Grid, np.ndarray]:
    pos, _ = model.finite_points(0)
    res = float(resolution_mm) if resolution_mm is not None else max(model.spacing_mm, target.spacing_mm)
    if not (np.isfinite(res) and res > 0):
        raise MapError(f"resolution_mm must be a positive number of mm; got {resolution_mm!r}.")
    for _ in range(4):
        try:
            grid = Grid.covering(pos, res)
        except ValueError as exc:
            raise MapError(str(exc)) from exc
        values = model.smoothed(res).sample(grid.centres())
        n = int(np.isfinite(values).all(axis=1).sum())
        if resolution_mm is not None or n <= max_pixels:
            break
        res *= 1.02 * np.sqrt(n / max_pixels)
    else:  # pragma: no cover - the loop converges in one or two steps
        pass
    if resolution_mm is None and res > max(model.spacing_mm, target.spacing_mm) * 1.0001:
        warnings.warn(f"comparing on a {res:.3g} mm grid so that the sheet holds ≤ {max_pixels} pixels (the spatial "
                      f"null needs an n × n matrix); pass resolution_mm or max_pixels to change it.", stacklevel=3)
    return grid, values


def _transform(align: Any, ndim: int) -> tuple[Transform | None, str]:
    if align is None or (isinstance(align, str) and align == "none"):
        return Transform.identity(ndim), "none"
    if isinstance(align, str):
        if align not in ALIGN:
            raise MapError(f"align must be one of {ALIGN}, a 4×4 / 3×3 affine (model mm → target mm) or a Transform; "
                           f"got {align!r}.")
        return None, align
    t = align if isinstance(align, Transform) else Transform(np.asarray(align, dtype=float))
    return t.as_ndim(ndim), "affine"


def compare_maps(
    model_map: Any,
    target: Any,
    *,
    positions: Any = None,
    align: Any = None,
    scale: bool = True,
    resolution_mm: float | None = None,
    max_pixels: int = 3000,
    threshold: Any = None,
    min_patch_mm2: float | None = None,
    null: str = "moran",
    n_perm: int = 1000,
    alternative: str = "two-sided",
    match: Mapping[str, str] | None = None,
    area: str | None = None,
    seed: int | None = 0,
    **load_kw: Any,
) -> pd.DataFrame:
    """Compare a model map with a target (brain) map.

    Parameters
    ----------
    model_map : per-unit DataArray (unit,) or (category, unit), Dataset, or anything
        :func:`~cortexsim.compare.load_map` reads
    target : a NIfTI / GIFTI / NumPy path, a BrainMap, or a per-unit map (model vs model)
    positions : positions of an array ``model_map`` (n, 2 | 3), mm
    align : None | "patches" | "correlation" | 4×4 (3×3 flat) affine model mm → target mm | Transform
    scale : let the fitted alignment scale the map (similarity); False: rigid
    resolution_mm : pixel size of the common grid (default: the coarser map spacing, see ``max_pixels``)
    max_pixels : largest number of sheet pixels (the null builds an n × n matrix)
    threshold : patch threshold: number (both maps), (model, target), or None / "otsu" (per map)
    min_patch_mm2 : smallest patch kept (default: 4 pixels)
    null : {"moran", "variogram", "shuffle"} — see :mod:`cortexsim.compare.nulls`;
        "shuffle" ignores spatial autocorrelation (too small p-values), never use it for inference
    n_perm : surrogates
    alternative : {"two-sided", "greater", "less"} for the p-value of Pearson r
    match : {model map name: target map name} (default: by name, see :func:`pair_maps`)
    area : the model area when ``model_map`` holds several
    seed : random seed of the surrogates
    load_kw : passed to :func:`~cortexsim.compare.load_map` for the target (``surface=``,
        ``affine=``, ``names=``, target ``positions`` as ``target_positions=``)

    Returns
    -------
    pandas.DataFrame, one row per map pair, columns: ``model_map``, ``target_map``,
    ``n_pixels``, ``resolution_mm``, ``pearson_r``, ``spearman_r``, ``p_value``, ``null``,
    ``n_perm``, ``alternative``, ``null_mean_r``, ``null_sd_r``, ``model_threshold``,
    ``target_threshold``, ``dice``, ``jaccard``, ``model_n_patches``,
    ``target_n_patches``, ``model_patch_area_mm2``, ``target_patch_area_mm2``,
    ``centroid_distance_mm``, ``align``, ``rotation_deg``, ``scale``, ``shift_x_mm``,
    ``shift_y_mm`` [, ``shift_z_mm``], alignment diagnostics (``align_rms_mm`` /
    ``align_score``), and with ≥ 3 pairs ``rsa_kendall_tau``, ``rsa_p_value``,
    ``rsa_n_categories`` (the same in every row). ``table.attrs`` keeps what the figure
    needs: ``grid`` (origin, resolution, shape), ``model_images`` / ``target_images``
    (pairs × array shape, target aligned to the model frame), ``overlap`` (bool image),
    ``null_r`` (pairs × n_perm), ``transform`` (matrix model mm → target mm), ``source``.

    Raises
    ------
    MapError
        Unreadable maps, flat vs 3-D maps, unknown options, maps that do not pair, no
        overlap after alignment, a constant map.
    """
    if null not in NULLS:
        raise MapError(f"null must be one of {NULLS}; got {null!r}.")
    if "target_positions" in load_kw:
        load_kw["positions"] = load_kw.pop("target_positions")
    model = load_map(model_map, positions, area=area)
    tgt = load_map(target, **load_kw)
    if model.ndim != tgt.ndim:
        kinds = {2: "flat (2-D)", 3: "3-D"}
        raise MapError(f"the model map is {kinds[model.ndim]} but the target {tgt.source} is {kinds[tgt.ndim]} "
                       f"(volume shape {tgt.data.shape[:3]}); compare a flat sheet with a single-slice map or a flat "
                       f"surface, a 3-D layout with a volume.")
    pairs = pair_maps(model.names, tgt.names, match)
    mi, ti = [p[0] for p in pairs], [p[1] for p in pairs]
    model, tgt = model.subset(mi), tgt.subset(ti)
    grid, mvals = _common_grid(model, resolution_mm, tgt, max_pixels)
    res, centres = grid.resolution_mm, grid.centres()
    min_area = 4 * res ** grid.ndim if min_patch_mm2 is None else float(min_patch_mm2)
    thresholds = _thresholds(threshold, len(pairs))
    defined = np.isfinite(mvals).all(axis=1)
    t_res = tgt.smoothed(res)

    transform, how = _transform(align, grid.ndim)
    diag: dict[str, Any] = {}
    if how == "patches":
        own = Grid.covering(t_res.finite_points(0)[0], res)
        tv_own = t_res.sample(own.centres())
        m_cent, t_cent = [], []
        for k, (mt, tt) in enumerate(thresholds):
            m_img, t_img = mvals[:, k].reshape(grid.array_shape), tv_own[:, k].reshape(own.array_shape)
            m_cent.append(threshold_patches(m_img, grid, otsu_threshold(m_img) if mt is None else mt, min_area)["centroids"])
            t_cent.append(threshold_patches(t_img, own, otsu_threshold(t_img) if tt is None else tt, min_area)["centroids"])
        transform, diag = align_by_patches(m_cent, t_cent, scale=scale)
    elif how == "correlation":
        transform, diag = align_by_correlation(model, tgt, resolution_mm=res, scale=scale)
    tvals = t_res.sample(transform.apply(centres))

    rows, m_images, t_images, nulls = [], [], [], []
    common = defined & np.isfinite(tvals).all(axis=1)
    cache: dict[int, np.ndarray] = {}
    for k, ((a, b), (mt, tt)) in enumerate(zip(pairs, thresholds)):
        ok = np.isfinite(mvals[:, k]) & np.isfinite(tvals[:, k])
        n_ok = int(ok.sum())
        if n_ok < MIN_OVERLAP_PIXELS:
            raise MapError(
                f"model map {model.names[k]!r} and target {tgt.names[k]!r} ({tgt.source}) share {n_ok} pixels of "
                f"{res:.3g} mm after alignment ({how}); they must overlap in mm. Check both are in the same mm frame, "
                f"pass align='correlation' / 'patches' or an affine model mm → target mm."
            )
        x, y = mvals[ok, k], tvals[ok, k]
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            raise MapError(f"map {model.names[k] if np.ptp(x) == 0 else tgt.names[k]!r} is constant where the maps "
                           f"overlap; a correlation is undefined.")
        from scipy.stats import pearsonr, spearmanr

        r = float(pearsonr(x, y).statistic)
        rho = float(spearmanr(x, y).statistic)
        null_r = null_correlations(x, y, centres[ok], n_perm, null, seed)
        cache[k] = null_r
        m_img = np.where(ok, mvals[:, k], np.nan).reshape(grid.array_shape)
        t_img = np.where(ok, tvals[:, k], np.nan).reshape(grid.array_shape)
        m_thr = otsu_threshold(x) if mt is None else mt
        t_thr = otsu_threshold(y) if tt is None else tt
        mp, tp = threshold_patches(m_img, grid, m_thr, min_area), threshold_patches(t_img, grid, t_thr, min_area)
        dice, jac = dice_jaccard(mp["mask"], tp["mask"])
        rows.append({
            "model_map": model.names[k], "target_map": tgt.names[k], "n_pixels": n_ok, "resolution_mm": res,
            "pearson_r": r, "spearman_r": rho, "p_value": p_value(r, null_r, alternative), "null": null,
            "n_perm": int(n_perm), "alternative": alternative, "null_mean_r": float(np.mean(null_r)),
            "null_sd_r": float(np.std(null_r)), "model_threshold": m_thr, "target_threshold": t_thr,
            "dice": dice, "jaccard": jac, "model_n_patches": mp["n"], "target_n_patches": tp["n"],
            "model_patch_area_mm2": float(mp["area_mm2"].sum()), "target_patch_area_mm2": float(tp["area_mm2"].sum()),
            "centroid_distance_mm": centroid_distance(mp["centroids"], tp["centroids"]),
            "align": how, **transform.summary(), **{k2: v for k2, v in diag.items()},
        })
        m_images.append(m_img)
        t_images.append(t_img)
        nulls.append(null_r)
    if len(pairs) >= 3 and common.sum() >= MIN_OVERLAP_PIXELS:
        rsa = rsa_maps(mvals[common].T, tvals[common].T, seed=seed)
        for row in rows:
            row.update(rsa_kendall_tau=rsa["kendall_tau"], rsa_p_value=rsa["p_value"], rsa_n_categories=rsa["n_categories"])
    table = pd.DataFrame(rows)
    table.attrs.update(
        grid={"origin_mm": list(grid.origin_mm), "resolution_mm": res, "shape": list(grid.shape)},
        model_images=np.stack(m_images), target_images=np.stack(t_images), null_r=np.stack(nulls),
        transform=transform.matrix.tolist(), source={"model": model.source, "target": tgt.source},
    )
    return table


def save_table(table: pd.DataFrame, stem: str | os.PathLike) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.json`` (rows + transform + grid + sources) atomically."""
    from ..export.files import write_bytes, write_json

    stem = Path(stem)
    csv = write_bytes(stem.with_name(stem.name + ".csv"), table.to_csv(index=False).encode())
    rows = json.loads(table.to_json(orient="records"))  # NaN → null, numpy → plain
    side = write_json(stem.with_name(stem.name + ".json"), {
        "rows": rows, "transform_model_to_target": table.attrs.get("transform"),
        "grid": table.attrs.get("grid"), "source": table.attrs.get("source"),
    })
    return [csv, side]
