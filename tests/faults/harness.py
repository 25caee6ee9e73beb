"""Fault harness: damaged Sheet files, killed writers and CLI invocations, each classified.

Used by the fault suite (``tests/faults/test_*.py``) and runnable as a script to print
the counts the hardening issue asks for::

    python tests/faults/harness.py            # full run: file fuzz, flip-a-byte, CLI
    (kill-and-rewrite: tests/faults/test_kill.py::kill_and_rewrite)

Outcomes of opening a damaged file and reading everything in it:

* ``error``   — a :class:`cortexsim.SheetError` (the wanted result for damage);
* ``correct`` — the file opened and every value, coord and attr equals the original;
* ``silent``  — it opened and returned *different* data (silent corruption);
* ``raw``     — any other exception escaped (e.g. ``KeyError`` from h5py);
* ``hang``    — the reader made no progress within the timeout.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUTCOMES = ("error", "correct", "silent", "raw", "hang")


# ---------------------------------------------------------------------- a small real Sheet
def sample_sheet(n_stim: int = 24, n_units: int = 48, seed: int = 0):
    """A Sheet with every kind of coord: two areas (str), ints, float positions, str and int labels."""
    import cortexsim as cx

    rng = np.random.default_rng(seed)
    half = n_units // 2
    row, col = np.divmod(np.arange(n_units) % half, 6)
    return cx.make_sheet(
        rng.normal(size=(n_stim, n_units)).astype(np.float32),
        x_mm=col * 0.5 + np.repeat([0.0, 10.0], [half, n_units - half]),
        y_mm=row * 0.5,
        area=np.repeat(["V1", "IT"], [half, n_units - half]),
        layer=np.repeat(["layer2.0", "layer4.1"], [half, n_units - half]),
        row=row, col=col,
        stimuli={"domain": np.resize(["faces", "places", "objects"], n_stim), "numerosity": np.arange(n_stim) % 4 + 1},
        # a fixed creation time: files written a second apart must compare equal
        attrs={"model": "fault-harness", "layout": json.dumps({"V1": "grid", "IT": "grid"}),
               "created": "2026-01-01T00:00:00+00:00"},
    )


def write_sheet(path: Path, how: str = "save", compression: str | None = "gzip") -> Path:
    """Write :func:`sample_sheet` with ``save_sheet`` (``how="save"``) or the streaming ``SheetWriter``."""
    import pandas as pd

    import cortexsim as cx
    from cortexsim.sheet import UNIT_COORDS

    ds = sample_sheet()
    if how == "save":
        return cx.save_sheet(ds, path, compression=compression)
    table = pd.DataFrame({k: ds[k].values for k in ("stimulus_id", "domain", "numerosity")})
    coords = {k: ds[k].values for k in UNIT_COORDS}
    attrs = {k: v for k, v in ds.attrs.items() if k not in ("Conventions",)}
    with cx.SheetWriter(path, ds.sizes["stimulus"], coords, table, attrs, compression=compression,
                        chunk_stimuli=8) as w:
        for i in range(0, ds.sizes["stimulus"], 8):
            w.write(ds.responses.values[i:i + 8])
    return Path(path)


# ---------------------------------------------------------------------- where the data lies
def data_regions(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges (offset, length) of every dataset's stored data, and of the global heaps.

    Chunked datasets give one range per chunk; vlen strings keep their characters in
    global heap collections (``GCOL``), listed under ``"<global heap>"``.
    """
    import h5py

    out: dict[str, list[tuple[int, int]]] = {}
    with h5py.File(path, "r") as f:
        for name, obj in f.items():
            if not isinstance(obj, h5py.Dataset):
                continue
            ranges = []
            if obj.chunks is not None:
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    ranges.append((int(info.byte_offset), int(info.size)))
            elif obj.id.get_offset() is not None:
                ranges.append((int(obj.id.get_offset()), int(obj.id.get_storage_size())))
            out[name] = ranges
    raw = Path(path).read_bytes()
    heaps, start = [], raw.find(b"GCOL")
    while start >= 0:
        size = struct.unpack("<Q", raw[start + 8 : start + 16])[0]
        if 0 < size < len(raw):
            heaps.append((start + 16, int(size) - 16))
        start = raw.find(b"GCOL", start + 4)
    if heaps:
        out["<global heap>"] = heaps
    return out


