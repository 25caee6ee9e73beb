"""Read the whole HDF5 structure of a file (no data), as plain JSON: the probe behind ``open_sheet``.

HDF5 can loop forever on some damaged metadata (zeroed attribute / dimension-scale
blocks of files written without metadata checksums). :func:`cortexsim.io.open_sheet`
therefore runs :func:`probe` in a helper process (this file run as a script, which
imports only h5py) with a timeout before it opens the file itself: once every object
header, attribute and chunk index has been read there, reading it again here cannot hang.
The probe also reports what the integrity checks need (storage layout, filters, chunks
written, external / virtual storage).

Run as ``python _h5probe.py``: reads one path per line on stdin, writes one JSON line each.
"""
from __future__ import annotations

import json
import math
import os
import sys
from typing import Any


def _attr_summary(obj: Any) -> dict[str, str]:
    out = {}
    for key in obj.attrs:  # reading every attribute is the point: it is where HDF5 can spin
        value = obj.attrs[key]
        out[str(key)] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)[:200]
    return out


def probe(path: str) -> dict[str, Any]:
    """Structure of the HDF5 file at ``path``: root attrs and, per dataset, layout and storage.

    Returns
    -------
    dict with ``file_size``, ``attrs`` (root attributes as str) and ``datasets``: name ->
    ``shape``, ``dtype``, ``chunks``, ``filters``, ``external``, ``virtual``, ``chunks_expected``,
    ``chunks_written``, ``storage_bytes``, ``max_end`` (largest byte offset the data reaches).
    """
    import h5py

    info: dict[str, Any] = {"file_size": os.path.getsize(path), "datasets": {}, "groups": []}
    with h5py.File(path, "r") as f:
        info["attrs"] = _attr_summary(f)

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group):
                info["groups"].append(name)
                _attr_summary(obj)
                return
            if not isinstance(obj, h5py.Dataset):
                return
            d: dict[str, Any] = {"shape": list(obj.shape or ()), "dtype": str(obj.dtype),
                                 "chunks": None if obj.chunks is None else list(obj.chunks),
                                 "filters": sorted(obj._filters), "external": bool(obj.external),
                                 "virtual": bool(obj.is_virtual), "attrs": _attr_summary(obj)}
            if not d["external"] and not d["virtual"]:
                dsid = obj.id
                d["storage_bytes"] = int(dsid.get_storage_size())
                if obj.chunks is not None:
                    d["chunks_expected"] = math.prod(math.ceil(s / c) for s, c in zip(obj.shape, obj.chunks))
                    ends: list[int] = []
                    if hasattr(dsid, "chunk_iter"):  # one pass over the chunk index (HDF5 >= 1.12.3)
                        dsid.chunk_iter(lambda c: ends.append(int(c.byte_offset) + int(c.size)))
                    else:  # pragma: no cover - older HDF5
                        ends = [int(dsid.get_chunk_info(i).byte_offset) + int(dsid.get_chunk_info(i).size)
                                for i in range(dsid.get_num_chunks())]
                    d["chunks_written"] = len(ends)
                    d["max_end"] = max(ends, default=0)
                else:
                    offset = dsid.get_offset()
                    d["max_end"] = 0 if offset is None else int(offset) + d["storage_bytes"]
            info["datasets"][name] = d

        f.visititems(visit)
    return info


def serve() -> None:
    """Answer one JSON line per path read from stdin (the helper-process loop)."""
    for line in sys.stdin:
        try:
            out: dict[str, Any] = {"ok": probe(line.rstrip("\n"))}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises SheetError
            out = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
