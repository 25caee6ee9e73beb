"""Helpers every ``cortexsim`` sub-command shares (light: no torch at import).

argparse types that refuse non-finite / out-of-range numbers, ``AREA=NAME`` mappings,
device and output-path checks made before any work, one-line warnings, and
:func:`run_command`, which turns every :class:`~cortexsim.CortexsimError` into a
one-line message and exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import CortexsimError


def parse_mapping(text: str, what: str) -> dict[str, str]:
    """Parse ``"V1=layer2.0,IT=layer4.1"`` into ``{"V1": "layer2.0", "IT": "layer4.1"}``."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise argparse.ArgumentTypeError(f"{what} must look like AREA=NAME[,AREA=NAME]; got {item!r}.")
        out[key.strip()] = value.strip()
    if not out:
        raise argparse.ArgumentTypeError(f"{what} is empty.")
    return out


# ---------------------------------------------------------------------- argparse types
def int_at_least(low: int, what: str = "") -> Callable[[str], int]:
    """argparse type: an integer ≥ ``low`` (a clear usage error otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}{what}; got {value}")
        return value

    parse.__name__ = f"integer ≥ {low}"
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def finite_float(low: float | None = None, *, strict: bool = False) -> Callable[[str], float]:
    """argparse type: a finite float (no nan/inf), optionally ≥ ``low`` (``> low`` when ``strict``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
        if low is not None and (value <= low if strict else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '≥'} {low:g}; got {value:g}")
        return value

    parse.__name__ = "finite number"
    return parse


def check_device(name: str) -> str:
    """``name`` if torch can use it here; a one-line error otherwise (as ``cortexsim train`` gives)."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise CortexsimError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {name!r}.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CortexsimError(f"device {name!r} requested but CUDA is not available; use --device cpu.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CortexsimError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    elif dev.type not in ("cpu", "mps"):
        raise CortexsimError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {name!r}.")
    return name


# ---------------------------------------------------------------------- running a command
#: How a library's keyword arguments are spelled on the command line, for warnings' advice.
_WARNING_FLAGS_KEY = "warning_flags"


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


@contextlib.contextmanager
def cli_warnings(prog: str, flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Print each distinct warning once, on one line, as ``PROG: warning: ...`` (no source lines).

    ``flags`` maps the Python spelling in a warning (``"undefined='raise'"``) to the command's
    flag (``"--undefined raise"``), so the advice names what the user can type.
    """
    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = one_line(str(message))
        for python, flag in (flags or {}).items():
            text = text.replace(python, flag)
        if text not in seen:
            seen.add(text)
            print(f"{prog}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.showwarning = show  # restored by catch_warnings
        yield


def run_command(args: argparse.Namespace, prog: str | None = None) -> int:
    """Run ``args.func(args)``: CortexsimError → one line and exit 2; Ctrl-C → 130; a closed pipe → quiet."""
    prog = prog or f"cortexsim {getattr(args, 'command', '')}".strip()
    try:
        with cli_warnings(prog, getattr(args, _WARNING_FLAGS_KEY, None)):
            code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except CortexsimError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = (f"; continue with `cortexsim train --resume --out {args.out}`"
                if hasattr(args, "resume") and getattr(args, "out", None) else "")
        print(f"{prog}: interrupted (Ctrl-C): the file being written was removed, finished files are kept{hint}",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `cortexsim info --json | head`: the reader has gone; stop without a traceback
        # (and without another one when Python flushes stdout at exit).
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1


def check_output(path: str | os.PathLike, kind: str = "file", what: str = "--out") -> Path:
    """:func:`cortexsim.io.writable_path` for a command's output, before any work is done."""
    from .io import writable_path

    return writable_path(path, kind, what)
