"""``cortexsim`` command line: demo | record | info | train | analyze | stimuli.

Each sub-package contributes its own sub-command through an ``add_parser``
function, so this file only wires them together.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import CortexsimError

# (module, attribute) of each sub-package's `add_parser(subparsers)`.
_PLUGINS = (
    ("cortexsim.adapters.cli", "add_parser"),
    ("cortexsim.analysis.cli", "add_parser"),
    ("cortexsim.stimuli.cli", "add_parser"),
    ("cortexsim.export.cli", "add_parser"),
    ("cortexsim.compare.cli", "add_parser"),
)


def parse_mapping(text: str, what: str) -> dict[str, str]:
    """Parse ``"V1=layer2.0,IT=layer4.1"`` into ``{"V1": "layer2.0", "IT": "layer4.1"}``."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise argparse.ArgumentTypeError(f"{what} must look like AREA=NAME[,AREA=NAME]; got {item!r}.")
        out[key.strip()] = value.strip()
    if not out:
        raise argparse.ArgumentTypeError(f"{what} is empty.")
    return out


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the end-to-end demo on embedded data (no downloads)",
        description="Train a baseline and a TDANN ResNet-18 on offline faces vs non-faces (TDANN positions "
        "swap-optimised on the baseline), record both on an offline category localiser, write the Sheets "
        "(HDF5) and their IT d′ face-selectivity maps (PNG) with Moran's I, and print where everything is.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("cortexsim_demo"), help="output folder")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--image-size", type=int, default=32, help="image size in pixels")
    p.add_argument("--train-steps", type=int, default=150, help="training steps of each network (>= 1)")
    p.add_argument("--swap-rounds", type=int, default=1000, help="swap-optimisation rounds per TDANN layer (0: off)")
    p.add_argument("--lam", type=float, default=0.25, help="TDANN spatial-loss weight α per layer")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, device=args.device, image_size=args.image_size, train_steps=args.train_steps,
             swap_rounds=args.swap_rounds, lam=args.lam, seed=args.seed)
    return 0


