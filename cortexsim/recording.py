"""Record any PyTorch vision model as a simulated cortical sheet.

:class:`SimulatedCortex` commits areas to modules (like Brain-Score's
region→layer map), places each area's units on a sheet with a layout from
:mod:`cortexsim.layout`, and records responses to stimuli with forward hooks.
Outputs other than (C,) vectors and (C, H, W) maps go through an area's
transform (:class:`cortexsim.areas.Area`; ViT tokens by default).
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from .areas import Area, default_transform, placeable_shape
from .capture import capture, evaluating
from .errors import LayerNotFoundError, LayoutError, StimulusError
from .io import SheetWriter, open_sheet
from .jsonattrs import to_jsonable
from .layout import Placement, place, resolve_layout_params
from .modules import find_module
from .sheet import make_sheet, stimulus_table

__all__ = ["SPATIAL_REDUCTIONS", "Area", "SimulatedCortex", "find_module", "record"]

SPATIAL_REDUCTIONS = ("mean", "max", "center")


def _as_batches(stimuli: Any, batch_size: int) -> tuple[int, pd.DataFrame | None, Callable[[], Iterator[torch.Tensor]]]:
    """Normalise accepted stimulus inputs to (n, metadata, batch iterator factory)."""
    if hasattr(stimuli, "batches") and hasattr(stimuli, "metadata"):
        return len(stimuli), stimuli.metadata, lambda: iter(stimuli.batches(batch_size))
    if isinstance(stimuli, np.ndarray):
        stimuli = torch.from_numpy(stimuli)
    if not isinstance(stimuli, torch.Tensor):
        raise StimulusError(
            f"stimuli must be an N×C×H×W tensor / array or a cortexsim.stimuli set; got {type(stimuli).__name__}."
        )
    if stimuli.ndim != 4:
        hint = " Add the channel dim with x[:, None] (grey) or x.permute(0, 3, 1, 2) (N×H×W×C)." if stimuli.ndim == 3 else ""
        raise StimulusError(f"stimuli must have shape N×C×H×W; got {tuple(stimuli.shape)}.{hint}")
    if not stimuli.is_floating_point():
        raise StimulusError(
            f"stimuli must be floating point (e.g. values in [0, 1]); got dtype {stimuli.dtype}. "
            f"Convert with x.float() / 255."
        )
    data = stimuli
    return len(data), None, lambda: (data[i : i + batch_size] for i in range(0, len(data), batch_size))


def _input_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


class SimulatedCortex:
    """A model whose chosen layers are areas of a simulated cortical sheet.

    Parameters
    ----------
    model : nn.Module
        Any vision model taking N×C×H×W images (torchvision classifiers, the
        adapters' topographic nets, ...). It is put in eval mode while recording.
    areas : mapping area -> module name or :class:`~cortexsim.areas.Area`
        e.g. ``{"V1": "layer2.0", "IT": "layer4.1"}`` (``model.named_modules()`` names).
        Outputs must be (C,) or (C, H, W) per stimulus; ``Area(name, transform=fn)``
        maps others. Token outputs (N, D) of torchvision ViT blocks are mapped by
        default: the class token dropped, the patch tokens as a (D, √(N−1), √(N−1))
        map, so ``{"IT": "encoder.layers.encoder_layer_11"}`` records a ViT.
    layout : str or mapping area -> str
        Layout of each area (see :data:`cortexsim.layout.LAYOUTS`); ``"retinotopic"``
        places every unit of a conv map, channel layouts place channels.
    layout_params : mapping area -> dict, optional
        Extra layout parameters per area (``size_mm``, ``seed``, ``scale_mm`` ...).
        Retinotopic sheets default to :data:`cortexsim.layout.DEFAULT_SHEET_MM`.
    placements : mapping module name -> Placement, optional
        Positions fixed elsewhere (e.g. the layout a topographic net trained with);
        they take precedence over ``layout`` for those modules.

    Each :meth:`record` places the areas for the output shapes it sees (placements
    are cached per area and output shape), so one cortex can record stimuli of
    different image sizes: a retinotopic area gets the sheet of each map size,
    channel layouts the same positions. :attr:`placements` holds the last
    recording's placements.
    spatial : {"mean", "max", "center"}
        How a channel-level unit's response is read from its H×W map.
    model_name : str, optional
        Stored in the Sheet's attrs (default: the model's class name).
    seed : int
        Seed of the random layouts.
    """

    def __init__(
        self,
        model: nn.Module,
        areas: Mapping[str, str],
        layout: str | Mapping[str, str] = "retinotopic",
        *,
        layout_params: Mapping[str, Mapping[str, Any]] | None = None,
        placements: Mapping[str, Placement] | None = None,
        spatial: str = "mean",
        model_name: str | None = None,
        seed: int = 0,
    ) -> None:
        if not areas:
            raise LayoutError("areas is empty; give at least one area, e.g. {'IT': 'layer4.1'}.")
        if spatial not in SPATIAL_REDUCTIONS:
            raise LayoutError(f"spatial must be one of {SPATIAL_REDUCTIONS}; got {spatial!r}.")
        self.model = model
        specs = {a: (m if isinstance(m, Area) else Area(m)) for a, m in areas.items()}
        self.areas = {a: spec.module for a, spec in specs.items()}  # area -> module name (Sheet attrs, plugins)
        self.transforms = {a: spec.transform for a, spec in specs.items()}  # None: default (see areas.py)
        self.modules = {area: find_module(model, name) for area, name in self.areas.items()}
        self.layouts = {a: (layout if isinstance(layout, str) else layout.get(a, "retinotopic")) for a in self.areas}
        self.layout_params = {a: dict((layout_params or {}).get(a, {})) for a in self.areas}
        for a in self.areas:
            if self.layouts[a] == "retinotopic":
                self.layout_params[a].setdefault("seed", seed)
        self.fixed = dict(placements or {})
        self.spatial = spatial
        self.model_name = model_name or type(model).__name__
        self.placements: dict[str, Placement] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}  # per-stimulus shape each area's units come from (last record)
        self._cache: dict[tuple[str, tuple[int, ...]], Placement] = {}

    # ------------------------------------------------------------------ placement

    def _placement(self, area: str, shape: tuple[int, ...]) -> Placement:
        key = (area, shape)
        if key not in self._cache:
            self._cache[key] = self._new_placement(area, shape)
        return self._cache[key]

    def _new_placement(self, area: str, shape: tuple[int, ...]) -> Placement:
        module = self.areas[area]
        if module in self.fixed:
            p = self.fixed[module]
            want = p.n_units
            have = int(np.prod(shape)) if p.level == "unit" else shape[0]
            if want != have:
                raise LayoutError(
                    f"positions for {module!r} cover {want} units ({p.level} level) but the layer outputs "
                    f"{shape} ({have} {p.level}s). Positions must match the layer's units"
                    f"{' (record at the image size they were made for)' if p.level == 'unit' else ''}."
                )
            return p
        layout = self.layouts[area]
        return place(layout, shape, **resolve_layout_params(layout, area, self.layout_params[area]))

    def _reduce(self, out: torch.Tensor, placement: Placement) -> torch.Tensor:
        if placement.level == "channel" and out.ndim == 4:
            if self.spatial == "mean":
                return out.mean(dim=(2, 3))
            if self.spatial == "max":
                return out.amax(dim=(2, 3))
            return out[:, :, out.shape[2] // 2, out.shape[3] // 2]
        return out.flatten(1)

    # ------------------------------------------------------------------ recording

    def unit_coords(self) -> dict[str, np.ndarray]:
        """Unit coords of the sheet (after the first batch fixed the placements)."""
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("area", "layer", "channel", "row", "col", "x_mm", "y_mm", "z_mm")}
        dims = {p.positions.shape[1] for p in self.placements.values()}
        for area, p in self.placements.items():
            n = p.n_units
            cols["area"].append(np.full(n, area))
            cols["layer"].append(np.full(n, self.areas[area]))
            cols["channel"].append(p.channel.astype(np.int64))
            cols["row"].append(p.row.astype(np.int64))
            cols["col"].append(p.col.astype(np.int64))
            pos = p.positions
            cols["x_mm"].append(pos[:, 0])
            cols["y_mm"].append(pos[:, 1])
            cols["z_mm"].append(pos[:, 2] if pos.shape[1] > 2 else np.zeros(n))
        out = {k: np.concatenate(v) for k, v in cols.items()}
        if 3 not in dims:
            del out["z_mm"]
        out["unit_id"] = np.arange(len(out["area"]), dtype=np.int64)
        return out

    def attrs(self) -> dict[str, Any]:
        """Dataset attrs describing the model and the layout of every area."""
        return {
            "model": self.model_name,
            "areas": json.dumps(self.areas),
            "layout": json.dumps({a: p.layout for a, p in self.placements.items()}),
            "layout_params": json.dumps(to_jsonable({a: p.params for a, p in self.placements.items()})),
            "spatial_reduction": self.spatial,
        }

    def record(
        self,
        stimuli: Any,
        *,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        amp: bool = False,
        dtype: Any = np.float32,
        out: str | Path | None = None,
        compression: str | None = "lzf",
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        progress: bool = True,
        attrs: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """Record the areas' responses to ``stimuli`` as a Sheet.

        Parameters
        ----------
        stimuli : Tensor / ndarray (N, C, H, W) float, or a cortexsim stimulus set
            A stimulus set's metadata becomes the stimulus coords.
        batch_size : int
        device : "cpu", "cuda", ... (default: the model's device)
        amp : bool
            bf16 autocast on CUDA (ignored on CPU); responses are stored in ``dtype``.
        dtype : numpy float dtype of the stored responses (float32 or float16)
        out : path, optional
            Stream every batch to this HDF5 file (memory bounded by one batch) and
            return the Sheet opened lazily from it.
        compression : {"lzf", "gzip", None}
            HDF5 filter when streaming. ``lzf`` (default) keeps writing cheap
            (benchmarks/record_bench.py: ReLU maps shrink ~30 %, close to gzip,
            at a fraction of its CPU cost); h5py and xarray read it, netCDF-C
            tools need gzip — or re-save with :func:`cortexsim.save_sheet`.
        preprocess : callable, optional
            Applied to each batch on the device (e.g. ImageNet normalisation).
        progress : bool
            Show a tqdm bar.
        attrs : mapping, optional
            Extra Sheet attrs (e.g. ``checkpoint_sha256``).

        Returns
        -------
        xarray.Dataset
            The Sheet (dask-backed when ``out`` was given).
        """
        if batch_size < 1:
            raise StimulusError(f"batch_size must be ≥ 1; got {batch_size}.")
        n, metadata, batches = _as_batches(stimuli, batch_size)
        if n == 0:
            raise StimulusError("no stimuli to record (the set is empty).")
        table = stimulus_table(metadata, n)
        dev = torch.device(device) if device is not None else next(self.model.parameters()).device
        model = self.model.to(dev)
        want_c = _input_channels(model)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if (amp and dev.type == "cuda") else contextlib.nullcontext()
        )
        writer: SheetWriter | None = None
        buffer: np.ndarray | None = None
        pending: Future | None = None
        pool = ThreadPoolExecutor(max_workers=1) if out is not None else None
        done = 0
        hooks = contextlib.ExitStack()  # eval mode + inference mode + hooks, all undone in `finally`
        hooks.enter_context(evaluating(model, inference=True))
        captured = hooks.enter_context(capture(model, self.modules))
        try:
            bar = tqdm(total=n, desc=f"record {self.model_name}", unit="stim", disable=None if progress else True)  # None: only on a terminal
            for batch in batches():
                batch = torch.as_tensor(batch)
                self._check_batch(batch, want_c)
                x = batch.to(dev, non_blocking=True)
                if preprocess is not None:
                    x = preprocess(x)
                captured.clear()
                with autocast:
                    model(x)
                missing = [a for a in self.areas if a not in captured]
                if missing:
                    raise LayerNotFoundError(
                        f"modules {[self.areas[a] for a in missing]} did not run in the forward pass; "
                        f"choose modules the model's forward() actually calls."
                    )
                units = self._area_outputs(captured, len(x))
                if done == 0:  # this recording's placements, from the output shapes of its first batch
                    self.shapes = {a: placeable_shape(a, self.areas[a], tuple(y.shape[1:]), transformed)
                                   for a, (y, transformed) in units.items()}
                    self.placements = {a: self._placement(a, self.shapes[a]) for a in self.areas}
                else:
                    self._check_same_shapes(units, done)
                flat = torch.cat([self._reduce(units[a][0], self.placements[a]).float() for a in self.areas], dim=1)
                resp = flat.to("cpu").numpy().astype(dtype, copy=False)
                if not np.isfinite(resp).all():
                    raise StimulusError(
                        f"the model produced NaN/Inf responses for stimuli {done}–{done + len(resp) - 1}; "
                        f"check the inputs (NaNs?) and the weights."
                    )
                if out is not None:
                    if writer is None:
                        writer = SheetWriter(
                            out, n, self.unit_coords(), table, {**self.attrs(), **dict(attrs or {})},
                            dtype=dtype, compression=compression, chunk_stimuli=batch_size,
                        )
                    if pending is not None:
                        pending.result()  # at most one batch in flight: memory stays bounded
                    pending = pool.submit(writer.write, resp)
                else:
                    if buffer is None:
                        buffer = np.empty((n, resp.shape[1]), dtype=dtype)
                    buffer[done : done + len(resp)] = resp
                done += len(resp)
                bar.update(len(resp))
            bar.close()
            if done != n:
                raise StimulusError(f"the stimulus set yielded {done} images but reports {n}.")
            if pending is not None:
                pending.result()
            if writer is not None:
                writer.close()
                writer = None
                return open_sheet(out)
        except BaseException as exc:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    pending.result()
            if writer is not None:
                writer.abort(exc)
            raise
        finally:
            hooks.close()
            if pool is not None:
                pool.shutdown(wait=True)
        coords = self.unit_coords()
        return make_sheet(
            buffer,
            stimuli=table,
            attrs={**self.attrs(), **dict(attrs or {})},
            **coords,
        )

    def _area_outputs(self, captured: Mapping[str, Any], batch: int) -> dict[str, tuple[torch.Tensor, bool]]:
        """Each area's output batch after its transform (given or default), and whether one was applied."""
        out = {}
        for area, y in captured.items():
            module = self.areas[area]
            if not isinstance(y, torch.Tensor):
                raise LayoutError(f"area {area!r}: module {module!r} returned a {type(y).__name__}, not a tensor; "
                                  f"give Area({module!r}, transform=fn) with fn returning a (B, C, H, W) or (B, C) tensor.")
            fn = self.transforms[area] or default_transform(self.model, self.modules[area], y)
            if fn is not None:
                y = fn(y)
                if not isinstance(y, torch.Tensor) or y.ndim < 1 or y.shape[0] != batch:
                    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                    raise LayoutError(f"area {area!r}: the transform must return a (B, ...) tensor with the batch's "
                                      f"B = {batch} first; it returned {got}.")
            out[area] = (y, fn is not None)
        return out

    def _check_same_shapes(self, units: Mapping[str, tuple[torch.Tensor, bool]], done: int) -> None:
        for area, (y, _) in units.items():
            if tuple(y.shape[1:]) != self.shapes[area]:
                raise StimulusError(
                    f"area {area!r}: stimuli from index {done} give outputs {tuple(y.shape[1:])}, earlier ones "
                    f"{self.shapes[area]}; all stimuli of one recording must have one size (record each size "
                    f"with its own record() call)."
                )

    def fmri(self, stimuli: Any, voxel_mm: float, psf_fwhm_mm: float = 0.0, **record_kw: Any) -> xr.Dataset:
        """Simulated fMRI: :meth:`record` the stimuli, then :func:`cortexsim.compare.voxelize`.

        ``voxel_mm`` is the voxel edge, ``psf_fwhm_mm`` the Gaussian point-spread FWHM
        (0: none; ≈ 3.5 mm for 3 T, ≈ 2 mm for 7 T gradient-echo BOLD). Other keywords go
        to :meth:`record` (with ``out=`` the recording streams to disk and the voxel
        Sheet stays lazy). Returns a stimulus × voxel Sheet (voxels are its units).
        """
        from .compare.voxelize import voxelize

        return voxelize(self.record(stimuli, **record_kw), voxel_mm, psf_fwhm_mm)

    @staticmethod
    def _check_batch(batch: torch.Tensor, want_c: int | None) -> None:
        if batch.ndim != 4:
            raise StimulusError(f"stimulus batches must be B×C×H×W; got {tuple(batch.shape)}.")
        if not batch.is_floating_point():
            raise StimulusError(f"stimuli must be floating point; got {batch.dtype}. Convert with x.float() / 255.")
        if want_c is not None and batch.shape[1] != want_c:
            raise StimulusError(
                f"the model's first convolution expects {want_c} input channels; stimuli have {batch.shape[1]}. "
                f"Use x.repeat(1, {want_c}, 1, 1) for grey images or a stimulus set with channels={want_c}."
            )
        if not torch.isfinite(batch).all():
            raise StimulusError("stimuli contain NaN/Inf values; clean them before recording.")


def record(
    model: nn.Module,
    stimuli: Any,
    areas: Mapping[str, str],
    layout: str | Mapping[str, str] = "retinotopic",
    **kwargs: Any,
) -> xr.Dataset:
    """One-call recording: ``SimulatedCortex(model, areas, layout).record(stimuli, **kwargs)``.

    Layout keyword arguments (``layout_params``, ``placements``, ``spatial``,
    ``model_name``, ``seed``) go to :class:`SimulatedCortex`; the rest to
    :meth:`SimulatedCortex.record`.
    """
    ctor_keys = {"layout_params", "placements", "spatial", "model_name", "seed"}
    ctor = {k: kwargs.pop(k) for k in list(kwargs) if k in ctor_keys}
    return SimulatedCortex(model, areas, layout, **ctor).record(stimuli, **kwargs)

