"""``cortexsim demo`` and ``cortexsim report``: the study's command line."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._argparse import DefaultsHelpFormatter


def add_parser(subparsers: Any) -> None:
    """Add the ``demo`` and ``report`` subcommands to an argparse ``subparsers`` object."""
    from ..cliutil import finite_float, nonnegative_int, positive_int

    p = subparsers.add_parser(
        "demo",
        help="the end-to-end study on offline data: train, record, statistics, export, compare, report.html",
        description="Train three twins of Truong & Hasson's CIFAR network on real handwritten digits (a quarter held "
        "out): weight-similarity topography (WS), activation similarity (AS) and a control; record their 11 × 11 "
        "dense layer on the held-out digits into Sheets; map digit preference and d′ with Reset's clustering index, "
        "Moran's I and smoothness against shuffled nulls; export NIfTI / GIFTI; compare WS with the control; write "
        "OUT/report.html (self-contained) and OUT/summary.json. CPU only, no downloads.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("cortexsim_demo"), help="output folder")
    p.add_argument("--quick", action="store_true", help="3 epochs and 200 permutations (about a minute; the CI test)")
    p.add_argument("--epochs", type=positive_int, default=None, help="training epochs of each model (default 30; "
                   "--quick: 3)")
    p.add_argument("--lam", type=finite_float(0.0), default=None, help="λ of the WS and AS losses (default 1, as the "
                   "reference scripts run)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the split, weights, batch order, nulls (default 0)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    p.add_argument("--only", default=None, help="rerun only these stages from the files in --out, comma-separated: "
                   "train, record, report, export, compare")
    p.set_defaults(func=_run_demo, progress=True)
    p.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                   help="no progress bars (they are shown only on a terminal anyway)")

    r = subparsers.add_parser(
        "report",
        help="report.html + summary.json from saved Sheets (statistics and figures recomputed from them alone)",
        description="Recompute the study's statistics (preference maps, clustering index, Moran's I, smoothness, each "
        "against its null) and figures from Sheets, and write OUT/report.html (figures inline, no network) and "
        "OUT/summary.json. Sections of OUT/manifest.json (commands, exported files, comparison), when present, are "
        "added.",
        formatter_class=DefaultsHelpFormatter,
    )
    r.add_argument("sheets", nargs="+", type=Path, help="Sheet files (.h5)")
    r.add_argument("--labels", default=None, help="comma-separated model labels (default: the files' stems)")
    r.add_argument("--by", default="numerosity", help="stimulus coord of the categories")
    r.add_argument("--area", default=None, help="area to map (default: each Sheet's last area)")
    r.add_argument("--n-perm", type=positive_int, default=1000, help="shuffled maps per null")
    r.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the nulls (default 0)")
    r.add_argument("--headline", default=None, help="TOPOGRAPHIC,CONTROL labels compared in summary.json")
    r.add_argument("--title", default="cortexsim study", help="page title")
    r.add_argument("--out", type=Path, required=True, help="output folder")
    r.set_defaults(func=_run_report, progress=True)
    r.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                   help="no progress bars")


def _run_demo(args: argparse.Namespace) -> int:
    from ..cliutil import check_device, check_output

    check_output(args.out, "dir")
    check_device(args.device)
    from .demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed, epochs=args.epochs, lam=args.lam, device=args.device,
             only=args.only, progress=args.progress)
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from ..cliutil import check_output
    from ..errors import CortexsimError

    check_output(args.out, "dir")
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else [p.stem for p in args.sheets]
    if len(labels) != len(args.sheets) or len(set(labels)) != len(labels):
        raise CortexsimError(f"--labels needs one distinct label per Sheet ({len(args.sheets)}); got {labels}.")
    missing = [str(p) for p in args.sheets if not p.is_file()]
    if missing:
        raise CortexsimError(f"no Sheet file {missing}.")
    headline = None
    if args.headline:
        headline = tuple(s.strip() for s in args.headline.split(","))
        if len(headline) != 2 or not set(headline) <= set(labels):
            raise CortexsimError(f"--headline needs two of the labels {labels}; got {args.headline!r}.")
    from .report import write_report

    summary = write_report(dict(zip(labels, args.sheets)), args.out, by=args.by, area=args.area, n_perm=args.n_perm,
                           seed=args.seed, title=args.title, headline=headline, progress=args.progress)
    print(f"wrote {args.out / 'report.html'} and {args.out / 'summary.json'} ({len(summary['models'])} models)")
    return 0