def flip_cases(path: Path, n_per_var: int = 12, seed: int = 0) -> list[tuple[str, int, int]]:
    """(variable, byte offset, xor mask) cases spread over every variable's stored bytes."""
    rng = np.random.default_rng(seed)
    cases = []
    for name, ranges in sorted(data_regions(path).items()):
        flat = [(o, n) for o, n in ranges if n > 0]
        if not flat:
            continue
        sizes = np.array([n for _, n in flat])
        for _ in range(n_per_var):
            i = rng.choice(len(flat), p=sizes / sizes.sum())
            cases.append((name, int(flat[i][0] + rng.integers(flat[i][1])), int(1 << rng.integers(8))))
    return cases


def damage(src: Path, dst: Path, kind: str, arg: int, extra: int = 0) -> Path:
    """Write a damaged copy of ``src``: ``flip`` (offset, xor mask), ``zero4k`` (block index),
    ``truncate`` (new length), ``random`` (offset, seed: 64 random bytes)."""
    raw = bytearray(Path(src).read_bytes())
    if kind == "flip":
        raw[arg] ^= extra or 0x10
    elif kind == "zero4k":
        raw[arg * 4096 : (arg + 1) * 4096] = bytes(len(raw[arg * 4096 : (arg + 1) * 4096]))
    elif kind == "truncate":
        del raw[arg:]
    elif kind == "random":
        chunk = np.random.default_rng(extra).bytes(64)
        raw[arg : arg + 64] = chunk[: len(raw[arg : arg + 64])]
    else:
        raise ValueError(kind)
    Path(dst).write_bytes(bytes(raw))
    return Path(dst)


# ---------------------------------------------------------------------- classifying one file
def _equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a.astype(str), b.astype(str)))


def classify(path: Path, reference) -> str:
    """Open ``path`` with ``open_sheet``, read everything, compare with ``reference`` (a loaded Sheet)."""
    import cortexsim as cx

    try:
        ds = cx.open_sheet(path)
        ds = ds.load()
        same = set(ds.variables) == set(reference.variables) and all(
            _equal(ds[k].values, reference[k].values) for k in reference.variables)
        same = same and json.dumps(ds.attrs, default=str, sort_keys=True) == json.dumps(
            reference.attrs, default=str, sort_keys=True)
        return "correct" if same else "silent"
    except cx.SheetError:
        return "error"
    except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
        return f"raw:{type(exc).__name__}"


def _worker(listing: Path, reference: Path, results: Path) -> None:
    import cortexsim as cx

    ref = cx.open_sheet(reference).load()
    with open(results, "a") as out:
        for line in listing.read_text().splitlines():
            out.write(json.dumps([line, classify(Path(line), ref)]) + "\n")
            out.flush()


