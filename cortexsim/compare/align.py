"""Aligning a model map with a brain map: a transform model mm → target mm.

Three ways, all giving a :class:`Transform` ``q = A p + b`` from model coordinates ``p``
to target coordinates ``q``:

* a user-given affine (e.g. from anatomical landmarks): ``Transform(matrix)``;
* :func:`align_by_patches`: a similarity transform (rotation, isotropic scale,
  translation) fitted by Procrustes (Umeyama 1991, least squares) on matched patch
  centroids. Patches are matched by category when several category maps are
  compared (each category's largest patch), else by iterative closest points with a
  one-to-one (Hungarian) assignment started from 12 rotations;
* :func:`align_by_correlation` (flat maps): the similarity transform maximising the
  correlation between the model map and the target sampled at the transformed model
  pixels (normalised cross-correlation with the target z-scored over its whole
  footprint, so neither shrinking the model onto part of a smooth target nor sliding
  it off the target pays) — a coarse search over rotations (every 15°) and
  translations, refined by Nelder–Mead over (angle, log scale, shift).

The fit uses the maps themselves, so a p-value computed after it is optimistic; for a
strict test pass a transform found on independent data.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MapError

#: Model pixels used by the coarse search of :func:`align_by_correlation`.
COARSE_POINTS = 400
#: Pixels of each map used by the refinement of :func:`align_by_correlation`.
REFINE_POINTS = 4000


@dataclass(frozen=True)
class Transform:
    """An affine map model mm → target mm: ``q = matrix[:d, :d] @ p + matrix[:d, d]``.

    ``matrix`` is (d+1) × (d+1) with d = 2 (flat) or 3.
    """

    matrix: np.ndarray

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=float)
        if m.shape not in ((3, 3), (4, 4)) or not np.isfinite(m).all() or abs(np.linalg.det(m[:-1, :-1])) < 1e-12:
            raise MapError(f"a transform is a finite, invertible 3×3 (flat) or 4×4 affine; got {np.asarray(self.matrix).tolist()}.")
        object.__setattr__(self, "matrix", m)

    @classmethod
    def identity(cls, ndim: int) -> Transform:
        return cls(np.eye(ndim + 1))

    @classmethod
    def similarity(cls, angle_deg: float = 0.0, shift: Sequence[float] = (0.0, 0.0), scale: float = 1.0) -> Transform:
        """A flat similarity: rotate by ``angle_deg`` (counter-clockwise) about the origin, scale, then shift (mm)."""
        a = np.deg2rad(angle_deg)
        m = np.eye(3)
        m[:2, :2] = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        m[:2, 2] = shift
        return cls(m)

    @property
    def ndim(self) -> int:
        return self.matrix.shape[0] - 1

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points (n, d) in model mm to target mm."""
        p = np.asarray(points, dtype=float)
        return p @ self.matrix[:-1, :-1].T + self.matrix[:-1, -1]

    def inverse(self) -> Transform:
        return Transform(np.linalg.inv(self.matrix))

    def as_ndim(self, ndim: int) -> Transform:
        """The same map in ``ndim`` dimensions (a flat transform acts on x, y and leaves z)."""
        if ndim == self.ndim:
            return self
        if ndim == 3 and self.ndim == 2:
            m = np.eye(4)
            m[:2, :2], m[:2, 3] = self.matrix[:2, :2], self.matrix[:2, 2]
            return Transform(m)
        lin = self.matrix[:3, :3]
        if not (np.allclose(lin[2, :2], 0) and np.allclose(lin[:2, 2], 0)):
            raise MapError("a 3-D transform that tilts the sheet cannot act on a flat map; give a 3×3 affine.")
        m = np.eye(3)
        m[:2, :2], m[:2, 2] = lin[:2, :2], self.matrix[:2, 3]
        return Transform(m)

    @property
    def scale(self) -> float:
        """Isotropic scale: ``|det A|^(1/d)``."""
        return float(abs(np.linalg.det(self.matrix[:-1, :-1])) ** (1.0 / self.ndim))

    @property
    def rotation(self) -> np.ndarray:
        """The rotation closest to A (polar decomposition)."""
        u, _, vt = np.linalg.svd(self.matrix[:-1, :-1])
        return u @ vt

    @property
    def angle_deg(self) -> float:
        """Rotation angle in degrees (flat: counter-clockwise about z; 3-D: the axis-angle angle)."""
        r = self.rotation
        if self.ndim == 2:
            return float(np.rad2deg(np.arctan2(r[1, 0], r[0, 0])))
        return float(np.rad2deg(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))))

    @property
    def shift(self) -> np.ndarray:
        return self.matrix[:-1, -1].copy()

    def summary(self) -> dict[str, Any]:
        """Angle, scale and shift as table columns."""
        out: dict[str, Any] = {"rotation_deg": self.angle_deg, "scale": self.scale}
        for axis, s in zip("xyz", self.shift):
            out[f"shift_{axis}_mm"] = float(s)
        return out


