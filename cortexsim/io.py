"""Sheet files: HDF5 through xarray's h5netcdf engine, written atomically, checked on read.

A Sheet file is a netCDF4-flavoured HDF5 file, so ``xarray.open_dataset(path)``,
``h5py.File(path)`` and netCDF tools all read it.

Writing: every write goes to a temporary file in the destination folder
(``.<name>.<host>.<pid>.<random>.tmp``, permissions from the umask), is fsync'ed and then
``os.replace``'d over the target: a crash mid-write leaves the previous file untouched, the
next write of the same target removes temporary files whose writer process is gone, and
Ctrl-C aborts the write (temporary file removed, ``KeyboardInterrupt`` re-raised). Every
numeric variable, coords included, carries HDF5's Fletcher-32 checksum per chunk; string
coords (which HDF5 keeps outside any checksummed chunk) are covered by a SHA-256 of all
coords in the ``cortexsim_coords_sha256`` attribute.

Reading (:func:`open_sheet`): the whole HDF5 structure is first read in a helper process
with a timeout (HDF5 can loop forever on some damaged metadata), refusing external or
virtual storage and datasets whose declared size was never written; then xarray opens it,
the coords are verified against their SHA-256, and ``responses`` stays lazy behind a guard
that turns any read failure (a checksum mismatch in a damaged chunk) into a
:class:`~cortexsim.SheetError` naming the file and the variable.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
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
#: Conventions versions this cortexsim reads.
KNOWN_CONVENTIONS: tuple[str, ...] = (CONVENTIONS,)
#: Root attribute holding the SHA-256 of the coords (see :func:`coords_digest`).
DIGEST_ATTR = "cortexsim_coords_sha256"
#: Target size of one compressed HDF5 chunk of ``responses`` (bytes).
CHUNK_BYTES = 4 * 2**20
#: Seconds the structure probe of :func:`open_sheet` may take (env ``CORTEXSIM_OPEN_TIMEOUT``).
OPEN_TIMEOUT_S = 60.0


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


# ---------------------------------------------------------------------- atomic writes
_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


#: Temporary files this process is writing now, and ones it gave up (removed again at exit:
#: a dask worker thread still finishing a chunk can re-create a file after the abort removed it).
_ACTIVE: set[Path] = set()
_ABANDONED: set[Path] = set()


@atexit.register
def _remove_abandoned() -> None:
    for p in list(_ABANDONED):
        with contextlib.suppress(OSError):
            p.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or cannot tell): leave its file alone
    return True


def stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Temporary files of earlier writes of ``path`` whose writer process no longer runs.

    Only files named by this module's writer on this host are considered; one whose
    process is alive (a write in progress) is never listed.
    """
    target = Path(path)
    if not target.parent.is_dir():
        return []
    out = []
    host = _host()
    for p in target.parent.iterdir():
        m = _TMP_NAME.match(p.name)
        if not m or m["target"] != target.name or m["host"] != host:
            continue
        pid = int(m["pid"])
        if (p not in _ACTIVE) if pid == os.getpid() else not _pid_alive(pid):
            out.append(p)
    return out


class _SigintGuard:
    """While active (main thread only), remember a Ctrl-C even if a C library swallows the
    ``KeyboardInterrupt``, so the write can still be aborted before the rename."""

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None
        self._active = False

    def __enter__(self) -> "_SigintGuard":
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError, TypeError):
                self._previous = signal.getsignal(signal.SIGINT)
                signal.signal(signal.SIGINT, self._handle)
                self._active = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        if callable(self._previous):
            self._previous(signum, frame)
        else:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._active and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self._previous)
        self._active = False


