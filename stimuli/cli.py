"""``cortexsim stimuli preview NAME --out grid.png``: save a contact sheet of a stimulus set."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cortexsim.errors import CortexsimError

__all__ = ["add_parser", "run", "contact_sheet"]


def contact_sheet(stimuli, out: str, n: int = 32, nrow: int = 8) -> np.ndarray:
    """Save ``n`` evenly spaced stimuli of a set (in [0, 1], before normalisation) as a grid image.

    Returns the chosen stimulus indices.
    """
    from torchvision.utils import save_image

    if n < 1 or nrow < 1:
        raise CortexsimError(f"n and nrow must be ≥ 1; got n={n}, nrow={nrow}.")
    idx = np.unique(np.linspace(0, len(stimuli) - 1, min(n, len(stimuli))).round().astype(int))
    from cortexsim.io import atomic_path

    with atomic_path(out) as tmp:  # the format comes from the target's suffix, not the temp file's
        save_image(stimuli.load01(idx), tmp, nrow=nrow, padding=2, pad_value=0.5, format=_pil_format(out))
    return idx


#: Image formats a contact sheet can be saved as (by Pillow, through torchvision.utils.save_image).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def _pil_format(path: str | Path) -> str:
    """Pillow's format name for an image file name (``grid.jpg`` -> ``JPEG``)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"jpg": "JPEG", "tif": "TIFF"}.get(suffix, suffix.upper())


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``stimuli`` sub-command (with its ``preview`` action) to a CLI."""
    from cortexsim.cliutil import positive_int

    from .registry import describe, names

    sets = "stimulus sets:\n" + describe()
    p = subparsers.add_parser("stimuli", help="inspect stimulus sets", description="Inspect stimulus sets.",
                              epilog=sets, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stimuli_command", required=True, metavar="ACTION")
    pv = sub.add_parser(
        "preview",
        help="save a contact sheet of a stimulus set",
        description="Save a grid of evenly spaced images from a stimulus set (values in [0, 1]).",
        epilog=sets, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pv.add_argument("name", help=f"stimulus set: {', '.join(names())}")
    pv.add_argument("--out", required=True, help=f"output image file, e.g. grid.png ({', '.join(IMAGE_SUFFIXES)})")
    pv.add_argument("--n", type=positive_int, default=32, help="number of images in the grid (default 32)")
    pv.add_argument("--nrow", type=positive_int, default=8, help="images per grid row (default 8)")
    pv.add_argument("--path", default=None, help="folder for floc / cifar10 / cifar100 / imagefolder")
    pv.add_argument("--image-size", type=positive_int, default=None, help="image size in pixels (default: the set's)")
    pv.add_argument("--seed", type=int, default=None, help="seed for generated sets")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``cortexsim stimuli preview``; bad input raises a CortexsimError (exit 2 through the CLI)."""
    from pathlib import Path

    from cortexsim.cliutil import check_output

    from .registry import get

    out = Path(args.out)
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise CortexsimError(f"--out {args.out!r}: unknown image type {out.suffix or '(no suffix)'!r}; "
                             f"end the name in one of {', '.join(IMAGE_SUFFIXES)}.")
    check_output(out, "file")
    kwargs = {}
    if args.image_size is not None:
        kwargs["image_size"] = args.image_size
    if args.seed is not None:
        kwargs["seed"] = args.seed
    try:
        s = get(args.name, path=args.path, **kwargs)
    except TypeError as e:  # an option this set does not take (e.g. --seed for a folder)
        raise CortexsimError(f"stimulus set {args.name!r}: {e}") from None
    idx = contact_sheet(s, str(out), n=args.n, nrow=args.nrow)
    print(f"saved {len(idx)} of {len(s)} stimuli of {args.name!r} to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m cortexsim.stimuli.cli preview ...``)."""
    from cortexsim.cliutil import run_command

    parser = argparse.ArgumentParser(prog="cortexsim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_command(args, "cortexsim stimuli")


if __name__ == "__main__":
    raise SystemExit(main())
