"""``cortexsim brainscore setup | plugin | score | tissue``: Brain-Score for cortexsim models and Sheets.

::

    cortexsim brainscore setup                                   # once: the separate Brain-Score environment
    cortexsim brainscore plugin runs/tdann --id my-tdann --out submission --check
    cortexsim brainscore score sheet.h5 neural.nc --metric pls,ridge --region IT
    cortexsim brainscore tissue sheet.h5 neural.nc --region IT
    cortexsim brainscore tissue neural.nc --benchmark-out submission --id lab.IT-tissue --stimuli images/

``plugin`` writes ``OUT/models/<id>/`` for a Brain-Score submission; ``score`` runs
Brain-Score's own metrics offline; ``tissue`` compares correlation-vs-distance
curves (no Brain-Score needed) or writes that benchmark as plugin folders.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .._argparse import DefaultsHelpFormatter

_IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``brainscore`` command (with setup / plugin / score / tissue) to an argparse ``subparsers``."""
    p = subparsers.add_parser(
        "brainscore", help="Brain-Score: submission plugins, Brain-Score metrics on Sheets, tissue correlation",
        description="Brain-Score (brainscore-vision 2.4.2) in a separate environment: model plugins for submission, "
        "its metrics on Sheets (offline, network-isolated), and a topographic tissue-correlation benchmark.",
        formatter_class=DefaultsHelpFormatter)
    sub = p.add_subparsers(dest="brainscore_command", metavar="{setup,plugin,score,tissue}")
    p.set_defaults(func=lambda _args: p.print_help() or 2)

    s = sub.add_parser("setup", help="create (once) the Brain-Score environment", formatter_class=DefaultsHelpFormatter,
                       description="Create the separate virtual environment with brainscore-vision 2.4.2 and torch "
                       "(≈ 4 min and 6.5 GB the first time; reused afterwards).")
    s.add_argument("--venv", type=Path, default=None, help="where (default: $CORTEXSIM_BRAINSCORE_VENV or "
                   "~/.cache/cortexsim/brainscore-2.4.2)")
    s.add_argument("--python", default=None, help="Python ≥ 3.11 to build it from (default: this one's base)")
    s.add_argument("--force", action="store_true", help="delete and rebuild it")
    s.set_defaults(func=_setup)

    g = sub.add_parser("plugin", help="write a Brain-Score model plugin folder", formatter_class=DefaultsHelpFormatter,
                       description="Write OUT/models/<id>/ (__init__.py registering a ModelCommitment with an explicit "
                       "region→layer map, self-contained model.py, test.py, requirements.txt, region_layer_map/<id>.json, "
                       "weights, unit positions as tissue_x/tissue_y).")
    g.add_argument("source", type=Path, help="run folder (config.json + model.pt) or a weights file in one")
    g.add_argument("--id", dest="identifier", required=True, help="Brain-Score model identifier")
    g.add_argument("--out", type=Path, required=True, help="folder receiving models/<id>/")
    g.add_argument("--map", dest="regions", default=None, help="REGION=LAYER[,...] added to the areas named "
                   "V1/V2/V4/IT (LAYER: a module name or an area)")
    g.add_argument("--image-size", type=int, default=None, help="input side in pixels (default: the run's)")
    g.add_argument("--layout", default="retinotopic", help="layout of mapped layers without trained positions")
    g.add_argument("--visual-degrees", type=float, default=8.0, help="field of view the images are shown in")
    g.add_argument("--weights-url", default=None, help="host the weights there (for plugins over 50 MB)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing plugin folder")
    g.add_argument("--check", action="store_true", help="then build it in the Brain-Score environment and run its "
                   "test.py there (offline)")
    _env_args(g)
    g.set_defaults(func=_plugin)

    c = sub.add_parser("score", help="Brain-Score metrics of a Sheet vs neural data", formatter_class=DefaultsHelpFormatter,
                       description="Run Brain-Score's own metrics (and its internal-consistency ceiling when the data "
                       "have repetitions) on a Sheet area vs neural data, offline in the Brain-Score environment.")
    c.add_argument("sheet", type=Path, help="Sheet file (.h5)")
    c.add_argument("neural", type=Path, help="neural data: .nc / .h5 (DataArray with stimulus_id, neuroid_id[, "
                   "repetition]) or .npz")
    c.add_argument("--metric", default="pls", help="metric(s), comma-separated: pls, ridge, linear_predictivity, "
                   "neuron_to_neuron, reverse_pls, rdm, rdm_cv, cka, cka_cv")
    c.add_argument("--region", default=None, help="V1, V2, V4 or IT (default: the data's region coord)")
    c.add_argument("--area", default=None, help="Sheet area to score (default: the one named like --region)")
    c.add_argument("--stratify", default="auto", help="cross-validation stratification coord, 'auto' or 'none'")
    c.add_argument("--splits", type=int, default=10, help="cross-validation splits")
    red = c.add_mutually_exclusive_group()
    red.add_argument("--pca", type=int, default=None, help="reduce the model units to N principal components first")
    red.add_argument("--max-units", type=int, default=None, help="score a random subset of N units")
    c.add_argument("--no-ceiling", action="store_true", help="skip the ceiling")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    _env_args(c)
    c.set_defaults(func=_score)

    t = sub.add_parser("tissue", help="tissue correlation: correlation vs cortical distance (no Brain-Score needed)",
                       formatter_class=DefaultsHelpFormatter,
                       description="Compare the Sheet's pairwise response correlation as a function of distance with "
                       "the neural data's (sites with tissue_x/tissue_y in mm): mean over distance bins of 1 − KS "
                       "statistic, in [0, 1], with a split-half ceiling. With --benchmark-out, write it as Brain-Score "
                       "benchmark + metric plugin folders instead (then give NEURAL only).")
    t.add_argument("inputs", nargs="+", type=Path, metavar="[SHEET] NEURAL", help="Sheet and neural data")
    t.add_argument("--region", default=None)
    t.add_argument("--area", default=None)
    t.add_argument("--bins", default=None, help="distance bin edges in mm, comma-separated (default: --n-bins "
                   "equal bins up to the largest site distance)")
    t.add_argument("--n-bins", type=int, default=10)
    t.add_argument("--max-pairs", type=int, default=200_000, help="pairs sampled per side")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", type=Path, default=None, help="also write the result (curves per bin) as JSON")
    t.add_argument("--benchmark-out", type=Path, default=None, help="write benchmarks/<id>/ and metrics/<id>/ here")
    t.add_argument("--id", dest="identifier", default=None, help="benchmark identifier (with --benchmark-out)")
    t.add_argument("--stimuli", type=Path, default=None, help="folder of the images (file stem = stimulus_id)")
    t.add_argument("--overwrite", action="store_true")
    t.set_defaults(func=_tissue)
    return p