def writable_path(path: str | os.PathLike, kind: str = "file", what: str = "output") -> Path:
    """Check (before any work) that ``path`` can be written, creating the folders it needs.

    ``kind="file"``: ``path`` must not be a directory and its folder must accept a new file;
    ``kind="dir"``: ``path`` must be (or become) a writable directory. A probe file is created
    and removed, so read-only file systems, ``/proc`` and permissions are caught too.

    Raises
    ------
    OutputError
        Saying what is in the way (a file, a directory, no permission) and what to pass instead.
    """
    from .errors import OutputError

    target = Path(path)
    folder = target if kind == "dir" else target.parent
    if kind == "file" and target.is_dir():
        raise OutputError(f"{what} {str(target)!r} is a directory; give a file name inside it, "
                          f"e.g. {str(target / 'out.h5')!r}.")
    if kind == "dir" and target.exists() and not target.is_dir():
        raise OutputError(f"{what} {str(target)!r} is a file, not a folder; give a folder name (it is created).")
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"{what} {str(target)!r} cannot be created: {str(blocker)!r} is a file, not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{target.name or 'out'}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.probe"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write {what} {str(target)!r}: {exc.strerror or exc} "
                          f"({str(folder)!r}); choose a writable location.") from None
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and ``os.replace`` it in.

    On any exception (Ctrl-C included, even one a C library swallowed) the temporary file
    is removed, ``path`` is left as it was and the exception propagates. Temporary files
    of earlier writes of ``path`` whose process is gone are removed first. The new file
    gets the permissions the umask gives (not mkstemp's 0600), so a lab can share it.
    """
    target = Path(path)
    if target.is_dir():
        from .errors import OutputError

        raise OutputError(f"cannot write {str(target)!r}: it is a directory; give a file name inside it.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from .errors import OutputError

        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}; choose a writable location.") from None
    for stale in stale_temp_files(target):
        with contextlib.suppress(OSError):
            stale.unlink()
    while True:
        tmp = target.parent / f".{target.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # umask applies
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    guard = _SigintGuard()
    _ACTIVE.add(tmp)
    try:
        with guard:
            yield tmp
            if guard.hit:
                raise KeyboardInterrupt
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _ABANDONED.add(tmp)
        raise
    finally:
        _ACTIVE.discard(tmp)


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk for the write to be durable.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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


# ---------------------------------------------------------------------- reading
class _Prober:
    """A helper process running :mod:`cortexsim._h5probe`, reused across opens, killed on a timeout."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        script = Path(__file__).with_name("_h5probe.py")
        return subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def probe(self, path: Path, timeout: float) -> dict[str, Any]:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(str(path) + "\n")
                proc.stdin.flush()
            except OSError:  # the helper died: start another once
                self.close()
                proc = self._proc = self._start()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(str(path) + "\n")
                proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:
                self.close()
                raise SheetError(
                    f"reading the HDF5 metadata of {str(path)!r} did not finish within {timeout:g} s: HDF5 loops "
                    f"on some damaged metadata (e.g. zeroed attribute or dimension blocks), so the file is corrupt; "
                    f"restore or re-record it. (On a very slow file system raise CORTEXSIM_OPEN_TIMEOUT.)"
                )
            line = proc.stdout.readline()
            if not line:
                self.close()
                raise SheetError(f"reading the HDF5 metadata of {str(path)!r} crashed the HDF5 library; "
                                 f"the file is corrupt. Restore or re-record it.")
            return json.loads(line)

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.kill()
                self._proc.wait(timeout=5)
            for stream in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(Exception):
                    stream.close()
            self._proc = None


_PROBER = _Prober()
atexit.register(_PROBER.close)  # no helper process (or its pipes) outlives the interpreter


def _probe(path: Path) -> dict[str, Any]:
    """The file's structure (:func:`cortexsim._h5probe.probe`), read with a timeout where possible."""
    from . import _h5probe

    timeout = float(os.environ.get("CORTEXSIM_OPEN_TIMEOUT", OPEN_TIMEOUT_S))
    if os.name == "posix" and os.environ.get("CORTEXSIM_OPEN_PROBE", "process") != "inprocess":
        try:
            answer = _PROBER.probe(path, timeout)
        except OSError:  # cannot start a helper process here: read in-process (no hang guard)
            answer = None
        if answer is not None:
            if "error" in answer:
                raise SheetError(
                    f"{str(path)!r} is not a readable HDF5 file ({answer['error']}). It may be truncated or "
                    f"corrupt (e.g. a copy that did not finish, or a write that was killed); re-record or restore it."
                )
            return answer["ok"]
    try:
        return _h5probe.probe(str(path))
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError/KeyError/RuntimeError on damage
        raise SheetError(
            f"{str(path)!r} is not a readable HDF5 file ({type(exc).__name__}: {exc}). It may be truncated or "
            f"corrupt (e.g. a copy that did not finish, or a write that was killed); re-record or restore it."
        ) from exc


def _check_structure(p: Path, info: dict[str, Any]) -> None:
    """Refuse foreign, unsafe or incompletely written files from their probed structure."""
    conventions = info["attrs"].get("Conventions", "")
    datasets = info["datasets"]
    if not str(conventions).startswith("cortexsim-sheet") or "responses" not in datasets:
        raise SheetError(
            f"{str(p)!r} is an HDF5 file but not a cortexsim Sheet (Conventions={conventions!r}, "
            f"responses present: {'responses' in datasets}). Open it with xarray or h5py directly."
        )
    if conventions not in KNOWN_CONVENTIONS:
        raise SheetError(
            f"{str(p)!r} follows Sheet conventions {conventions!r}, which this cortexsim "
            f"({default_attrs()['cortexsim_version']}) does not know (it reads {', '.join(KNOWN_CONVENTIONS)}); "
            f"upgrade cortexsim, or re-save the Sheet with the version that wrote it."
        )
    for name, d in datasets.items():
        if d["external"] or d["virtual"]:
            kind = "external storage (data in another file)" if d["external"] else "a virtual dataset"
            raise SheetError(
                f"{str(p)!r}: variable {name!r} uses {kind}; Sheets keep all data inside the file, and "
                f"following it would let a file make cortexsim read arbitrary local files. Refused."
            )
        if d["shape"] and int(np.prod(d["shape"], dtype=np.int64)) == 0:
            continue
        if d.get("chunks_expected") is not None and d["chunks_written"] < d["chunks_expected"]:
            raise SheetError(
                f"{str(p)!r}: variable {name!r} declares shape {tuple(d['shape'])} but only "
                f"{d['chunks_written']} of its {d['chunks_expected']} chunks were ever written; the file is "
                f"incomplete (a killed write?) or damaged. Re-record it."
            )
        scale_only = d["attrs"].get("CLASS") == "DIMENSION_SCALE" and name in ("stimulus", "unit", "time", "repeat")
        if d["chunks"] is None and d["storage_bytes"] == 0 and not scale_only:
            raise SheetError(f"{str(p)!r}: variable {name!r} was never written (no storage); the file is incomplete.")
        if d.get("max_end", 0) > info["file_size"]:
            raise SheetError(
                f"{str(p)!r}: the data of {name!r} ends at byte {d['max_end']} but the file has "
                f"{info['file_size']} bytes; it is truncated. Restore or re-record it."
            )


class _GuardedArray:
    """Lazy, sliceable view of one variable that turns read failures into a SheetError."""

    def __init__(self, var: xr.Variable, path: Path, name: str) -> None:
        self._var, self._path, self._name = var, path, name
        self.shape, self.dtype, self.ndim = var.shape, var.dtype, var.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self._var[key].values)
        except SheetError:
            raise
        except Exception as exc:  # noqa: BLE001 - h5py/HDF5 raise OSError, RuntimeError, ValueError ...
            raise SheetError(
                f"reading {self._name!r} of Sheet file {str(self._path)!r} failed ({type(exc).__name__}: {exc}); "
                f"the file is damaged there (a chunk failing its checksum or decompression). Restore or "
                f"re-record it."
            ) from exc


