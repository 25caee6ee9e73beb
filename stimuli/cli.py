"""``cortexsim stimuli preview NAME --out grid.png``: save a contact sheet of a stimulus set."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from cortexsim.errors import CortexsimError

__all__ = ["add_parser", "run", "contact_sheet"]


def contact_sheet(stimuli, out: str, n: int = 32, nrow: int = 8) -> np.ndarray:
    """Save ``n`` evenly spaced stimuli of a set (in [0, 1], before normalisation) as a grid image.

    Returns the chosen stimulus indices.
    """
    from torchvision.utils import save_image

    idx = np.unique(np.linspace(0, len(stimuli) - 1, min(n, len(stimuli))).round().astype(int))
    save_image(stimuli.load01(idx), out, nrow=nrow, padding=2, pad_value=0.5)
    return idx


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``stimuli`` sub-command (with its ``preview`` action) to a CLI."""
    from .registry import names

    p = subparsers.add_parser("stimuli", help="inspect stimulus sets", description="Inspect stimulus sets.")
    sub = p.add_subparsers(dest="stimuli_command", required=True)
    pv = sub.add_parser(
        "preview",
        help="save a contact sheet of a stimulus set",
        description="Save a grid of evenly spaced images from a stimulus set (values in [0, 1]).",
    )
    pv.add_argument("name", help=f"stimulus set: {', '.join(names())}")
    pv.add_argument("--out", required=True, help="output image file, e.g. grid.png")
    pv.add_argument("--n", type=int, default=32, help="number of images in the grid (default 32)")
    pv.add_argument("--nrow", type=int, default=8, help="images per grid row (default 8)")
    pv.add_argument("--path", default=None, help="folder for floc / cifar10 / cifar100 / imagefolder")
    pv.add_argument("--image-size", type=int, default=None, help="image size in pixels (default: the set's)")
    pv.add_argument("--seed", type=int, default=None, help="seed for generated sets")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``cortexsim stimuli preview``; returns the exit code (2 on bad input)."""
    from .registry import get

    kwargs = {}
    if args.image_size is not None:
        kwargs["image_size"] = args.image_size
    if args.seed is not None:
        kwargs["seed"] = args.seed
    if args.n < 1:
        print("error: --n must be >= 1", file=sys.stderr)
        return 2
    try:
        s = get(args.name, path=args.path, **kwargs)
        idx = contact_sheet(s, args.out, n=args.n, nrow=args.nrow)
    except (CortexsimError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"saved {len(idx)} of {len(s)} stimuli of {args.name!r} to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m cortexsim.stimuli.cli preview ...``)."""
    parser = argparse.ArgumentParser(prog="cortexsim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
