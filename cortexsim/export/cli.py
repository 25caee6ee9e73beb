"""``cortexsim export``: per-unit maps of a Sheet or ``units_<area>.nc`` → NIfTI / GIFTI files + PNG renders.

::

    cortexsim export sheet.h5 --what dprime --by domain --target faces --area IT --format nifti,gifti --out export/
    cortexsim export analysis/units_IT.nc --what dprime,preference --out export/

Writes per area and map: ``<area>_<map>.nii.gz`` + ``.json`` sidecar (+ ``_LUT.txt``
for label maps), ``<area>.surf.gii`` + ``<area>_<map>.func.gii`` / ``.label.gii``, and
PNGs drawn with nilearn (``<area>_<map>_nifti.png``, ``<area>_<map>_gifti.png``).
Heavy imports happen inside :func:`run`, so ``cortexsim --help`` stays fast.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._argparse import DefaultsHelpFormatter

FORMATS = ("nifti", "gifti")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "export",
        help="export per-unit maps as NIfTI / GIFTI (+ PNG renders)",
        description="Export maps of a Sheet (computed on the fly) or of a units_<area>.nc written by `cortexsim analyze` "
        "as NIfTI volumes (one slice for flat sheets, sform = qform code 2, mm) and GIFTI surfaces, with JSON sidecars, "
        "label tables for categorical maps and PNGs rendered with nilearn.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("input", type=Path, help="Sheet (.h5) or per-unit netCDF (units_<area>.nc)")
    p.add_argument("--what", default="dprime",
                   help="maps, comma-separated. Sheet: dprime, t, preference, orientation. units_*.nc: its variable "
                   "names or 'all'")
    p.add_argument("--by", default="domain", help="stimulus coord of the categories (Sheet input)")
    p.add_argument("--target", default=None, help="category of the d′ / t map (default: every category, one 4-D file)")
    p.add_argument("--reference", default=None, help="comma-separated reference categories (default: the rest)")
    p.add_argument("--threshold", type=float, default=2.0, help="d′ threshold of the preference map")
    p.add_argument("--undefined", choices=("raise", "nan"), default="nan", help="d′ / t of dead units")
    p.add_argument("--area", default=None, help="export only this area (default: every area)")
    p.add_argument("--format", default="nifti,gifti", help="comma-separated among nifti, gifti")
    p.add_argument("--voxel-mm", type=float, default=None, help="NIfTI voxel size (default: the unit spacing)")
    p.add_argument("--method", choices=("nearest", "linear", "gaussian", "mean"), default="nearest",
                   help="resampling of units onto voxels")
    p.add_argument("--fwhm-mm", type=float, default=None, help="kernel FWHM of --method gaussian (default: voxel size)")
    p.add_argument("--mask", choices=("distance", "hull", "none"), default="distance", help="which voxels are on the sheet")
    p.add_argument("--split", action="store_true", help="one NIfTI per category instead of a 4-D file")
    p.add_argument("--no-png", dest="png", action="store_false", help="skip the nilearn renders")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run)
    return p


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


def run(args: argparse.Namespace) -> int:
    """Run ``cortexsim export``; returns 0 (errors are raised as CortexsimError)."""
    from ..cliutil import check_output
    from ..errors import MapError
    from ..plotting.export import render_gifti, render_nifti
    from . import gifti, nifti
    from .files import companion
    from .inputs import collect_maps
    from .sources import load_unit_maps

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = sorted(set(formats) - set(FORMATS))
    if bad or not formats:
        raise MapError(f"--format {args.format!r}: choose among {', '.join(FORMATS)}.")
    out = check_output(args.out, "dir")  # before any work: a file in the way, no permission, /proc
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    maps = load_unit_maps(args.input, what, by=args.by, target=args.target,
                          reference=args.reference.split(",") if args.reference else None, area=args.area,
                          threshold=args.threshold, undefined=args.undefined)
    mask = None if args.mask == "none" else args.mask
    written: list[Path] = []
    for area, group in maps.items():
        surf = out / f"{_safe(area)}.surf.gii"
        for name, da in group.items():
            stem = out / f"{_safe(area)}_{_safe(name)}"
            unit_maps = collect_maps(da)
            if "nifti" in formats:
                paths = nifti.to_nifti(da, f"{stem}.nii.gz", voxel_mm=args.voxel_mm,
                                       method=args.method, fwhm_mm=args.fwhm_mm, mask=mask, split=args.split)
                for p in paths if isinstance(paths, list) else [paths]:
                    written.append(p)
                    written += [c for c in (companion(p, ".json"), companion(p, "_LUT.txt")) if c.exists()]
                    if args.png:
                        written.append(render_nifti(p))
            if "gifti" in formats:
                categorical = unit_maps.categorical()[0]
                kw = {"label_path": f"{stem}.label.gii"} if categorical else {"func_path": f"{stem}.func.gii"}
                files = gifti.to_gifti(da, surf, **kw)
                written += [files[k] for k in ("func", "label") if k in files]
                if surf not in written:
                    written.append(surf)
                if args.png:
                    data = files.get("func", files.get("label"))
                    written.append(render_gifti(surf, data))
    for p in written:
        print(p)
    print(f"cortexsim export: wrote {len(written)} files into {out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cortexsim.export.cli ...``: run ``export`` alone."""
    from ..cli import main as cli_main

    return cli_main(["export", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