def _env_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--venv", type=Path, default=None, help="the Brain-Score environment (default: see setup)")
    p.add_argument("--isolate", choices=("auto", "require", "off"), default=None,
                   help="network namespace for Brain-Score runs (default: $CORTEXSIM_BRAINSCORE_ISOLATION or auto)")


def _setup(args: argparse.Namespace) -> int:
    from .env import setup_env

    env = setup_env(args.venv, python=args.python, force=args.force)
    print(f"python: {env.python}")
    return 0


def _plugin(args: argparse.Namespace) -> int:
    import warnings

    from ..cliutil import check_output, parse_mapping
    from .plugin import write_plugin

    check_output(args.out, "dir")
    try:
        regions = parse_mapping(args.regions, "--map") if args.regions else None
    except argparse.ArgumentTypeError as exc:
        from ..errors import BrainScoreError

        raise BrainScoreError(str(exc)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the size note is printed with the summary
        info = write_plugin(args.source, args.identifier, args.out, regions=regions, image_size=args.image_size,
                            layout=args.layout, visual_degrees=args.visual_degrees, weights_url=args.weights_url,
                            overwrite=args.overwrite)
    print(info)
    if args.check:
        import tempfile

        import numpy as np
        from PIL import Image

        from .lookat import look_at

        size = json.loads((info.folder / "cortexsim.json").read_text())["image_size"]
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for k in range(2):
                paths.append(Path(tmp) / f"check{k}.png")
                Image.fromarray(np.random.default_rng(k).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(paths[-1])
            acts, meta = look_at(info.folder, paths, run_plugin_tests=True, venv=args.venv, isolate=args.isolate)
        for region, act in acts.items():
            print(f"  Brain-Score look_at {region}: {act.shape[0]} images × {act.shape[1]} neuroids, tissue_x/y "
                  f"{'present' if 'tissue_x' in act.coords else 'MISSING'}")
        failed = {k: v for k, v in meta.get("tests", {}).items() if v != "passed"}
        print(f"  test.py: {len(meta.get('tests', {})) - len(failed)} passed" + (f", failed: {failed}" if failed else ""))
        return 1 if failed else 0
    return 0


def _score(args: argparse.Namespace) -> int:
    from ..cliutil import check_output
    from .score import score

    if args.json is not None:
        check_output(args.json)
    strat = None if args.stratify.lower() == "none" else args.stratify
    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    results = score(args.sheet, args.neural, metrics, region=args.region, area=args.area, stratification_coord=strat,
                    n_components=args.pca, max_units=args.max_units, splits=args.splits, ceiling=not args.no_ceiling,
                    seed=args.seed, venv=args.venv, isolate=args.isolate)
    for r in results.values():
        print(r)
    if args.json is not None:
        _write_json(args.json, {k: v.as_dict() for k, v in results.items()})
    return 0


def _tissue(args: argparse.Namespace) -> int:
    from ..cliutil import check_output
    from ..errors import BrainScoreError

    bins = [float(v) for v in args.bins.split(",")] if args.bins else None
    if args.benchmark_out is not None:
        from .benchplugin import write_tissue_benchmark

        if len(args.inputs) != 1 or args.identifier is None or args.stimuli is None:
            raise BrainScoreError("--benchmark-out needs NEURAL alone, --id ID and --stimuli FOLDER.")
        check_output(args.benchmark_out, "dir")
        if not args.stimuli.is_dir():
            raise BrainScoreError(f"--stimuli {str(args.stimuli)!r} is not a folder of images.")
        images = sorted(p for p in args.stimuli.iterdir() if p.suffix.lower() in _IMAGES)
        info = write_tissue_benchmark(args.inputs[0], images, args.identifier, args.benchmark_out, region=args.region,
                                      bins=bins, n_bins=args.n_bins, max_pairs=args.max_pairs, seed=args.seed,
                                      overwrite=args.overwrite)
        print(info)
        return 0
    from .tissue import tissue_correlation

    if len(args.inputs) != 2:
        raise BrainScoreError("give SHEET NEURAL (or NEURAL with --benchmark-out).")
    if args.json is not None:
        check_output(args.json)
    result = tissue_correlation(args.inputs[0], args.inputs[1], region=args.region, area=args.area, bins=bins,
                                n_bins=args.n_bins, max_pairs=args.max_pairs, seed=args.seed)
    print(result)
    if args.json is not None:
        import numpy as np

        _write_json(args.json, {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(result).items()})
    return 0


def _write_json(path: Path, data: Any) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    print(f"wrote {path}")
