"""Atomic file writes: a file is written whole or not at all.

Every write goes to a temporary file in the destination folder
(``.<name>.<host>.<pid>.<random>.tmp``, permissions from the umask), is fsync'ed and then
``os.replace``'d over the target: a crash mid-write leaves the previous file untouched, the
next write of the same target removes temporary files whose writer process is gone, and
Ctrl-C aborts the write (temporary file removed, ``KeyboardInterrupt`` re-raised).

Use :func:`atomic_path` for any file cortexsim writes; :func:`writable_path` checks an output
location before any work is done. Both are re-exported by :mod:`cortexsim.io`.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