def classify_many(paths: Sequence[Path], reference: Path, timeout: float = 20.0,
                  open_timeout: float = 2.0) -> dict[str, str]:
    """Classify files in a worker subprocess; a file the reader hangs on is ``hang`` and the worker restarts."""
    todo = [str(p) for p in paths]
    done: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        while todo:
            listing, results = Path(tmp) / "todo.txt", Path(tmp) / "results.jsonl"
            listing.write_text("\n".join(todo))
            results.write_text("")
            # open_sheet's own guard gives up on looping HDF5 metadata after CORTEXSIM_OPEN_TIMEOUT;
            # `timeout` here only catches hangs that guard misses.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
                   "CORTEXSIM_OPEN_TIMEOUT": str(open_timeout)}
            proc = subprocess.Popen([sys.executable, "-c", "import sys, harness; from pathlib import Path; "
                                     "harness._worker(*map(Path, sys.argv[1:]))", str(listing), str(reference),
                                     str(results)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            seen, last = 0, None
            while True:
                try:
                    proc.wait(timeout=timeout)
                    break
                except subprocess.TimeoutExpired:
                    n = len(results.read_text().splitlines())
                    if n == seen:  # no progress over a whole timeout: hung on the next file
                        proc.kill()
                        proc.wait()
                        break
                    seen = n
            for line in results.read_text().splitlines():
                name, outcome = json.loads(line)
                done[name] = outcome
            todo = [p for p in todo if p not in done]
            if todo and proc.returncode not in (0, None):
                done[todo[0]] = "hang" if proc.returncode == -9 else f"crash:{proc.returncode}"
                todo = todo[1:]
    return done


def count(outcomes: Iterable[str], kinds: Sequence[str] = OUTCOMES) -> dict[str, int]:
    """Counts per outcome kind (``raw:KeyError`` counts as ``raw``)."""
    out = {k: 0 for k in kinds}
    for o in outcomes:
        key = o.split(":")[0]
        out[key] = out.get(key, 0) + 1
    return out


# ---------------------------------------------------------------------- the runs behind the counts
def file_fuzz(folder: Path, seed: int = 0, n_random: int = 60) -> dict[str, str]:
    """Truncations, zeroed 4 KiB blocks and random 64-byte overwrites of both writers' files."""
    rng = np.random.default_rng(seed)
    cases = []
    for how in ("save", "stream"):
        src = write_sheet(folder / f"ref_{how}.h5", how)
        size = src.stat().st_size
        for i, length in enumerate(np.unique(np.linspace(0, size - 1, 24).astype(int))):
            cases.append(damage(src, folder / f"{how}_trunc{i}.h5", "truncate", int(length)))
        for block in range((size + 4095) // 4096):
            cases.append(damage(src, folder / f"{how}_zero{block}.h5", "zero4k", block))
        for i in range(n_random):
            cases.append(damage(src, folder / f"{how}_rand{i}.h5", "random", int(rng.integers(size)), i))
    ref = folder / "ref_save.h5"
    return classify_many(cases, ref)


def flip_fuzz(folder: Path, n_per_var: int = 12, seed: int = 0) -> dict[str, str]:
    """One flipped bit in the stored bytes of each variable (data and coords), both writers."""
    cases = []
    for how in ("save", "stream"):
        src = write_sheet(folder / f"ref_{how}.h5", how)
        for i, (name, offset, mask) in enumerate(flip_cases(src, n_per_var, seed)):
            cases.append(damage(src, folder / f"{how}_flip{i}_{name.strip('<>').replace(' ', '_')}.h5",
                                "flip", offset, mask))
    return classify_many(cases, folder / "ref_save.h5")


# ---------------------------------------------------------------------- bad command lines
def cli_fixtures(folder: Path) -> dict[str, Path]:
    """Files the bad invocations point at: a Sheet, weights of several wrong kinds, bad stimuli."""
    import torch
    import torchvision

    folder = Path(folder)
    f = {"sheet": write_sheet(folder / "sheet.h5"), "dir": folder / "adir", "file": folder / "afile.txt"}
    f["dir"].mkdir(exist_ok=True)
    f["file"].write_text("not a folder")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=5)
    torch.save(net.state_dict(), folder / "good.pt")
    torch.save(torch.zeros(3), folder / "tensor.pt")  # loads, but is no state dict
    torch.save(net, folder / "whole_model.pt")  # a pickled nn.Module: refused by weights_only=True
    torch.save(torchvision.models.squeezenet1_0(weights=None, num_classes=5).state_dict(), folder / "squeezenet.pt")
    torch.save(torchvision.models.resnet34(weights=None, num_classes=5).state_dict(), folder / "resnet34.pt")
    (folder / "garbage.pt").write_bytes(b"\x00garbage" * 10)
    np.save(folder / "x.npy", np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32))
    np.save(folder / "x2d.npy", np.zeros((4, 3), np.float32))
    np.save(folder / "xint.npy", np.zeros((4, 3, 32, 32), np.int64))
    (folder / "corrupt.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    np.save(folder / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return {**f, **{p.stem: p for p in folder.iterdir() if p.suffix in (".pt", ".npy")}}


def cli_cases(f: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(name, argv) of bad invocations of every subcommand; each must exit 2 with a one-line error."""
    sheet, out = str(f["sheet"]), str(f["dir"].parent / "out")
    rec = ["record", "--model", "resnet18", "--num-classes", "5", "--areas", "IT=layer4.1", "--stimuli", str(f["x"]),
           "--image-size", "32"]
    return [
        # --out unusable: under a file, an existing directory where a file is expected, /proc
        ("record --out under a file", rec + ["--out", str(f["file"]) + "/s.h5"]),
        ("record --out is a directory", rec + ["--out", str(f["dir"])]),
        ("record --out in /proc", rec + ["--out", "/proc/cortexsim_test/s.h5"]),
        ("analyze --out is a file", ["analyze", sheet, "--out", str(f["file"])]),
        ("analyze --out under a file", ["analyze", sheet, "--out", str(f["file"]) + "/res"]),
        ("analyze --out in /proc", ["analyze", sheet, "--out", "/proc/cortexsim_test"]),
        ("train --out is a file", ["train", "--steps", "1", "--out", str(f["file"])]),
        ("train --out in /proc", ["train", "--steps", "1", "--out", "/proc/cortexsim_test"]),
        ("demo --out is a file", ["demo", "--out", str(f["file"])]),
        ("preview --out is a directory", ["stimuli", "preview", "gratings", "--out", str(f["dir"])]),
        ("preview --out under a file", ["stimuli", "preview", "gratings", "--out", str(f["file"]) + "/g.png"]),
        # record --weights
        ("record --weights missing", rec + ["--weights", str(f["dir"] / "nope.pt"), "--out", out + "/a.h5"]),
        ("record --weights a directory", rec + ["--weights", str(f["dir"]), "--out", out + "/a.h5"]),
        ("record --weights a tensor", rec + ["--weights", str(f["tensor"]), "--out", out + "/a.h5"]),
        ("record --weights a whole model", rec + ["--weights", str(f["whole_model"]), "--out", out + "/a.h5"]),
        ("record --weights of squeezenet", rec + ["--weights", str(f["squeezenet"]), "--out", out + "/a.h5"]),
        ("record --weights of resnet34", rec + ["--weights", str(f["resnet34"]), "--out", out + "/a.h5"]),
        ("record --weights garbage", rec + ["--weights", str(f["garbage"]), "--out", out + "/a.h5"]),
        ("record --device cuda:7", rec + ["--device", "cuda:7", "--out", out + "/a.h5"]),
        ("record --device nonsense", rec + ["--device", "gpu0", "--out", out + "/a.h5"]),
        ("record --batch-size 0", rec + ["--batch-size", "0", "--out", out + "/a.h5"]),
        ("record --image-size 0", rec[:-1] + ["0", "--out", out + "/a.h5"]),
        # stimuli
        ("record corrupt .npy", rec[:8] + [str(f["corrupt"]), "--out", out + "/a.h5"]),
        ("record 2-D .npy", rec[:8] + [str(f["x2d"]), "--out", out + "/a.h5"]),
        ("record int .npy", rec[:8] + [str(f["xint"]), "--out", out + "/a.h5"]),
        ("record object .npy", rec[:8] + [str(f["obj"]), "--out", out + "/a.h5"]),
        ("record unknown set", rec[:8] + ["no_such_set", "--out", out + "/a.h5"]),
        ("preview --nrow 0", ["stimuli", "preview", "gratings", "--nrow", "0", "--out", out + "/g.png"]),
        ("preview --nrow -1", ["stimuli", "preview", "gratings", "--nrow", "-1", "--out", out + "/g.png"]),
        ("preview --n 0", ["stimuli", "preview", "gratings", "--n", "0", "--out", out + "/g.png"]),
        ("preview unknown extension", ["stimuli", "preview", "gratings", "--out", out + "/g.xyz"]),
        ("preview --image-size 0", ["stimuli", "preview", "gratings", "--image-size", "0", "--out", out + "/g.png"]),
        ("preview unknown set", ["stimuli", "preview", "nope", "--out", out + "/g.png"]),
        ("preview floc without --path", ["stimuli", "preview", "floc", "--out", out + "/g.png"]),
        # train
        ("train --image-size 3", ["train", "--steps", "1", "--image-size", "3", "--out", out + "/t1"]),
        ("train --lr inf", ["train", "--steps", "1", "--lr", "inf", "--out", out + "/t2"]),
        ("train --lr nan", ["train", "--steps", "1", "--lr", "nan", "--out", out + "/t3"]),
        ("train --lam -1", ["train", "--steps", "1", "--lam", "-1", "--out", out + "/t4"]),
        ("train --steps 0", ["train", "--steps", "0", "--out", out + "/t5"]),
        ("train --method nope", ["train", "--method", "nope", "--steps", "1", "--out", out + "/t6"]),
        ("train --arch nope", ["train", "--arch", "nope", "--steps", "1", "--out", out + "/t7"]),
        ("train --data missing", ["train", "--data", str(f["dir"] / "nope"), "--steps", "1", "--out", out + "/t8"]),
        ("train --resume nothing", ["train", "--resume", "--out", str(f["dir"] / "empty_run")]),
        ("train --device cuda:7", ["train", "--steps", "1", "--device", "cuda:7", "--out", out + "/t9"]),
        # demo
        ("demo --epochs 0", ["demo", "--epochs", "0", "--out", out + "/demo"]),
        ("demo --seed -1", ["demo", "--seed", "-1", "--out", out + "/demo"]),
        ("demo --only bogus", ["demo", "--only", "bogus", "--out", out + "/demo"]),
        ("demo --device cuda:7", ["demo", "--device", "cuda:7", "--out", out + "/demo"]),
        ("demo --lam nan", ["demo", "--lam", "nan", "--out", out + "/demo"]),
        ("demo --out under a file", ["demo", "--out", str(f["file"]) + "/demo"]),
        # info / analyze
        ("info missing file", ["info", str(f["dir"] / "nope.h5")]),
        ("info of a directory", ["info", str(f["dir"])]),
        ("info of weights", ["info", str(f["good"])]),
        ("analyze --what ''", ["analyze", sheet, "--what", "", "--out", out + "/an1"]),
        ("analyze --what nonsense", ["analyze", sheet, "--what", "bogus", "--out", out + "/an2"]),
        ("analyze --threshold nan", ["analyze", sheet, "--threshold", "nan", "--out", out + "/an3"]),
        ("analyze --threshold inf", ["analyze", sheet, "--threshold", "inf", "--out", out + "/an3"]),
        ("analyze --by missing", ["analyze", sheet, "--by", "category", "--out", out + "/an4"]),
        ("analyze --target missing", ["analyze", sheet, "--target", "cars", "--out", out + "/an5"]),
        ("analyze --n-perm 0", ["analyze", sheet, "--n-perm", "0", "--out", out + "/an6"]),
        ("analyze --radius-mm -1", ["analyze", sheet, "--radius-mm", "-1", "--out", out + "/an7"]),
        ("analyze --k 0", ["analyze", sheet, "--k", "0", "--out", out + "/an8"]),
        ("analyze --formats bmp", ["analyze", sheet, "--formats", "bmp", "--out", out + "/an9"]),
        ("analyze --area nope", ["analyze", sheet, "--area", "V9", "--out", out + "/an10"]),
        ("analyze not a sheet", ["analyze", str(f["good"]), "--out", out + "/an11"]),
        # export / compare: --out checked before any work
        ("export --out under a file", ["export", sheet, "--area", "IT", "--out", str(f["file"]) + "/x"]),
        ("export --out in /proc", ["export", sheet, "--area", "IT", "--out", "/proc/cortexsim_test"]),
        ("compare --out under a file", ["compare", sheet, sheet, "--area", "IT", "--out", str(f["file"]) + "/x"]),
        ("compare --out in /proc", ["compare", sheet, sheet, "--area", "IT", "--out", "/proc/cortexsim_test"]),
        # record --run / --areas
        ("record --run without config", ["record", "--run", str(f["dir"]), "--stimuli", "gratings",
                                         "--out", out + "/r.h5"]),
        ("record --areas bad module", rec[:6] + ["IT=layer9"] + rec[7:] + ["--out", out + "/a.h5"]),
        ("record --areas malformed", rec[:6] + ["IT"] + rec[7:] + ["--out", out + "/a.h5"]),
        ("record --model unknown", ["record", "--model", "nonet", *rec[3:], "--out", out + "/a.h5"]),
    ]


def run_cli(argv: list[str]) -> tuple[int, str]:
    """Run ``cortexsim argv`` in this process; (exit code, stderr). A raw exception gives code -1 and its traceback."""
    import contextlib
    import io
    import traceback

    from cortexsim.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - counting what escapes is the point
            traceback.print_exc(file=err)
            code = -1
    return int(code), err.getvalue()


def classify_cli(code: int, stderr: str) -> str:
    """``clean`` (exit 2, an error line, no traceback), ``traceback``, ``passed`` (exit 0: not refused) or ``other``."""
    if "Traceback" in stderr or code == -1:
        return "traceback"
    if code == 0:
        return "passed"
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "warning" not in ln.lower()]
    return "clean" if code == 2 and lines and "error" in lines[-1] else "other"



if __name__ == "__main__":  # pragma: no cover - manual full run
    with tempfile.TemporaryDirectory() as d:
        fz = file_fuzz(Path(d))
        print("file fuzz:", len(fz), count(fz.values()))
        print("  raw:", sorted({v for v in fz.values() if v.startswith(("raw", "crash", "hang"))}))
    with tempfile.TemporaryDirectory() as d:
        fl = flip_fuzz(Path(d))
        print("flip-a-byte:", len(fl), count(fl.values()))
        bad = sorted({k.split("_flip")[1].split("_", 1)[1] for k, v in fl.items() if v == "silent"})
        print("  silent in:", bad)
    with tempfile.TemporaryDirectory() as d:
        cases = cli_cases(cli_fixtures(Path(d)))
        cli = {name: classify_cli(*run_cli(argv)) for name, argv in cases}
        print("bad command lines:", len(cli), count(cli.values(), ("clean", "traceback", "passed", "other")))
        print("  not clean:", sorted(k for k, v in cli.items() if v != "clean"))
