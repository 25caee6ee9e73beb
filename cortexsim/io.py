"""Sheet files: HDF5 through xarray's h5netcdf engine, written atomically, checked on read.

A Sheet file is a netCDF4-flavoured HDF5 file, so ``xarray.open_dataset(path)``,
``h5py.File(path)`` and netCDF tools all read it.

Writing (:func:`save_sheet`, :class:`SheetWriter`) goes through :func:`cortexsim.atomic.atomic_path`
(a crash, kill or Ctrl-C mid-write leaves the previous file untouched). Every numeric variable,
coords included, carries HDF5's Fletcher-32 checksum per chunk; string coords (which HDF5 keeps
outside any checksummed chunk) are covered by a SHA-256 of all coords in the
``cortexsim_coords_sha256`` attribute.

Reading (:func:`open_sheet`): the HDF5 structure is probed in a helper process with a timeout
and checked, the coords are verified against their SHA-256, and ``responses`` stays lazy behind
a guard that turns any read failure into a :class:`~cortexsim.SheetError`
(:mod:`cortexsim.h5guard`).

The atomic-write helpers (:func:`atomic_path`, :func:`writable_path`, :func:`stale_temp_files`)
live in :mod:`cortexsim.atomic` and are re-exported here, as before.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from .atomic import (  # noqa: F401 - re-exported: the public (and tested private) names of cortexsim.io
    _ABANDONED, _ACTIVE, _TMP_NAME, _fsync_dir, _host, _pid_alive, _SigintGuard, atomic_path, stale_temp_files,
    writable_path,
)
from .errors import SheetError
from .h5guard import (  # noqa: F401 - re-exported
    _PROBER, CONVENTIONS, KNOWN_CONVENTIONS, OPEN_TIMEOUT_S, _dask_chunks, _GuardedArray, _Prober,
)
from .h5guard import check_structure as _check_structure
from .h5guard import probe_structure as _probe
from .h5guard import wrap_lazy as _wrap_lazy
from .sheet import _COORD_ATTRS, default_attrs, validate_sheet

#: Root attribute holding the SHA-256 of the coords (see :func:`coords_digest`).
DIGEST_ATTR = "cortexsim_coords_sha256"
#: Target size of one compressed HDF5 chunk of ``responses`` (bytes).
CHUNK_BYTES = 4 * 2**20


def default_chunks(
    shape: tuple[int, ...], itemsize: int = 4, stim_chunk: int | None = None
) -> tuple[int, ...]:
    """HDF5 chunk shape for ``responses``: blocks of ~4 MiB.

    ``stim_chunk`` (the recording batch size when streaming) makes every batch
    write cover whole chunks, so compressed chunks are never read back and
    rewritten; the unit extent then fills the chunk up to ~4 MiB.
    """
    n_stim, n_units = max(1, shape[0]), max(1, shape[1])
    rest = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    rows = min(n_stim, stim_chunk or 64)
    unit_chunk = max(1, min(n_units, CHUNK_BYTES // max(1, itemsize * rest * rows)))
    stim_chunk = (min(n_stim, stim_chunk) if stim_chunk
                  else max(1, min(n_stim, CHUNK_BYTES // max(1, itemsize * rest * unit_chunk))))
    return (stim_chunk, unit_chunk) + tuple(max(1, s) for s in shape[2:])



# ---------------------------------------------------------------------- integrity
def _canonical(values: Any) -> bytes:
    a = np.asarray(values)
    if a.dtype.kind == "f":
        return np.ascontiguousarray(a, dtype="<f8").tobytes()
    if a.dtype.kind in "iub":
        return np.ascontiguousarray(a, dtype="<i8").tobytes()
    return "\x00".join(map(str, a.ravel().tolist())).encode("utf-8", "surrogatepass")


def coords_digest(ds: xr.Dataset) -> str:
    """SHA-256 (hex) of every coord of ``ds``: names, shapes and values (numbers as 64-bit, text as UTF-8)."""
    h = hashlib.sha256()
    for name in sorted(map(str, ds.coords)):
        values = ds[name].values
        h.update(f"{name}\x00{values.shape}\x00".encode())
        h.update(_canonical(values))
    return h.hexdigest()


def _stamp_digest(tmp: Path) -> None:
    """Write the coords' SHA-256, as read back from the finished temporary file, into it."""
    with xr.open_dataset(tmp, engine="h5netcdf", cache=False) as back:
        digest = coords_digest(back)
    with h5py.File(tmp, "a") as f:
        f.attrs[DIGEST_ATTR] = digest


def _encoding(ds: xr.Dataset, compression: str | None, level: int) -> dict[str, dict[str, Any]]:
    resp = ds["responses"]
    enc: dict[str, Any] = {"chunksizes": default_chunks(resp.shape, resp.dtype.itemsize), "fletcher32": True}
    if compression:
        enc.update(compression=compression, shuffle=True)
        if compression == "gzip":
            enc["compression_opts"] = level
    out = {"responses": enc}
    # Fletcher-32 needs chunked storage and fixed-size elements: every numeric, non-empty variable.
    for name, var in ds.variables.items():
        if name != "responses" and var.ndim and var.size and var.dtype.kind in "fiub":
            out[str(name)] = {"fletcher32": True}
    return out


