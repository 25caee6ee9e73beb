"""Brain-Score model plugins from cortexsim models: :func:`write_plugin` (``cortexsim brainscore plugin``).

``write_plugin(source, identifier, out)`` writes ``OUT/models/<folder>/`` as
brainscore-vision 2.4.2 expects a model plugin:

=================================  ==========================================================
``__init__.py``                    ``model_registry['<id>'] = lambda: ModelCommitment(...,
                                   region_layer_map=...)`` — the registry finds plugins by
                                   that text; the map is explicit, so Brain-Score never runs
                                   its layer selection (which loads benchmark data from S3)
``model.py``                       self-contained: the architecture as torch code
                                   (:mod:`.codegen`), ``get_model`` / ``get_layers`` /
                                   ``get_bibtex``, the training preprocessing, and a
                                   wrapper adding ``tissue_x`` / ``tissue_y`` (mm) to every
                                   neuroid of a committed layer
``test.py``                        offline checks (commitment, ``look_at`` shapes, positions)
``requirements.txt``               torch, numpy, pillow (cortexsim is not needed)
``region_layer_map/<id>.json``     region -> layer, from the areas called V1 / V2 / V4 / IT
                                   (and ``regions=`` / ``--map REGION=LAYER``)
``weights.pt``                     the state dict (``weights_only=True``), or only its
                                   SHA-256 and ``--weights-url`` for files too big to upload
``positions.npz``                  per committed layer, the positions of its neuroids (mm)
``cortexsim.json``                 provenance: source, method, arch, files' SHA-256
=================================  ==========================================================

``source``: a run folder (``config.json`` + ``model.pt``), a ``.pt`` state dict or
checkpoint inside one, a trained :class:`~cortexsim.adapters.base.TopographicNet`, or
a :class:`~cortexsim.SimulatedCortex` (any network with areas and a layout; then give
``image_size``).

Positions: the plugin's positions are those of a Sheet recorded from the same
network and layout (:func:`plugin_cortex` returns that SimulatedCortex). Brain-Score
flattens a (C, H, W) map channel-major, which is cortexsim's unit order, so a
unit-level layer's neuroid *k* is Sheet unit *k*; a channel-level layer (channel
layouts) has C Sheet units, and all H × W neuroids of channel *c* get unit *c*'s
position.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import string
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cortexsim.errors import BrainScoreError
from cortexsim.modules import module_names

from .exchange import REGIONS

TEMPLATES = Path(__file__).with_name("templates")
#: Brain-Score's website refuses submission zips above this size.
UPLOAD_LIMIT_MB = 50.0
REQUIREMENTS_TXT = "torch\nnumpy\npillow\n"
_CORTEXSIM_BIBTEX = "@misc{cortexsim, title={cortexsim: simulated cortical sheets for topographic deep networks}}"


@dataclass
class PluginInfo:
    """What :func:`write_plugin` wrote.

    Attributes
    ----------
    folder : the plugin folder ``OUT/models/<folder>``
    identifier : the model identifier registered in ``model_registry``
    region_layer_map : region -> layer (module name)
    layers : committed layers, in the network's order
    n_neuroids : layer -> neuroids Brain-Score sees (C·H·W)
    zip_mb : size of the folder zipped (MB), as the website's upload would be
    weights : the state-dict file (inside the folder, or next to it with ``weights_url``)
    messages : notes for the user (upload size, unmapped regions)
    """

    folder: Path
    identifier: str
    region_layer_map: dict[str, str]
    layers: list[str]
    n_neuroids: dict[str, int]
    zip_mb: float
    weights: Path
    messages: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"wrote Brain-Score plugin {self.identifier!r} to {self.folder} ({self.zip_mb:.1f} MB zipped)",
                 "  region -> layer: " + ", ".join(f"{r} -> {l} ({self.n_neuroids[l]} neuroids)"
                                                   for r, l in self.region_layer_map.items()),
                 f"  weights: {self.weights}"]
        return "\n".join(lines + [f"  note: {m}" for m in self.messages])


@dataclass
class _Source:
    net: Any
    areas: dict[str, str]
    cortex: Any
    image_size: int
    meta: dict[str, Any]


def _from_run(path: Path, image_size: int | None) -> _Source:
    import torch

    from cortexsim.adapters.base import AdapterError
    from cortexsim.adapters.trainer import _read_config, build_net

    run = path if path.is_dir() else path.parent
    if not (run / "config.json").is_file() and (run.parent / "config.json").is_file():
        run = run.parent  # a checkpoint in RUN_DIR/checkpoints/
    weights = path if path.is_file() else run / "model.pt"
    if not (run / "config.json").is_file():
        raise BrainScoreError(f"{str(path)!r} is not a cortexsim run: no config.json there (a run folder holds "
                              f"config.json and model.pt, written by `cortexsim train --out RUN_DIR`).")
    if not weights.is_file():
        raise BrainScoreError(f"missing weights: {str(weights)!r} does not exist; train to the end (model.pt is "
                              f"written when training finishes) or pass a checkpoint file RUN_DIR/checkpoints/*.pt.")
    try:
        build = _read_config(run)["build"]
        net = build_net(build)
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except AdapterError as exc:
        raise BrainScoreError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError / UnpicklingError / EOFError
        raise BrainScoreError(f"cannot read the weights {str(weights)!r} ({type(exc).__name__}: {exc}).") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a training checkpoint
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise BrainScoreError(f"{str(weights)!r} does not fit the network of {run / 'config.json'} ({exc}).") from None
    net.eval()
    meta = {"source": str(path.resolve()), "method": build.get("method"), "arch": build.get("arch"),
            "layout": build.get("layout"), "weights_sha256": _sha256(weights)}
    return _Source(net, dict(net.areas), net.export_cortex(), int(image_size or build.get("image_size", 32)), meta)


def _resolve(source: Any, image_size: int | None) -> _Source:
    from torch import nn

    from cortexsim.recording import SimulatedCortex

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise BrainScoreError(f"no run folder or weights file at {str(path)!r}.")
        return _from_run(path, image_size)
    if isinstance(source, SimulatedCortex):
        if image_size is None:
            raise BrainScoreError("give image_size= (the side in pixels the network takes) with a SimulatedCortex.")
        return _Source(source.model, dict(source.areas), source, int(image_size),
                       {"source": type(source.model).__name__, "method": None, "arch": None})
    if isinstance(source, nn.Module) and hasattr(source, "export_cortex"):
        return _Source(source, dict(source.areas), source.export_cortex(), int(image_size or 32),
                       {"source": type(source).__name__, "method": getattr(source, "method", None), "arch": None})
    raise BrainScoreError(f"source must be a run folder, a weights file in one, a trained TopographicNet or a "
                          f"SimulatedCortex; got {type(source).__name__}.")


def _region_map(areas: Mapping[str, str], regions: Mapping[str, str] | None, modules: set[str]) -> dict[str, str]:
    """Region -> module: the areas named like Brain-Score regions, updated by ``regions``."""
    out = {a: m for a, m in areas.items() if a in REGIONS}
    for region, layer in (regions or {}).items():
        if region not in REGIONS:
            raise BrainScoreError(f"unknown region {region!r}: Brain-Score's regions are {', '.join(REGIONS)}.")
        out[region] = areas.get(layer, layer)  # an area name stands for its module
    if not out:
        raise BrainScoreError(f"no area of the model is a Brain-Score region (areas: {dict(areas)}); map them with "
                              f"regions={{'IT': '<layer>'}} (--map IT=LAYER).")
    missing = sorted({m for m in out.values() if m not in modules})
    if missing:
        raise BrainScoreError(f"layers {missing} are not modules of the network; use names from "
                              f"net.named_modules() (e.g. the Sheet's `layer` coord).")
    return {r: out[r] for r in REGIONS if r in out}


def plugin_cortex(source: Any, regions: Mapping[str, str] | None = None, *, image_size: int | None = None,
                  layout: str = "retinotopic"):
    """The :class:`~cortexsim.SimulatedCortex` whose Sheets line up with the plugin's neuroids.

    One area per committed layer, named by the first region mapped to it, with the
    source's positions (its placements; other layers get ``layout``). Returns
    ``(cortex, region_layer_map, image_size, meta)``.
    """
    from cortexsim.recording import SimulatedCortex

    src = _resolve(source, image_size)
    modules = set(module_names(src.net))
    region_map = _region_map(src.areas, regions, modules)
    area_of_layer: dict[str, str] = {}
    for region, layer in region_map.items():
        area_of_layer.setdefault(layer, region)
    by_module = {m: a for a, m in src.cortex.areas.items()}
    layouts = {area: src.cortex.layouts.get(by_module.get(layer), layout) for layer, area in area_of_layer.items()}
    params = {area: src.cortex.layout_params.get(by_module.get(layer), {}) for layer, area in area_of_layer.items()}
    fixed = {**src.cortex.fixed, **{src.cortex.areas[a]: p for a, p in src.cortex.placements.items()}}
    cortex = SimulatedCortex(src.net, areas={a: l for l, a in area_of_layer.items()}, layout=layouts,
                             layout_params=params, placements=fixed, spatial="mean",
                             model_name=str(src.meta.get("arch") or type(src.net).__name__))
    return cortex, region_map, src.image_size, src.meta


def _input_shape(net: Any, image_size: int) -> tuple[int, int, int]:
    from cortexsim.recording import _input_channels

    return (_input_channels(net) or 3, image_size, image_size)


def _neuroid_positions(cortex: Any, shape: tuple[int, int, int]) -> tuple[dict[str, np.ndarray], dict[str, tuple]]:
    """Per layer: positions (n_neuroids, 2|3) in Brain-Score's flatten order, and the layer's output shape."""
    import torch

    from cortexsim.capture import capture

    with capture(cortex.model, dict(cortex.modules), transform=lambda y: tuple(y.shape[1:])) as raw:
        cortex.record(torch.zeros(1, *shape), progress=False)
    # the per-stimulus shape each area's units come from (after its transform, e.g. ViT tokens -> (D, s, s))
    shapes: dict[str, tuple] = dict(cortex.shapes)
    for area, layer in cortex.areas.items():
        # Brain-Score flattens the module's raw output; positions of transformed units would not line up
        if raw[area] != shapes[area]:
            raise BrainScoreError(
                f"{layer!r}: Brain-Score reads its raw per-stimulus output {raw[area]} ({int(np.prod(raw[area]))} "
                f"neuroids), but cortexsim places area {area!r} after a transform as {shapes[area]} (e.g. ViT tokens "
                f"as a patch map), so the tissue positions would not match the neuroids. Commit a module whose "
                f"output is (C,) or (C, H, W) per stimulus.")
    out = {}
    for area, layer in cortex.areas.items():
        p, dims = cortex.placements[area], shapes[area]
        n = int(np.prod(dims))
        if p.level == "unit":
            if p.n_units != n:
                raise BrainScoreError(f"{layer!r}: {p.n_units} positions for {n} outputs.")
            if len(dims) == 3 and (p.row >= 0).all():
                c, r, k = np.unravel_index(np.arange(n), dims)
                if not ((p.channel == c) & (p.row == r) & (p.col == k)).all():
                    raise BrainScoreError(f"{layer!r}: the layout's unit order is not (channel, row, col).")
            pos = p.positions
        else:
            per_channel = n // dims[0]
            pos = np.repeat(p.positions, per_channel, axis=0)
        out[layer] = np.asarray(pos, dtype=np.float64)
    return out, shapes


def _sha256(path: Path) -> str:
    from cortexsim.adapters.checkpoint import file_sha256

    return file_sha256(path)


def check_identifier(identifier: Any, what: str = "identifier") -> str:
    """A Brain-Score identifier: letters, digits, ``-``, ``_``, ``.``, starting with a letter or digit."""
    if not isinstance(identifier, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", identifier):
        raise BrainScoreError(f"{what} must be letters, digits, '-', '_', '.' (starting with a letter or digit); "
                              f"got {identifier!r}.")
    return identifier


def _zip_mb(folder: Path) -> float:
    """Size in MB of ``folder`` zipped (deflate), as a website upload of it would be."""
    tmp = folder.with_name(folder.name + ".size.zip")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(folder.rglob("*")):
                if f.is_file():
                    z.write(f, f.relative_to(folder.parent))
        return tmp.stat().st_size / 1e6
    finally:
        tmp.unlink(missing_ok=True)


def _render(name: str, **values: Any) -> str:
    return string.Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(**values)


def folder_name(identifier: str) -> str:
    """The plugin folder (a Python package name) for a model identifier: non-word characters -> ``_``."""
    name = re.sub(r"\W", "_", identifier)
    return name if name[:1].isalpha() else f"m_{name}"


def write_plugin(source: Any, identifier: str, out: str | os.PathLike, *, regions: Mapping[str, str] | None = None,
                 image_size: int | None = None, layout: str = "retinotopic", visual_degrees: float = 8,
                 weights_url: str | None = None, bibtex: str | None = None, overwrite: bool = False) -> PluginInfo:
    """Write a Brain-Score model plugin for ``source`` to ``out/models/<folder>/`` (see module docstring).

    Parameters
    ----------
    source : run folder, weights file in a run, TopographicNet, or SimulatedCortex
    identifier : the Brain-Score model identifier (letters, digits, ``-``, ``_``, ``.``)
    out : folder that receives ``models/<folder>/`` (a brainscore-vision checkout, or a staging folder)
    regions : region -> layer (or area name) to add or override (default: areas called V1 / V2 / V4 / IT)
    image_size : input side in pixels (default: the run's ``image_size``)
    layout : layout of mapped layers that have no trained positions
    visual_degrees : the field of view Brain-Score shows the images in (its default 8)
    weights_url : host the state dict there (the plugin downloads it once, SHA-256 checked); the file is
        then written to ``out/<folder>.weights.pt`` (outside ``models/``, for upload elsewhere) instead of inside it
    bibtex : citation for ``get_bibtex`` (default: the method's paper as given by cortexsim)
    overwrite : replace an existing plugin folder

    Raises
    ------
    BrainScoreError
        Bad identifier or region, unknown layer, missing weights, an architecture torch.fx
        cannot write out, or an existing folder without ``overwrite``.
    """
    import torch

    from cortexsim import __version__
    from cortexsim.io import atomic_path
    from cortexsim.jsonattrs import dumps
    from cortexsim.seeding import torch_generator

    from . import codegen

    check_identifier(identifier)
    if weights_url is not None and not re.match(r"https?://", weights_url):
        raise BrainScoreError(f"weights_url must be an http(s) URL; got {weights_url!r}.")
    cortex, region_map, size, meta = plugin_cortex(source, regions, image_size=image_size, layout=layout)
    net = cortex.model
    layers = [n for n, _ in net.named_modules() if n in set(region_map.values())]
    shape = _input_shape(net, size)
    positions, shapes = _neuroid_positions(cortex, shape)
    positions = {layer: positions[layer] for layer in layers}

    source_code = codegen.architecture_source(net, layers)
    rebuilt = codegen.build_from_source(source_code)
    state = codegen.state_dict_for(rebuilt, net)
    rebuilt.load_state_dict(state)
    codegen.verify(rebuilt, net, layers, torch.rand(2, *shape, generator=torch_generator(0)))

    root = Path(out) / "models"
    folder = root / folder_name(identifier)
    if folder.exists() and not overwrite:
        raise BrainScoreError(f"{folder} exists; pass overwrite=True (--overwrite) to replace it.")
    tmp = root / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "region_layer_map").mkdir(parents=True)
    weights_name = "weights.pt"
    weights_file = (root.parent / f"{folder.name}.weights.pt") if weights_url else folder / weights_name
    with atomic_path(tmp / weights_name) as t:
        torch.save(state, t)
    digest = _sha256(tmp / weights_name)
    np.savez(tmp / "positions.npz", **{f"layer{i}": positions[layer] for i, layer in enumerate(layers)})
    (tmp / "region_layer_map" / f"{identifier}.json").write_text(json.dumps(region_map, indent=1) + "\n")
    image_mode = "L" if shape[0] == 1 else "RGB"
    if shape[0] not in (1, 3):
        raise BrainScoreError(f"the network takes {shape[0]} input channels; plugins need 1 (grey) or 3 (RGB).")
    paper = meta.get("paper") or _method_paper(meta.get("method"))
    description = (f"Method {meta.get('method') or 'n/a'}, architecture {meta.get('arch') or type(net).__name__}, "
                   f"from {meta.get('source')}.")
    values = dict(identifier=identifier, identifier_repr=repr(identifier), cortexsim_version=__version__,
                  description=description, image_size=size, image_mode=repr(image_mode),
                  visual_degrees=repr(visual_degrees), layers=repr(layers), weights_file=repr(weights_name),
                  weights_url=repr(weights_url), weights_sha256=repr(digest),
                  bibtex=repr(bibtex or (f"@misc{{{folder_name(identifier)}, note={{{paper}}}}}" if paper
                                         else _CORTEXSIM_BIBTEX)),
                  architecture=source_code.strip() + "\n")
    (tmp / "model.py").write_text(_render("model.py.tmpl", **values))
    (tmp / "__init__.py").write_text(_render("__init__.py.tmpl", **values))
    (tmp / "test.py").write_text(_render("test.py.tmpl", **values))
    (tmp / "requirements.txt").write_text(REQUIREMENTS_TXT)
    provenance = {**meta, "identifier": identifier, "cortexsim_version": __version__, "image_size": size,
                  "region_layer_map": region_map, "layer_shapes": {l: list(shapes[cortex_area(cortex, l)])
                                                                   for l in layers},
                  "weights_sha256_plugin": digest, "weights_url": weights_url}
    (tmp / "cortexsim.json").write_text(dumps(provenance, indent=1) + "\n")  # strict JSON (NaN -> null)
    if weights_url:
        shutil.move(str(tmp / weights_name), str(weights_file))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)

    info = PluginInfo(folder, identifier, region_map, layers, {l: len(positions[l]) for l in layers},
                      _zip_mb(folder), weights_file)
    unmapped = [r for r in REGIONS if r not in region_map]
    if unmapped:
        info.messages.append(f"no layer for {', '.join(unmapped)}: Brain-Score's benchmarks of those regions cannot "
                             f"score this model (add --map REGION=LAYER).")
    if info.zip_mb > UPLOAD_LIMIT_MB:
        msg = (f"the plugin zips to {info.zip_mb:.1f} MB, above Brain-Score's {UPLOAD_LIMIT_MB:.0f} MB website "
               f"limit: host {weights_file.name} elsewhere and regenerate with --weights-url URL (or submit "
               f"through a pull request to brain-score/vision).")
        info.messages.append(msg)
        warnings.warn(msg, stacklevel=2)
    return info


def cortex_area(cortex: Any, layer: str) -> str:
    """The area of ``cortex`` recording module ``layer``."""
    return next(a for a, m in cortex.areas.items() if m == layer)


def _method_paper(method: str | None) -> str | None:
    if not method:
        return None
    try:
        from cortexsim.adapters import get_method

        return get_method(method).paper or None
    except Exception:  # noqa: BLE001 - unknown or private method: no citation
        return None