def fit_similarity(source: np.ndarray, target: np.ndarray, *, scale: bool = True,
                   weights: np.ndarray | None = None) -> Transform:
    """Least-squares similarity ``target ≈ s R source + t`` (Umeyama 1991), R a proper rotation.

    Parameters
    ----------
    source, target : ndarray (n, d), matched points (n ≥ 2 in 2-D, ≥ 3 in 3-D)
    scale : fit the isotropic scale (else s = 1: a rigid transform)
    weights : ndarray (n,), optional point weights (e.g. patch areas)
    """
    src, dst = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    n, d = src.shape
    if dst.shape != src.shape or n < d:
        raise MapError(f"a similarity fit needs ≥ {d} matched points in {d}-D; got {n}.")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    u, sv, vt = np.linalg.svd(cov)
    fix = np.ones(d)
    fix[-1] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rot = (u * fix) @ vt
    var = float(w @ (xs ** 2).sum(axis=1))
    s = float((sv * fix).sum() / var) if scale and var > 0 else 1.0
    m = np.eye(d + 1)
    m[:d, :d] = s * rot
    m[:d, d] = mu_d - s * rot @ mu_s
    return Transform(m)


def _rotation(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def match_points(source: np.ndarray, target: np.ndarray, *, scale: bool = True, n_starts: int = 12,
                 iterations: int = 30) -> tuple[Transform, np.ndarray, np.ndarray, float]:
    """Unlabelled point sets: iterative closest points with a one-to-one assignment.

    Starts from ``n_starts`` rotations about the centroids (flat sets) and keeps the fit
    with the smallest RMS residual. Returns ``(transform, source_index, target_index, rms_mm)``.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    src, dst = np.asarray(source, float), np.asarray(target, float)
    d = src.shape[1]
    k = min(len(src), len(dst))
    if k < d:
        raise MapError(f"patch alignment needs ≥ {d} patches in both maps; the model has {len(src)}, the target "
                       f"{len(dst)}. Lower the threshold or the minimum patch area, or use align='correlation'.")
    # Matchings are found and ranked with rigid fits (a free scale lets a wrong matching shrink
    # towards the centroid and look good); the scale is fitted once on the chosen matching.
    best: tuple[Transform, np.ndarray, np.ndarray, float] | None = None
    starts = np.arange(n_starts) * 360.0 / n_starts if d == 2 else [0.0]
    for angle in starts:
        m = np.eye(d + 1)
        if d == 2:
            m[:2, :2] = _rotation(angle)
        m[:d, d] = dst.mean(axis=0) - m[:d, :d] @ src.mean(axis=0)
        t = Transform(m)
        prev = None
        for _ in range(iterations):
            rows, cols = linear_sum_assignment(cdist(t.apply(src), dst))
            key = (tuple(rows), tuple(cols))
            if key == prev:
                break
            prev = key
            t = fit_similarity(src[rows], dst[cols], scale=False)
        rms = float(np.sqrt(np.mean(np.sum((t.apply(src[rows]) - dst[cols]) ** 2, axis=1))))
        if best is None or rms < best[3] - 1e-9:
            best = (t, rows, cols, rms)
    assert best is not None
    t, rows, cols, _ = best
    if scale:
        t = fit_similarity(src[rows], dst[cols], scale=True)
    rms = float(np.sqrt(np.mean(np.sum((t.apply(src[rows]) - dst[cols]) ** 2, axis=1))))
    return t, rows, cols, rms


def align_by_patches(model_centroids: Sequence[np.ndarray], target_centroids: Sequence[np.ndarray], *,
                     scale: bool = True) -> tuple[Transform, dict[str, Any]]:
    """Similarity transform from patch centroids, one (n_i, d) array per compared map pair.

    One pair: the unlabelled centroids are matched by :func:`match_points`. Several
    pairs (category maps): the largest patch of each category (first row of each array)
    is matched by category, then Procrustes; with fewer categories than ``d`` every
    patch of every pair goes into one unlabelled match instead.
    """
    d = next((len(c[0]) for c in model_centroids if len(c)), 2)
    if len(model_centroids) >= max(2, d) and all(len(m) and len(t) for m, t in zip(model_centroids, target_centroids)):
        src = np.stack([c[0] for c in model_centroids])
        dst = np.stack([c[0] for c in target_centroids])
        t = fit_similarity(src, dst, scale=scale)
        rms = float(np.sqrt(np.mean(np.sum((t.apply(src) - dst) ** 2, axis=1))))
        return t, {"align_pairs": len(src), "align_rms_mm": rms, "align_matching": "by category"}
    src = np.concatenate([np.asarray(c).reshape(-1, d) for c in model_centroids])
    dst = np.concatenate([np.asarray(c).reshape(-1, d) for c in target_centroids])
    t, rows, _, rms = match_points(src, dst, scale=scale)
    return t, {"align_pairs": len(rows), "align_rms_mm": rms, "align_matching": "closest points"}


def _standardised(target: Any) -> Any:
    """The target with every map z-scored over its defined voxels (NaN stays NaN)."""
    data = target.data.copy()
    for m in range(data.shape[-1]):
        v = data[..., m]
        ok = np.isfinite(v)
        sd = v[ok].std()
        data[..., m] = (v - v[ok].mean()) / (sd if sd > 0 else 1.0)
    return type(target)(data, target.affine, target.names, target.ndim, target.source)


def _match_score(z_model: np.ndarray, z_sampled: np.ndarray, min_overlap: int) -> np.ndarray | float:
    """Cross-correlation with fixed normalisation, mean over maps: ``mean_p z_model(p) · z_target(T p)``.

    ``z_model`` (n, m) is standardised over the model's pixels and ``z_sampled`` ([S,] n, m) is the
    target standardised over *its whole* footprint, sampled at the transformed pixels (0 off the
    target). Unlike Pearson r on the overlap, this does not reward shrinking the model onto a
    small part of a smooth target (whose variance over a smaller region is smaller) nor sliding
    it half off the target; pixels off the target count 0. -1 where fewer than ``min_overlap``
    pixels land on the target.
    """
    batch = z_sampled.ndim == 3
    b = z_sampled if batch else z_sampled[None]
    ok = np.isfinite(b).all(axis=2)  # (S, n)
    score = (np.nan_to_num(b, nan=0.0) * z_model[None]).mean(axis=(1, 2))
    score = np.where(ok.sum(axis=1) >= min_overlap, score, -1.0)
    return score if batch else float(score[0])


def align_by_correlation(
    model: Any,
    target: Any,
    *,
    resolution_mm: float,
    scale: bool = True,
    min_overlap: float = 0.25,
    angle_step_deg: float = 15.0,
    max_shifts: int = 16,
) -> tuple[Transform, dict[str, Any]]:
    """Similarity transform (flat maps) model mm → target mm maximising the maps' correlation.

    The score is symmetric: the mean of the normalised cross-correlation (each map
    z-scored over its whole footprint, see :func:`_match_score`) computed on the model's
    pixels (target sampled at ``T p``) and on the target's pixels (model sampled at
    ``T⁻¹ q``). One direction alone is biased in scale under noise: shrinking the model
    makes its pixels sample the target's noise more densely, so the noise part of the
    score varies more and its maximum favours small scales (the other direction favours
    large ones). At least ``min_overlap`` of the pixels must land on the other map.

    Parameters
    ----------
    model, target : :class:`~cortexsim.compare.targets.BrainMap` (flat), the maps to align
    resolution_mm : pixel size of the comparison (both maps are anti-aliased to it)
    scale : fit the scale too (else rigid)
    min_overlap : fraction of pixels that must land on the other map
    angle_step_deg, max_shifts : the coarse search (rotations × up to max_shifts² translations)
    """
    from scipy.optimize import minimize

    if model.ndim != 2 or target.ndim != 2:
        raise MapError("align='correlation' works on flat maps; for 3-D maps give an affine or use align='patches'.")
    zm, zt = _standardised(model.smoothed(resolution_mm)), _standardised(target.smoothed(resolution_mm))
    rng = np.random.default_rng(0)

    def pixels(bm: Any, most: int) -> tuple[np.ndarray, np.ndarray]:
        pts = _grid_points(bm, resolution_mm)
        vals = bm.sample(pts)
        ok = np.isfinite(vals).all(axis=1)
        pts, vals = pts[ok], vals[ok]
        keep = rng.choice(len(pts), min(len(pts), most), replace=False)
        return pts[keep], vals[keep]

    p_m, z_p = pixels(zm, REFINE_POINTS)
    q_t, z_q = pixels(zt, REFINE_POINTS)
    centre = p_m.mean(axis=0)
    lo, hi = q_t.min(axis=0), q_t.max(axis=0)
    step = max(float(resolution_mm), float(np.max(hi - lo)) / max_shifts)
    gx, gy = np.arange(lo[0], hi[0] + step / 2, step), np.arange(lo[1], hi[1] + step / 2, step)
    shifts = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)

    def transform(theta: np.ndarray) -> Transform:
        angle, log_s, tx, ty = theta
        m = np.eye(3)
        m[:2, :2] = np.exp(log_s if scale else 0.0) * _rotation(angle)
        m[:2, 2] = np.array([tx, ty]) - m[:2, :2] @ centre  # the model centre lands on (tx, ty)
        return Transform(m)

    def score(theta: np.ndarray, n: int | None = None) -> float:
        t = transform(theta)
        pm, zpm, qt, zqt = (p_m, z_p, q_t, z_q) if n is None else (p_m[:n], z_p[:n], q_t[:n], z_q[:n])
        need_m, need_t = max(3, int(min_overlap * len(pm))), max(3, int(min_overlap * len(qt)))
        forward = _match_score(zpm, zt.sample(t.apply(pm)), need_m)
        backward = _match_score(zqt, zm.sample(t.inverse().apply(qt)), need_t)
        return -1.0 if min(forward, backward) <= -1.0 else 0.5 * (forward + backward)

    # coarse search (rotations × translations) on a subsample, batched; then refine on all pixels
    n_sub = min(len(p_m), COARSE_POINTS)
    need_sub = max(3, int(np.ceil(min_overlap * n_sub)))
    coarse = []
    for angle in np.arange(0.0, 360.0, angle_step_deg):
        rotated = (p_m[:n_sub] - centre) @ _rotation(angle).T
        sampled = zt.sample((rotated[None] + shifts[:, None]).reshape(-1, 2))
        r = _match_score(z_p[:n_sub], sampled.reshape(len(shifts), n_sub, -1), need_sub)
        coarse += [(float(v), angle, sh) for v, sh in zip(r, shifts)]
    coarse.sort(key=lambda c: -c[0])
    best_theta, best = None, -np.inf
    for _, angle, s in coarse[:4]:
        x0 = np.array([angle, 0.0, s[0], s[1]])
        simplex = np.vstack([x0, x0 + np.diag([angle_step_deg / 2, 0.1, step / 2, step / 2])])
        res = minimize(lambda th: -score(th), x0, method="Nelder-Mead",
                       options={"xatol": 1e-3, "fatol": 1e-7, "maxiter": 3000, "initial_simplex": simplex})
        if -res.fun > best:
            best, best_theta = -res.fun, res.x
    if best_theta is None or best <= -1.0:
        raise MapError("align='correlation': no placement of the model overlaps the target by "
                       f"{min_overlap:.0%}; check that both maps are in mm, or give an initial affine.")
    return transform(best_theta), {"align_score": best, "align_matching": "max cross-correlation"}


def _grid_points(bm: Any, resolution_mm: float) -> np.ndarray:
    """Pixel centres (mm) of a grid at ``resolution_mm`` over a map's defined voxels."""
    from ..grid import Grid

    return Grid.covering(bm.finite_points(0)[0], resolution_mm).centres()