def _add_record(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="record a model's areas on a stimulus set into a Sheet (HDF5)",
        description="Record responses of chosen layers to stimuli, with unit positions, into a Sheet file.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="torchvision model name, e.g. resnet18 (built with weights=None)")
    src.add_argument("--run", type=Path, help="a `cortexsim train` run folder (model + trained positions)")
    p.add_argument("--weights", type=Path, help="state_dict file for --model (loaded with weights_only=True)")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier size of --model (default 1000)")
    p.add_argument("--areas", type=lambda s: parse_mapping(s, "--areas"), help="AREA=MODULE,... e.g. V1=layer2.0,IT=layer4.1")
    p.add_argument("--layout", default="retinotopic", help="layout name, or AREA=LAYOUT,... (default retinotopic)")
    p.add_argument("--stimuli", required=True, help="stimulus set name (see `cortexsim stimuli --help`), an image folder, or a .npy N×C×H×W float array")
    p.add_argument("--stimuli-path", type=Path, help="data folder for sets read from disk (floc, cifar10, ...)")
    p.add_argument("--image-size", type=int, default=224, help="stimulus size in pixels for generated/loaded sets")
    p.add_argument("--normalize", choices=["none", "imagenet"], default="none", help="input normalisation applied on the device")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    p.add_argument("--compression", choices=["lzf", "gzip", "none"], default="lzf", help="HDF5 filter (gzip for netCDF-C tools)")
    p.add_argument("--out", type=Path, required=True, help="Sheet file to write (.h5)")
    p.set_defaults(func=_run_record)


def _load_stimuli(args: argparse.Namespace):
    import numpy as np
    import torch

    from .errors import StimulusError

    target = Path(args.stimuli)
    if target.suffix == ".npy":
        if not target.exists():
            raise StimulusError(f"no stimulus array at {str(target)!r}.")
        return torch.from_numpy(np.load(target, allow_pickle=False))
    from . import stimuli as stim

    if target.is_dir():
        return stim.imagefolder(target, image_size=args.image_size)
    kwargs = {"image_size": args.image_size}
    if args.stimuli_path is not None:
        kwargs["path"] = args.stimuli_path
    return stim.get(args.stimuli, **kwargs)


def _load_model(args: argparse.Namespace):
    import torch
    import torchvision

    if args.run is not None:
        from .adapters.trainer import load_trained

        net = load_trained(args.run)
        return net, dict(args.areas or net.areas), net.placements, args.run.name
    if not args.areas:
        raise CortexsimError("--areas is required with --model, e.g. --areas V1=layer2.0,IT=layer4.1")
    try:
        model = torchvision.models.get_model(args.model, weights=None, num_classes=args.num_classes)
    except ValueError as exc:
        raise CortexsimError(f"unknown torchvision model {args.model!r}: {exc}") from exc
    if args.weights is not None:
        state = torch.load(args.weights, map_location="cpu", weights_only=True)
        for key in ("model", "state_dict"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
        model.load_state_dict(state)
    return model, args.areas, None, args.model


def _run_record(args: argparse.Namespace) -> int:
    import torch

    from .recording import SimulatedCortex

    model, areas, placements, name = _load_model(args)
    layout = parse_mapping(args.layout, "--layout") if "=" in args.layout else args.layout
    preprocess = None
    if args.normalize == "imagenet":
        mean = torch.tensor([0.485, 0.456, 0.406], device=args.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=args.device).view(1, 3, 1, 1)
        preprocess = lambda x: (x - mean) / std  # noqa: E731
    attrs = {}
    if args.weights is not None:
        attrs["checkpoint_sha256"] = _sha256(args.weights)
    cortex = SimulatedCortex(model, areas, layout, placements=placements, model_name=name)
    ds = cortex.record(
        _load_stimuli(args), batch_size=args.batch_size, device=args.device, amp=args.amp, out=args.out,
        compression=None if args.compression == "none" else args.compression, preprocess=preprocess, attrs=attrs,
    )
    print(f"wrote {args.out}: {ds.sizes['stimulus']} stimuli × {ds.sizes['unit']} units")
    return 0


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise a Sheet file", description="Print areas, units, stimuli and attributes of a Sheet file.")
    p.add_argument("sheet", type=Path)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run_info)


def sheet_summary(ds) -> dict:
    """Areas (units, layer, layout, extent in mm), stimuli and their coords, attrs of a Sheet."""
    import numpy as np

    layouts = json.loads(ds.attrs.get("layout", "{}")) if isinstance(ds.attrs.get("layout"), str) else {}
    areas = {}
    for area in ds.cortex.areas:
        sub = ds.cortex.area(area)
        pos = sub.cortex.positions
        areas[area] = {
            "units": int(sub.sizes["unit"]),
            "layer": str(sub.layer.values[0]),
            "layout": layouts.get(area, "unknown") if isinstance(layouts, dict) else "unknown",
            "extent_mm": [float(v) for v in np.ptp(pos, axis=0)],
        }
    stim_coords = {}
    for name, coord in ds.coords.items():
        if coord.dims == ("stimulus",) and name != "stimulus_id":
            values = np.unique(np.asarray(coord.values).astype(str))
            stim_coords[name] = values[:10].tolist() + (["…"] if len(values) > 10 else [])
    return {
        "stimuli": int(ds.sizes["stimulus"]),
        "units": int(ds.sizes["unit"]),
        "dtype": str(ds.responses.dtype),
        "areas": areas,
        "stimulus_coords": stim_coords,
        "attrs": {k: str(v) for k, v in ds.attrs.items()},
    }


def _run_info(args: argparse.Namespace) -> int:
    from .io import open_sheet

    summary = sheet_summary(open_sheet(args.sheet))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.sheet}: {summary['stimuli']} stimuli × {summary['units']} units ({summary['dtype']})")
    for area, a in summary["areas"].items():
        extent = " × ".join(f"{e:.1f}" for e in a["extent_mm"])
        print(f"  area {area:<6} {a['units']:>9} units  layer {a['layer']:<14} layout {a['layout']:<12} {extent} mm")
    for name, values in summary["stimulus_coords"].items():
        print(f"  stimulus coord {name}: {', '.join(map(str, values))}")
    for key in ("model", "cortexsim_version", "created"):
        if key in summary["attrs"]:
            print(f"  {key}: {summary['attrs'][key]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full ``cortexsim`` parser with every available sub-command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cortexsim",
        description="Simulated cortical sheets for topographic deep networks.",
    )
    parser.add_argument("--version", action="version", version=f"cortexsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub)
    _add_record(sub)
    _add_info(sub)
    for module, attr in _PLUGINS:
        try:
            getattr(importlib.import_module(module), attr)(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real missing dependency must surface
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cortexsim`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except CortexsimError as exc:
        print(f"cortexsim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