def _dask_chunks(chunks: Mapping[str, Any] | str | int, var: xr.Variable, preferred: tuple[int, ...] | None) -> Any:
    from dask.array.core import normalize_chunks

    if isinstance(chunks, Mapping):
        unknown = set(chunks) - set(var.dims)
        if unknown:
            raise SheetError(f"chunks names dims {sorted(unknown)} that 'responses' lacks (dims {var.dims}).")
        spec: Any = tuple(chunks.get(d, "auto") for d in var.dims)
    else:
        spec = chunks
    return normalize_chunks(spec, var.shape, dtype=var.dtype, previous_chunks=preferred)


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


def _wrap_lazy(ds: xr.Dataset, p: Path, chunks: Any) -> xr.Dataset:
    """Put every data variable behind :class:`_GuardedArray` (dask-chunked, or loaded when chunks is None)."""
    import dask.array as da

    out = {}
    for name, var in ds.data_vars.items():
        guarded = _GuardedArray(var.variable, p, str(name))
        if chunks is None:
            data: Any = guarded[(slice(None),) * var.ndim]
        else:
            preferred = var.encoding.get("chunksizes") or var.encoding.get("preferred_chunks")
            if isinstance(preferred, dict):
                preferred = tuple(preferred.get(d, s) for d, s in zip(var.dims, var.shape))
            data = da.from_array(guarded, chunks=_dask_chunks(chunks, var.variable, preferred),
                                 name=f"open_sheet-{name}-{hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:8]}"
                                      f"-{os.stat(p).st_mtime_ns}",
                                 lock=False, asarray=True, meta=np.empty((0,) * var.ndim, dtype=var.dtype))
        new = xr.Variable(var.dims, data, var.attrs)
        new.encoding = dict(var.encoding)
        out[name] = new
    return ds.assign(out)


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
