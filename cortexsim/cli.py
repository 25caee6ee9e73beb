"""``cortexsim`` command line: demo | record | info | train | analyze | stimuli | export | compare | brainscore.

Each sub-package contributes its own sub-command through an ``add_parser``
function, so this file only wires them together; the helpers they share (argparse
types, output checks, :func:`run_command`) are in :mod:`cortexsim.cliutil`. Nothing
heavy (torch, matplotlib) is imported until a command runs.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cliutil import (  # noqa: F401 - re-exported: sub-commands and tests import them from here
    check_device,
    check_output,
    finite_float,
    int_at_least,
    nonnegative_int,
    one_line,
    parse_mapping,
    positive_int,
    run_command,
)
from .errors import CortexsimError

# (module, attribute) of each sub-package's `add_parser(subparsers)`.
_PLUGINS = (
    ("cortexsim.adapters.cli", "add_parser"),
    ("cortexsim.analysis.cli", "add_parser"),
    ("cortexsim.stimuli.cli", "add_parser"),
    ("cortexsim.export.cli", "add_parser"),
    ("cortexsim.compare.cli", "add_parser"),
    ("cortexsim.brainscore.cli", "add_parser"),
)


# ---------------------------------------------------------------------- demo, report
def _add_demo(sub: argparse._SubParsersAction) -> None:
    """``demo`` and ``report`` live with the study they run (:mod:`cortexsim.study.cli`)."""
    from .study.cli import add_parser

    add_parser(sub)


# ---------------------------------------------------------------------- record
def _add_record(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="record a model's areas on a stimulus set into a Sheet (HDF5)",
        description="Record responses of chosen layers to stimuli, with unit positions, into a Sheet file. "
        "With --run, the run's trained network, positions, image size and input normalisation are used.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="torchvision model name, e.g. resnet18 (built with weights=None)")
    src.add_argument("--run", type=Path, help="a `cortexsim train` run folder (model + trained positions)")
    p.add_argument("--weights", type=Path,
                   help="state_dict file for --model (torch.save(model.state_dict()); loaded with weights_only=True)")
    p.add_argument("--num-classes", type=positive_int, default=1000, help="classifier size of --model (default 1000)")
    p.add_argument("--areas", type=lambda s: parse_mapping(s, "--areas"),
                   help="AREA=MODULE,... e.g. V1=layer2.0,IT=layer4.1 (default with --run: the run's areas)")
    p.add_argument("--layout", default="retinotopic", help="layout name, or AREA=LAYOUT,... (default retinotopic)")
    p.add_argument("--stimuli", required=True,
                   help="stimulus set name (see `cortexsim stimuli --help`), an image folder, or a .npy "
                        "N×C×H×W float array")
    p.add_argument("--stimuli-path", type=Path, help="data folder for sets read from disk (floc, cifar10, ...)")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="stimulus size in pixels for generated/loaded sets (default 224; with --run the run's)")
    p.add_argument("--normalize", choices=["none", "imagenet"], default=None,
                   help="input normalisation applied on the device (default none — cortexsim runs train on "
                        "[0, 1] images; use imagenet for torchvision-pretrained weights; with --run the run's)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="stimuli per forward pass (default 64)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    p.add_argument("--compression", choices=["lzf", "gzip", "none"], default="lzf",
                   help="HDF5 filter (default lzf; gzip for netCDF-C tools)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is shown only on a terminal anyway)")
    p.add_argument("--out", type=Path, required=True, help="Sheet file to write (.h5)")
    p.set_defaults(func=_run_record)


def _load_stimuli(args: argparse.Namespace):
    import numpy as np
    import torch

    from .errors import StimulusError

    target = Path(args.stimuli)
    if target.suffix == ".npy":
        if not target.is_file():
            raise StimulusError(f"no stimulus array at {str(target)!r}.")
        try:
            array = np.load(target, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise StimulusError(f"cannot read {str(target)!r} as a NumPy array ({one_line(exc)}); save the stimuli "
                                f"with np.save(path, x) where x is a float N×C×H×W array.") from None
        return torch.from_numpy(array)
    from . import stimuli as stim

    if target.is_dir():
        return stim.imagefolder(target, image_size=args.image_size)
    kwargs = {"image_size": args.image_size}
    if args.stimuli_path is not None:
        kwargs["path"] = args.stimuli_path
    return stim.get(args.stimuli, **kwargs)


#: torchvision classifiers compared with a state dict that does not fit --model (cheap: built on the meta device).
_KNOWN_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "alexnet", "vgg11", "vgg13", "vgg16",
                "vgg19", "vgg11_bn", "vgg16_bn", "densenet121", "mobilenet_v2", "mobilenet_v3_small",
                "efficientnet_b0", "squeezenet1_0", "googlenet", "convnext_tiny", "vit_b_16", "regnet_y_400mf")


def _looks_like(keys: set[str]) -> str | None:
    """The torchvision architecture whose state-dict keys are exactly ``keys``, if any."""
    import torch
    import torchvision

    for name in _KNOWN_ARCHS:
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torchvision.models.get_model(name, weights=None)
        except Exception:  # noqa: BLE001 - an optional guess; a model that cannot be built is skipped
            continue
        if set(model.state_dict()) == keys:
            return name
    return None


def load_weights(model: Any, path: Path, model_name: str, num_classes: int) -> None:
    """Load a state-dict file into ``model`` with one-line errors for every way it can be wrong."""
    import pickle

    import torch

    if not path.exists():
        raise CortexsimError(f"--weights {str(path)!r} does not exist.")
    if path.is_dir():
        raise CortexsimError(f"--weights {str(path)!r} is a folder; give the state-dict file (for a `cortexsim "
                             f"train` run folder use --run {str(path)!r}).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as exc:
        first = one_line(exc).split(". ")[0][:200]
        raise CortexsimError(
            f"--weights {str(path)!r} is not a loadable state dict ({first}). cortexsim loads weights with "
            f"torch.load(weights_only=True), which refuses pickled objects such as a whole nn.Module; save "
            f"torch.save(model.state_dict(), path) instead.") from None
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kind = type(state).__name__ if not isinstance(state, dict) else "a dict without tensors"
        raise CortexsimError(f"--weights {str(path)!r} holds {kind}, not a state dict (a dict of tensors, "
                             f"as model.state_dict() gives).")
    if all(k.startswith("net.") for k in state) and not any(k.startswith("net.") for k in model.state_dict()):
        raise CortexsimError(f"--weights {str(path)!r} looks like a cortexsim training run's model.pt; record it "
                             f"with --run RUN_DIR (the run's network and positions) instead of --model.")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        guess = _looks_like(set(state))
        raise CortexsimError(
            f"--weights {str(path)!r} does not fit --model {model_name}: "
            + (f"missing {missing[:3]}{' and more' if len(missing) > 3 else ''}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected {unexpected[:3]}{' and more' if len(unexpected) > 3 else ''}" if unexpected else "")
            + (f". Its keys are those of torchvision's {guess}: pass --model {guess}." if guess
               else ". Pass the --model these weights belong to."))
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items() if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        k, theirs, ours = wrong[0]
        hint = (f"; pass --num-classes {theirs[0]}" if len(theirs) >= 1 and theirs[1:] == ours[1:]
                and theirs[0] != num_classes and len(wrong) <= 2 else "")
        raise CortexsimError(f"--weights {str(path)!r} does not fit --model {model_name} --num-classes {num_classes}: "
                             f"{k} has shape {theirs} in the file but {ours} in the model{hint}.")
    model.load_state_dict(state)


def _load_model(args: argparse.Namespace):
    import torchvision

    if args.run is not None:
        from .adapters.trainer import load_trained

        net = load_trained(args.run)
        return net, dict(args.areas or net.areas), net.placements, args.run.name
    if not args.areas:
        raise CortexsimError("--areas is required with --model, e.g. --areas V1=layer2.0,IT=layer4.1")
    try:
        model = torchvision.models.get_model(args.model, weights=None, num_classes=args.num_classes)
    except (ValueError, TypeError) as exc:
        raise CortexsimError(f"unknown torchvision model {args.model!r}: {one_line(exc)}") from exc
    if args.weights is not None:
        load_weights(model, args.weights, args.model, args.num_classes)
    return model, args.areas, None, args.model


def _run_defaults(args: argparse.Namespace) -> None:
    """--image-size / --normalize: the run's own (with --run), else 224 px / none; says which it used."""
    run_cfg: dict[str, Any] = {}
    if args.run is not None:
        from .adapters.trainer import _read_config

        if not (Path(args.run) / "config.json").is_file():
            raise CortexsimError(f"--run {str(args.run)!r} has no config.json; give a `cortexsim train` run folder.")
        run_cfg = _read_config(args.run)["build"]
    if args.image_size is None:
        args.image_size = int(run_cfg.get("image_size") or 224)
        if run_cfg:
            print(f"recording at the run's image size, {args.image_size} px (--image-size to change)")
    if args.normalize is None:
        args.normalize = str(run_cfg.get("normalize", "none"))


