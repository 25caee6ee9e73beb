"""Sheet files: HDF5 through xarray's h5netcdf engine, written atomically.

A Sheet file is a netCDF4-flavoured HDF5 file, so ``xarray.open_dataset(path)``,
``h5py.File(path)`` and netCDF tools all read it. Every write goes to a temporary
file in the destination folder, is fsync'ed and then ``os.replace``'d over the
target: a crash mid-write leaves the previous file untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from .errors import SheetError
from .sheet import _COORD_ATTRS, default_attrs, validate_sheet

CONVENTIONS = "cortexsim-sheet-1"
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
    n_stim, n_units = shape[0], shape[1]
    rest = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    rows = min(n_stim, stim_chunk or 64)
    unit_chunk = max(1, min(n_units, CHUNK_BYTES // (itemsize * rest * rows)))
    stim_chunk = min(n_stim, stim_chunk) if stim_chunk else max(1, min(n_stim, CHUNK_BYTES // (itemsize * rest * unit_chunk)))
    return (stim_chunk, unit_chunk) + tuple(shape[2:])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and ``os.replace`` it in.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk for the write to be durable.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _encoding(ds: xr.Dataset, compression: str | None, level: int) -> dict[str, dict[str, Any]]:
    resp = ds["responses"]
    enc: dict[str, Any] = {"chunksizes": default_chunks(resp.shape, resp.dtype.itemsize)}
    if compression:
        enc.update(compression=compression, shuffle=True)
        if compression == "gzip":
            enc["compression_opts"] = level
    return {"responses": enc}


def save_sheet(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    compression: str | None = "gzip",
    level: int = 1,
    validate: bool = True,
) -> Path:
    """Write a Sheet to HDF5 (h5netcdf engine), chunked and compressed, atomically.

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
    """
    if validate:
        validate_sheet(ds, check_values=False)
    ds = ds.copy()
    ds.attrs.setdefault("Conventions", CONVENTIONS)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=_encoding(ds, compression, level), invalid_netcdf=True)
    return Path(path)


def open_sheet(
    path: str | os.PathLike,
    *,
    chunks: Mapping[str, int] | str | None = "auto",
    check_values: bool = False,
    allow_nonfinite: bool = False,
) -> xr.Dataset:
    """Open a Sheet file lazily (dask) and validate it.

    Parameters
    ----------
    path : path-like
        A file written by :func:`save_sheet` or ``SimulatedCortex.record(out=...)``.
    chunks : dict, "auto" or None
        dask chunks for ``responses`` (``None`` loads eagerly with numpy).
    check_values : bool
        Also scan ``responses`` for NaN/Inf (reads the whole array, chunk by chunk).
    allow_nonfinite : bool
        Passed to :func:`validate_sheet`.

    Raises
    ------
    SheetError
        The file is missing, truncated, not HDF5, not a cortexsim Sheet, or does
        not follow the schema.
    """
    p = Path(path)
    if not p.exists():
        raise SheetError(f"no Sheet file at {str(p)!r}; record one with `cortexsim record ... --out {p}`.")
    if p.is_dir():
        raise SheetError(f"{str(p)!r} is a folder, not a Sheet file.")
    try:
        with h5py.File(p, "r") as f:
            conventions = f.attrs.get("Conventions", b"")
            if isinstance(conventions, bytes):
                conventions = conventions.decode(errors="replace")
            has_responses = "responses" in f
    except OSError as exc:
        raise SheetError(
            f"{str(p)!r} is not a readable HDF5 file ({exc}). It may be truncated or corrupt "
            f"(e.g. a copy that did not finish); re-record or restore it."
        ) from exc
    if not str(conventions).startswith("cortexsim-sheet") or not has_responses:
        raise SheetError(
            f"{str(p)!r} is an HDF5 file but not a cortexsim Sheet (Conventions={conventions!r}, "
            f"responses present: {has_responses}). Open it with xarray or h5py directly."
        )
    try:
        ds = xr.open_dataset(p, engine="h5netcdf", chunks=chunks)
        # Coords are small (one value per unit/stimulus) and used everywhere: load them
        # eagerly so only `responses` stays lazy.
        ds = ds.assign_coords({name: ds[name].compute() for name in ds.coords})
    except Exception as exc:  # h5netcdf/xarray raise many types on damaged files
        raise SheetError(f"could not decode Sheet file {str(p)!r}: {exc}") from exc
    try:
        validate_sheet(ds, check_values=check_values, allow_nonfinite=allow_nonfinite)
    except OSError as exc:
        raise SheetError(f"reading the responses of {str(p)!r} failed ({exc}); the file is damaged.") from exc
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
        self.n_stimuli = n_stimuli
        self.n_units = len(unit_coords["unit_id"])
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._file = h5netcdf.File(self._tmp, "w", invalid_netcdf=True)
        f = self._file
        f.dimensions = {"stimulus": n_stimuli, "unit": self.n_units}
        for name, values in unit_coords.items():
            self._put(name, ("unit",), np.asarray(values), _COORD_ATTRS.get(name, {}))
        for name in stimuli.columns:
            self._put(name, ("stimulus",), stimuli[name].to_numpy(), {})
        shape = (n_stimuli, self.n_units)
        kwargs: dict[str, Any] = {"chunks": default_chunks(shape, np.dtype(dtype).itemsize, chunk_stimuli)}
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
        else:
            var = self._file.create_variable(name, dims, data=values)
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
