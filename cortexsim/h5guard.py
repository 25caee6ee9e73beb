"""Reading Sheet files safely: the HDF5 structure probe, structure checks and guarded lazy arrays.

The whole HDF5 structure is first read in a helper process (:mod:`cortexsim._h5probe`) with a
timeout (HDF5 can loop forever on some damaged metadata); :func:`check_structure` refuses
foreign files, unknown Sheet versions, external or virtual storage and datasets whose declared
size was never written; :func:`wrap_lazy` puts every data variable behind a guard that turns
any read failure (a checksum mismatch in a damaged chunk) into a :class:`~cortexsim.SheetError`
naming the file and the variable. :func:`cortexsim.io.open_sheet` uses all three.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import SheetError
from .sheet import default_attrs

CONVENTIONS = "cortexsim-sheet-1"
#: Conventions versions this cortexsim reads.
KNOWN_CONVENTIONS: tuple[str, ...] = (CONVENTIONS,)
#: Seconds the structure probe of :func:`cortexsim.io.open_sheet` may take (env ``CORTEXSIM_OPEN_TIMEOUT``).
OPEN_TIMEOUT_S = 60.0


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


def probe_structure(path: Path) -> dict[str, Any]:
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


def check_structure(p: Path, info: dict[str, Any]) -> None:
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



def wrap_lazy(ds: xr.Dataset, p: Path, chunks: Any) -> xr.Dataset:
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