def _run_record(args: argparse.Namespace) -> int:
    if args.weights is not None and args.run is not None:
        raise CortexsimError("--weights goes with --model; a --run folder has its own weights (model.pt).")
    check_output(args.out, "file")
    check_device(args.device)
    _run_defaults(args)
    import torch

    from .recording import SimulatedCortex

    model, areas, placements, name = _load_model(args)
    layout = parse_mapping(args.layout, "--layout") if "=" in args.layout else args.layout
    preprocess = None
    if args.normalize == "imagenet":
        mean = torch.tensor([0.485, 0.456, 0.406], device=args.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=args.device).view(1, 3, 1, 1)
        preprocess = lambda x: (x - mean) / std  # noqa: E731
    attrs = {"normalize": args.normalize}
    if args.weights is not None:
        attrs["checkpoint_sha256"] = _sha256(args.weights)
    cortex = SimulatedCortex(model, areas, layout, placements=placements, model_name=name)
    stimuli = _load_stimuli(args)
    try:
        ds = cortex.record(
            stimuli, batch_size=args.batch_size, device=args.device, amp=args.amp, out=args.out,
            compression=None if args.compression == "none" else args.compression, preprocess=preprocess,
            attrs=attrs, progress=args.progress,
        )
    except RuntimeError as exc:  # the model itself failed on these inputs (too small, wrong channels, ...)
        raise CortexsimError(f"the model failed on the stimuli: {one_line(exc)[:300]}") from None
    print(f"wrote {args.out}: {ds.sizes['stimulus']} stimuli × {ds.sizes['unit']} units")
    return 0


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------- info
def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise a Sheet file", description="Print areas, units, stimuli and attributes of a Sheet file.")
    p.add_argument("sheet", type=Path, help="Sheet file (.h5)")
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


# ---------------------------------------------------------------------- the parser
def build_parser() -> argparse.ArgumentParser:
    """The full ``cortexsim`` parser with every available sub-command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cortexsim",
        description="Simulated cortical sheets for topographic deep networks.",
        epilog="`cortexsim COMMAND --help` documents each command's options.",
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
    if list(argv if argv is not None else sys.argv[1:]) == ["--version"]:
        from . import __version__  # answered before the sub-commands' parsers are built

        print(f"cortexsim {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return run_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
