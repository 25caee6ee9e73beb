"""``cortexsim compare MODEL_MAP TARGET_MAP --out DIR``: model map vs brain map, table + figure.

::

    cortexsim compare sheet.h5 ffa_tmap.nii.gz --what dprime --target faces --area IT --align correlation --out cmp/
    cortexsim compare analysis/units_IT.nc lh.faces.func.gii --target-surface lh.flat.surf.gii --out cmp/

MODEL_MAP and TARGET_MAP are each a Sheet (maps computed as ``cortexsim export`` does),
a ``units_<area>.nc`` from ``cortexsim analyze``, a NIfTI, a GIFTI data file (with its
surface) or a NumPy ``.npz``. Writes ``comparison.csv``, ``comparison.json`` and
``comparison.png`` into DIR and prints the table.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._argparse import DefaultsHelpFormatter


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "compare",
        help="compare a model map with a brain map (correlation under a spatial null, Dice, patches, RSA)",
        description="Compare a model map with a target map on a common mm grid: Pearson / Spearman r with a p-value "
        "under a spatial-autocorrelation-preserving null (Moran spectral randomisation by default), Dice / Jaccard of "
        "thresholded patches, patch counts, areas and centroid distances, RSA across categories; optional alignment. "
        "Writes comparison.csv / .json / .png.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("model_map", type=Path, help="Sheet (.h5), units_<area>.nc, .nii[.gz], .func.gii or .npz")
    p.add_argument("target_map", type=Path, help="the brain map: .nii[.gz], .func.gii (+ --target-surface), .npz, or "
                   "a Sheet / units_<area>.nc")
    p.add_argument("--what", default="dprime", help="map of a Sheet / variables of a units_*.nc (model side)")
    p.add_argument("--by", default="domain", help="stimulus coord of the categories (Sheet input)")
    p.add_argument("--target", dest="category", default=None,
                   help="category of the d′ / t map (default: every category, paired with the target by name); also "
                        "used for a Sheet / units TARGET_MAP")
    p.add_argument("--area", default=None, help="model area (needed when the file has several)")
    p.add_argument("--target-what", default=None, help="like --what, when TARGET_MAP is a Sheet / units file (default: --what)")
    p.add_argument("--target-area", default=None, help="like --area, for a Sheet / units TARGET_MAP (default: --area)")
    p.add_argument("--target-surface", type=Path, default=None, help="the .surf.gii of a GIFTI TARGET_MAP")
    p.add_argument("--target-positions", type=Path, default=None, help="positions (n, 2 | 3) mm .npy of a .npy TARGET_MAP")
    p.add_argument("--target-affine", type=Path, default=None,
                   help="4×4 voxel → mm affine (.npy or text) for a NIfTI without a usable sform/qform")
    p.add_argument("--align", default="none", help="none, patches, correlation, or a .npy / text file with a 4×4 "
                   "(3×3 flat) affine model mm → target mm")
    p.add_argument("--rigid", action="store_true", help="fit rotation + shift only (no scale)")
    p.add_argument("--null", choices=("moran", "variogram", "shuffle"), default="moran",
                   help="null model of the p-value; 'shuffle' ignores spatial autocorrelation (too small p)")
    p.add_argument("--n-perm", type=int, default=1000, help="surrogates")
    p.add_argument("--alternative", choices=("two-sided", "greater", "less"), default="two-sided")
    p.add_argument("--threshold", default="otsu", help="patch threshold: a number, MODEL,TARGET, or otsu")
    p.add_argument("--min-patch-mm2", type=float, default=None, help="smallest patch (default: 4 pixels)")
    p.add_argument("--resolution-mm", type=float, default=None, help="common grid pixel (default: the coarser spacing)")
    p.add_argument("--max-pixels", type=int, default=3000, help="largest sheet in pixels (the null's n × n matrix)")
    p.add_argument("--match", default=None, help="pairs MODEL=TARGET,... of map names (default: by name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run)
    return p


def _matrix(path: Path, what: str):
    import numpy as np

    from ..errors import MapError

    if not path.exists():
        raise MapError(f"{what}: no file {str(path)!r}.")
    try:
        m = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path)
    except (OSError, ValueError) as exc:
        raise MapError(f"{what} {path}: not a .npy or whitespace-separated text matrix ({exc}).") from exc
    return m


def _threshold(text: str) -> Any:
    from ..errors import MapError

    if text == "otsu":
        return None
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        raise MapError(f"--threshold {text!r}: give a number, MODEL,TARGET numbers, or otsu.") from None
    if len(parts) not in (1, 2):
        raise MapError(f"--threshold {text!r}: give a number, MODEL,TARGET numbers, or otsu.")
    return parts[0] if len(parts) == 1 else tuple(parts)


def run(args: argparse.Namespace) -> int:
    """Run ``cortexsim compare``; returns 0 (errors are raised as CortexsimError)."""
    import warnings

    import pandas as pd

    from ..cli import parse_mapping
    from ..cliutil import check_output
    from ..plotting.compare import plot_comparison
    from .maps import compare_maps, save_table
    from .targets import load_map

    out = check_output(args.out, "dir")  # before any work: a file in the way, no permission, /proc
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    model = load_map(args.model_map, area=args.area, what=what, by=args.by, target=args.category)
    # A Sheet / units target is read like the model side unless --target-* says otherwise, so that
    # `compare model.h5 baseline.h5 --area IT --target faces` pairs IT's d′(faces) maps by name.
    tkw: dict[str, Any] = {"surface": args.target_surface, "area": args.target_area or args.area, "by": args.by,
                           "target": args.category,
                           "what": [w.strip() for w in (args.target_what or args.what).split(",") if w.strip()]}
    if args.target_positions is not None:
        tkw["positions"] = str(args.target_positions)
    if args.target_affine is not None:
        tkw["affine"] = _matrix(args.target_affine, "--target-affine")
    if not str(args.target_map).lower().endswith((".nc", ".h5", ".hdf5")):
        for key in ("by", "area", "target", "what"):
            tkw.pop(key)
    target = load_map(args.target_map, **{k: v for k, v in tkw.items() if v is not None})
    align: Any = args.align
    if align not in ("none", "patches", "correlation"):
        align = _matrix(Path(align), "--align")
    match = parse_mapping(args.match, "--match") if args.match else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        table = compare_maps(model, target, align=align, scale=not args.rigid, resolution_mm=args.resolution_mm,
                             max_pixels=args.max_pixels, threshold=_threshold(args.threshold),
                             min_patch_mm2=args.min_patch_mm2, null=args.null, n_perm=args.n_perm,
                             alternative=args.alternative, match=match, seed=args.seed)
    for w in caught:
        print(f"cortexsim compare: {w.message}", file=sys.stderr)
    written = save_table(table, out / "comparison")
    written.append(out / "comparison.png")
    plot_comparison(table, written[-1])
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(table.T.to_string(header=False) if len(table) == 1 else table.to_string(index=False))
    for p in written:
        print(p, file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cortexsim.compare.cli ...``: run ``compare`` alone."""
    from ..cli import main as cli_main

    return cli_main(["compare", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
