"""``cortexsim analyze``: run analyses on a Sheet file, write a summary JSON, per-unit maps and figures.

::

    cortexsim analyze sheet.h5 --what selectivity,preference,clustering --by domain --target faces --out results/

Writes into ``--out``:

* ``summary.json`` — per area, one entry per analysis (scalars, counts, null
  distributions) plus the parameters used and the analyses skipped (and why);
* ``units_<area>.nc`` — per-unit results (d′, t, preference, orientation ...)
  with the unit coords, readable with ``xarray.open_dataset``;
* figures ``<area>_<analysis>.png`` / ``.svg``; ``<area>_graph.graphml``.

The lead CLI imports :func:`add_parser`; :func:`main` runs the subcommand alone
(tests, ``python -m cortexsim.analysis.cli``).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CortexsimError
from .registry import analysis_names
from .report import FIGURE_FORMATS, scalars  # noqa: F401  (scalars: re-exported, used by older code)

#: Python keyword -> analyze flag, so that warnings advise what can be typed.
WARNING_FLAGS = {"undefined='raise'": "--undefined raise", "undefined='nan'": "--undefined nan",
                 "min_sd=0": "--min-sd 0", "skipna=True": "--skipna"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``analyze`` subcommand to an argparse ``subparsers`` object."""
    from ..cliutil import finite_float, nonnegative_int, positive_int
    from .selectivity import MIN_SD

    names = analysis_names()
    p = subparsers.add_parser(
        "analyze",
        help="run analyses (selectivity, maps, clustering, ...) on a Sheet file",
        description="Run analyses on a Sheet file and write summary.json, per-unit maps (units_<area>.nc) "
        "and figures (PNG + SVG) into --out. Analyses run per area.",
    )
    p.add_argument("sheet", help="Sheet file (.h5) written by `cortexsim record` or cortexsim.save_sheet")
    p.add_argument("--what", default="selectivity,preference,clustering",
                   help=f"comma-separated analyses among {', '.join(names)}, or 'all' (every analysis the "
                   f"Sheet's stimulus coords allow). Default: %(default)s")
    p.add_argument("--by", default="domain", help="stimulus coord of the categories (default: %(default)s; "
                   "`cortexsim info SHEET` lists the coords)")
    p.add_argument("--target", default=None, help="category for d′/t maps and patches (default: every category vs rest)")
    p.add_argument("--reference", default=None, help="comma-separated reference categories (default: the rest)")
    p.add_argument("--threshold", type=finite_float(), default=2.0,
                   help="d′ threshold of preference maps (default: 2, Reset)")
    p.add_argument("--min-sd", type=finite_float(0.0), default=MIN_SD,
                   help="d′/t of units whose pooled SD is below MIN_SD × the area's median are undefined "
                        "(near-constant units; default: %(default)g, 0: off)")
    p.add_argument("--skipna", action="store_true",
                   help="leave out stimuli with NaN/Inf responses instead of stopping with an error")
    p.add_argument("--patch-threshold", type=finite_float(), default=4.0,
                   help="smoothed t a patch must exceed (default: %(default)g)")
    p.add_argument("--patch-sigma-mm", type=finite_float(0.0), default=None,
                   help="Gaussian smoothing of the t map in mm (default 2.4, TDANN's, scaled down on sheets "
                        "smaller than TDANN's 70 mm VTC)")
    p.add_argument("--patch-min-area-mm2", type=finite_float(0.0), default=None,
                   help="smallest patch in mm² (default 100, TDANN's, scaled like --patch-sigma-mm)")
    p.add_argument("--numbers-by", default="numerosity", help="numeric stimulus coord for number maps/topography")
    p.add_argument("--orientation-coord", default="orientation_deg", help="stimulus coord of grating orientation")
    p.add_argument("--area", default=None, help="analyse only this area (default: every area separately)")
    p.add_argument("--n-perm", type=positive_int, default=20,
                   help="permuted maps of the clustering/topography control (default: %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the permutations")
    p.add_argument("--connectivity", type=int, choices=(4, 8), default=8,
                   help="grid adjacency of clustering components (8: what Hannagan's published numbers ran)")
    p.add_argument("--radius-mm", type=finite_float(0.0, strict=True), default=None,
                   help="neighbour radius (mm) for irregular sheets")
    p.add_argument("--k", type=positive_int, default=None, help="k nearest neighbours for irregular sheets (default 8)")
    p.add_argument("--undefined", choices=("raise", "nan"), default="nan",
                   help="d′/t of constant (dead) or near-constant units: stop with an error, or NaN (default)")
    p.add_argument("--formats", default="png,svg",
                   help=f"figure formats among {', '.join(FIGURE_FORMATS)} (default: %(default)s); '' for none")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run, warning_flags=WARNING_FLAGS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` as ``analyze`` arguments and run."""
    from ..cliutil import run_command

    parser = argparse.ArgumentParser(prog="cortexsim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["analyze", *(argv if argv is not None else sys.argv[1:])])
    return run_command(args, "cortexsim analyze")


def run(args: argparse.Namespace) -> int:
    """Run the ``analyze`` subcommand; bad input raises a CortexsimError (exit 2 through the CLI)."""
    try:
        summary = analyze(args)
    except (ValueError, KeyError) as exc:
        if isinstance(exc, CortexsimError):
            raise
        raise CortexsimError(str(exc.args[0]) if exc.args else repr(exc)) from None
    print(f"wrote {Path(args.out) / 'summary.json'} ({len(summary['figures'])} figures)")
    return 0


def analyze(args: argparse.Namespace) -> dict[str, Any]:
    """Run the analyses ``args`` asks for (:func:`cortexsim.analysis.run`); writes and returns the summary dict."""
    from .. import open_sheet
    from ..cliutil import check_output
    from ._params import RUN_PARAMS
    from .report import run as run_analyses

    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad:
        raise CortexsimError(f"--formats: unknown figure formats {bad}; choose among {', '.join(FIGURE_FORMATS)}.")
    out = check_output(args.out, "dir")
    if not [w for w in args.what.split(",") if w.strip()]:
        raise CortexsimError(f"--what is empty; choose analyses among {', '.join(analysis_names())}, or 'all'.")
    ds = open_sheet(args.sheet)
    report = run_analyses(ds, args.what, **{name: getattr(args, name) for name in RUN_PARAMS})
    for where, message in report.errors.items():
        print(f"cortexsim analyze: {where}: {message}", file=sys.stderr)
    for note in report.notes:
        print(f"cortexsim analyze: {note}", file=sys.stderr)
    summary = {"sheet": str(args.sheet), **report.summary,
               "parameters": {k: v for k, v in vars(args).items() if k not in ("func", "command")}}
    report.summary = summary
    report.save(out, formats)
    return report.summary


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