def save_sheet(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    compression: str | None = "gzip",
    level: int = 1,
    validate: bool = True,
) -> Path:
    """Write a Sheet to HDF5 (h5netcdf engine), chunked, compressed and checksummed, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        A Sheet; may be dask-backed (written chunk by chunk).
    path : path-like
        Destination ``.h5`` file; replaced atomically if it exists.
    compression : {"gzip", "lzf", None}
        HDF5 filter for ``responses`` (with byte shuffle). gzip is readable by
        every netCDF/HDF5 tool; level 1 costs little time.
    level : int
        gzip level (1-9).
    validate : bool
        Check the schema (not the values) before writing.

    Returns
    -------
    pathlib.Path
        The written path.

    Notes
    -----
    Every numeric variable gets HDF5's Fletcher-32 filter (a damaged chunk fails to read
    instead of returning other numbers); the coords' SHA-256 goes into the
    ``cortexsim_coords_sha256`` attribute. Ctrl-C aborts the write and leaves ``path`` as it was.
    """
    if validate:
        validate_sheet(ds, check_values=False)
    if compression not in ("gzip", "lzf", None):
        raise SheetError(f"compression must be 'gzip', 'lzf' or None; got {compression!r}.")
    ds = ds.copy()
    ds.attrs.pop(DIGEST_ATTR, None)
    ds.attrs.setdefault("Conventions", CONVENTIONS)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=_encoding(ds, compression, level), invalid_netcdf=True)
        _stamp_digest(tmp)
    return Path(path)



def open_sheet(
    path: str | os.PathLike,
    *,
    chunks: Mapping[str, int] | str | int | None = "auto",
    check_values: bool = False,
    allow_nonfinite: bool = False,
) -> xr.Dataset:
    """Open a Sheet file lazily (dask) and validate it.

    Parameters
    ----------
    path : path-like
        A file written by :func:`save_sheet` or ``SimulatedCortex.record(out=...)``.
    chunks : dict of dim -> size, "auto", int or None
        dask chunks for ``responses`` ("auto": multiples of the file's HDF5 chunks, as
        dask sizes them; dims missing from a dict are "auto"); ``None`` loads eagerly.
    check_values : bool
        Also scan ``responses`` for NaN/Inf (reads the whole array, chunk by chunk).
    allow_nonfinite : bool
        Passed to :func:`validate_sheet`.

    Raises
    ------
    SheetError
        The file is missing, truncated, damaged (metadata, a checksum of coords or data),
        not HDF5, not a cortexsim Sheet, of an unknown Sheet version, uses external or
        virtual storage, or does not follow the schema. A damaged ``responses`` chunk
        is found when it is read: a lazy read then raises ``SheetError`` too.
    """
    p = Path(path)
    if not p.exists():
        raise SheetError(f"no Sheet file at {str(p)!r}; record one with `cortexsim record ... --out {p}`.")
    if p.is_dir():
        raise SheetError(f"{str(p)!r} is a folder, not a Sheet file.")
    info = _probe(p)
    _check_structure(p, info)
    try:
        ds = xr.open_dataset(p, engine="h5netcdf", chunks=None)
        # Coords are small (one value per unit/stimulus) and used everywhere: load them
        # eagerly so only `responses` stays lazy.
        ds = ds.assign_coords({name: ds[name].compute() for name in ds.coords})
    except Exception as exc:  # noqa: BLE001 - h5netcdf/xarray raise many types on damaged files
        raise SheetError(f"could not decode Sheet file {str(p)!r} ({type(exc).__name__}: {exc}); "
                         f"it is damaged or not a Sheet. Restore or re-record it.") from exc
    stored = ds.attrs.pop(DIGEST_ATTR, None)
    if stored is not None and str(stored) != coords_digest(ds):
        raise SheetError(
            f"the coords of Sheet file {str(p)!r} do not match the SHA-256 written with them: the file is "
            f"damaged (or its coords were edited by another tool). Restore or re-record it."
        )
    try:
        ds = _wrap_lazy(ds, p, chunks)
        validate_sheet(ds, check_values=check_values, allow_nonfinite=allow_nonfinite)
    except SheetError as exc:
        if str(p) in str(exc):
            raise
        raise SheetError(f"Sheet file {str(p)!r}: {exc}") from exc
    return ds



