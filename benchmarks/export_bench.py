"""Export and comparison speed on a 100k-unit map.

A TDANN-sized IT sheet: 100,000 units on a 70 × 70 mm flat sheet (jittered lattice,
0.22 mm apart) carrying a smooth selectivity map (Gaussian patches + smooth noise).
Timed, best of ``--repeat`` runs each:

* ``to_nifti`` at the unit spacing (≈ 100k voxels) with ``nearest`` / ``linear`` /
  ``gaussian`` resampling, and at 1 mm voxels (``nearest``);
* ``to_gifti`` (Delaunay mesh of 100k vertices + one map);
* ``compare_maps`` of the model map against a 2 mm NIfTI "fMRI" map of the same cortex
  (rotated 20°, shifted, noisy) with 200 surrogates: ``moran`` (default null),
  ``shuffle``, ``variogram``; without alignment and with ``align="correlation"``;
* ``voxelize`` of a 100-stimulus × 100k-unit Sheet at 2 mm with a 3.5 mm PSF.

Results go to ``benchmarks/results/export_bench_<device>_<date>.json``::

    python benchmarks/export_bench.py
    python benchmarks/export_bench.py --units 20000 --repeat 1     # quick
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage

import cortexsim as cx
from cortexsim import compare, export
from cortexsim.compare.align import Transform


def sheet_map(n_units: int, size_mm: float, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_units)))
    spacing = size_mm / side
    g = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)[:n_units] * spacing
    pos = g + rng.uniform(-spacing / 4, spacing / 4, g.shape)
    centres = rng.uniform(0.15 * size_mm, 0.85 * size_mm, size=(6, 2))
    d2 = ((pos[:, None] - centres[None]) ** 2).sum(-1)
    values = (2.5 * np.exp(-d2 / (2 * 4.0 ** 2))).sum(1)
    noise = ndimage.gaussian_filter(rng.normal(size=(200, 200)), 6.0)
    ij = np.clip((pos / size_mm * 199).astype(int), 0, 199)
    values += 0.3 * noise[ij[:, 0], ij[:, 1]] / noise.std()
    coords = {"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1]), "area": ("unit", np.full(n_units, "IT"))}
    return xr.DataArray(values, dims="unit", coords=coords, name="dprime_faces", attrs={"units": "1"})


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--size-mm", type=float, default=70.0)
    ap.add_argument("--surrogates", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    d = sheet_map(args.units, args.size_mm)
    res: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for method in ("nearest", "linear", "gaussian"):
            t, path = best(lambda: export.to_nifti(d, tmp / f"{method}.nii.gz", method=method), args.repeat)
            res[f"to_nifti_{method}_s"] = round(t, 3)
            print(f"to_nifti {method:8s} at the unit spacing: {t:7.2f} s")
        import nibabel as nib

        res["to_nifti_voxels"] = int(np.prod(nib.load(tmp / "nearest.nii.gz").shape))
        t, _ = best(lambda: export.to_nifti(d, tmp / "1mm.nii.gz", voxel_mm=1.0), args.repeat)
        res["to_nifti_nearest_1mm_s"] = round(t, 3)
        print(f"to_nifti nearest at 1 mm: {t:.2f} s ({res['to_nifti_voxels']} voxels at the unit spacing)")
        t, _ = best(lambda: export.to_gifti(d, tmp / "s.surf.gii", tmp / "s.func.gii"), args.repeat)
        res["to_gifti_s"] = round(t, 3)
        print(f"to_gifti: {t:.2f} s")

        # the "fMRI" target: the same cortex seen at 2 mm, rotated 20° and shifted, with its own noise
        planted = Transform.similarity(20.0, (5.0, -3.0))
        pos = np.c_[d.x_mm.values, d.y_mm.values]
        noisy = d.copy(data=d.values + 0.3 * np.random.default_rng(1).normal(size=d.size))
        target = noisy.assign_coords(x_mm=("unit", planted.apply(pos)[:, 0]), y_mm=("unit", planted.apply(pos)[:, 1]))
        fmri = export.to_nifti(target, tmp / "fmri.nii.gz", voxel_mm=2.0, method="gaussian", fwhm_mm=2.0)
        rows = {}
        for null in ("moran", "shuffle", "variogram"):
            t, table = best(lambda: compare.compare_maps(d, fmri, align=planted.matrix, null=null,
                                                         n_perm=args.surrogates), 1 if null == "variogram" else args.repeat)
            row = table.iloc[0]
            rows[null] = {"seconds": round(t, 3), "n_pixels": int(row.n_pixels), "resolution_mm": float(row.resolution_mm),
                          "pearson_r": float(row.pearson_r), "p_value": float(row.p_value)}
            print(f"compare_maps {null:9s} {args.surrogates} surrogates: {t:7.2f} s on {row.n_pixels} pixels "
                  f"({row.resolution_mm:.2f} mm), r = {row.pearson_r:.3f}, p = {row.p_value:.3g}")
        res["compare_maps_given_affine"] = rows
        t, table = best(lambda: compare.compare_maps(d, fmri, align="correlation", n_perm=args.surrogates), args.repeat)
        fitted = Transform(np.array(table.attrs["transform"]))
        moved = np.linalg.norm(fitted.apply(pos) - planted.apply(pos), axis=1)
        res["compare_maps_align_correlation"] = {"seconds": round(t, 3), "rotation_deg": fitted.angle_deg,
                                                 "scale": fitted.scale, "mean_displacement_mm": float(moved.mean())}
        print(f"compare_maps align=correlation + moran {args.surrogates}: {t:.2f} s; rotation {fitted.angle_deg:.2f}° "
              f"(planted 20), scale {fitted.scale:.3f}, mean displacement {moved.mean():.2f} mm")

        n_stim = 100
        resp = np.random.default_rng(2).normal(size=(n_stim, args.units)).astype(np.float32)
        ds = cx.make_sheet(resp, x_mm=pos[:, 0], y_mm=pos[:, 1], area="IT")
        t, vox = best(lambda: compare.voxelize(ds, 2.0, 3.5), args.repeat)
        res["voxelize_s"] = round(t, 3)
        res["voxelize"] = {"stimuli": n_stim, "voxel_mm": 2.0, "psf_fwhm_mm": 3.5, "voxels": int(vox.sizes["unit"])}
        print(f"voxelize {n_stim} stimuli × {args.units} units → {vox.sizes['unit']} voxels (2 mm, PSF 3.5 mm): {t:.2f} s")

    date = dt.date.today().isoformat()
    record = {"benchmark": "export_bench", "date": date, "device": "cpu",
              "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
              "n_units": args.units, "sheet_mm": args.size_mm, "surrogates": args.surrogates, "repeat": args.repeat,
              "cortexsim_version": cx.__version__, "results": res}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"export_bench_cpu_{date}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