class SheetWriter:
    """Stream a Sheet to disk batch by batch; memory stays bounded by one batch.

    Writes the same netCDF4/HDF5 layout as :func:`save_sheet` directly through
    ``h5netcdf``; the file appears at ``path`` only when :meth:`close` succeeds.

    Parameters
    ----------
    path : path-like
    n_stimuli : int
    unit_coords : mapping name -> array (n_units,)
        ``area``, ``layer``, ``channel``, ``row``, ``col``, ``x_mm``, ``y_mm``
        [, ``z_mm``], ``unit_id``.
    stimuli : DataFrame (n_stimuli rows)
        Stimulus metadata incl. ``stimulus_id``.
    attrs : mapping
        Dataset attributes.
    dtype : numpy dtype of ``responses`` (float32 or float16)
    compression, level : HDF5 filter of ``responses`` (see :func:`save_sheet`)
    chunk_stimuli : int, optional
        Stimuli per HDF5 chunk; pass the batch size so batch writes fill whole chunks.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        n_stimuli: int,
        unit_coords: Mapping[str, np.ndarray],
        stimuli: pd.DataFrame,
        attrs: Mapping[str, Any],
        *,
        dtype: Any = np.float32,
        compression: str | None = "gzip",
        level: int = 1,
        chunk_stimuli: int | None = None,
    ) -> None:
        import h5netcdf

        self.path = Path(path)
        self.n_stimuli = int(n_stimuli)
        self.n_units = len(unit_coords["unit_id"])
        if self.n_stimuli < 1 or self.n_units < 1:
            raise SheetError(f"a Sheet needs at least one stimulus and one unit; got {self.n_stimuli} stimuli "
                             f"and {self.n_units} units.")
        if compression not in ("gzip", "lzf", None):
            raise SheetError(f"compression must be 'gzip', 'lzf' or None; got {compression!r}.")
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._file = None
        try:
            self._create(h5netcdf, unit_coords, stimuli, attrs, dtype, compression, level, chunk_stimuli)
        except BaseException as exc:
            self.abort(exc)
            raise

    def _create(self, h5netcdf: Any, unit_coords: Mapping[str, np.ndarray], stimuli: pd.DataFrame,
                attrs: Mapping[str, Any], dtype: Any, compression: str | None, level: int,
                chunk_stimuli: int | None) -> None:
        n_stimuli = self.n_stimuli
        self._file = h5netcdf.File(self._tmp, "w", invalid_netcdf=True)
        f = self._file
        f.dimensions = {"stimulus": n_stimuli, "unit": self.n_units}
        for name, values in unit_coords.items():
            self._put(name, ("unit",), np.asarray(values), _COORD_ATTRS.get(name, {}))
        for name in stimuli.columns:
            self._put(name, ("stimulus",), stimuli[name].to_numpy(), {})
        shape = (n_stimuli, self.n_units)
        kwargs: dict[str, Any] = {"chunks": default_chunks(shape, np.dtype(dtype).itemsize, chunk_stimuli),
                                  "fletcher32": True}
        if compression:
            kwargs.update(compression=compression, shuffle=True)
            if compression == "gzip":
                kwargs["compression_opts"] = level
        self.responses = f.create_variable("responses", ("stimulus", "unit"), dtype=dtype, **kwargs)
        coord_names = list(unit_coords) + list(stimuli.columns)
        self.responses.attrs.update(
            {"long_name": "unit response", "units": "a.u.", "coordinates": " ".join(coord_names)}
        )
        all_attrs = {"Conventions": CONVENTIONS, **default_attrs(), **dict(attrs)}
        f.attrs.update(all_attrs)
        self._written = 0

    def _put(self, name: str, dims: tuple[str, ...], values: np.ndarray, attrs: Mapping[str, Any]) -> None:
        if values.dtype.kind in "OUS":
            var = self._file.create_variable(name, dims, dtype=h5py.string_dtype())
            var[:] = values.astype(str).astype(object)
        else:  # numeric coords carry a checksum like the responses (strings: the coords' SHA-256)
            var = self._file.create_variable(name, dims, data=values, fletcher32=bool(values.size))
        var.attrs.update(attrs)

    def write(self, batch: np.ndarray) -> None:
        """Append responses for the next ``len(batch)`` stimuli (shape (B, n_units))."""
        b = np.asarray(batch)
        if b.ndim != 2 or b.shape[1] != self.n_units:
            raise SheetError(f"batch must have shape (B, {self.n_units}); got {b.shape}.")
        stop = self._written + b.shape[0]
        if stop > self.n_stimuli:
            raise SheetError(f"writing {stop} stimuli into a Sheet sized for {self.n_stimuli}.")
        self.responses[self._written : stop, :] = b
        self._written = stop

    def close(self) -> Path:
        """Finish the file and move it into place (raises if not every stimulus was written)."""
        try:
            if self._written != self.n_stimuli:
                raise SheetError(f"only {self._written} of {self.n_stimuli} stimuli were written.")
            self._file.close()
            _stamp_digest(self._tmp)
        except BaseException as exc:
            self.abort(exc)
            raise
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop the temporary file; the destination is left untouched."""
        with contextlib.suppress(Exception):
            self._file.close()
        err = exc or RuntimeError("aborted")
        with contextlib.suppress(BaseException):
            self._ctx.__exit__(type(err), err, None)

    def __enter__(self) -> "SheetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)
