"""The separate Brain-Score environment: create it once, find it, run code in it.

brainscore-vision 2.4.2 pins ``numpy<2`` and ``xarray<2022.6``; cortexsim needs
numpy 2 and xarray ≥ 2024, so Brain-Score lives in a virtual environment of its
own (:func:`setup_env`, ``cortexsim brainscore setup``). cortexsim talks to it
only through files in a run folder (NetCDF / JSON in, NetCDF / JSON out — never
pickles) and the script :mod:`cortexsim.brainscore.runner`, which that
environment's Python executes.

Where it lives: ``$CORTEXSIM_BRAINSCORE_VENV`` if set, else
``${XDG_CACHE_HOME:-~/.cache}/cortexsim/brainscore-2.4.2`` — outside any
checkout, so CI runs and test sessions reuse it. A stamp file written last
(``cortexsim-brainscore.json``) marks a complete environment: creation that was
interrupted leaves no stamp and is redone.

Safety: Brain-Score's S3-backed loaders (benchmarks, data sets, stimulus sets,
weight downloads, automatic layer selection) make boto3 contact a link-local
cloud metadata address and S3. cortexsim never calls them, and every run in the
environment (a) executes inside a fresh network namespace (``unshare -n``, or
``unshare -rn`` without root) when the machine allows it, so a stray call fails
at once, and (b) installs a socket guard in the runner that refuses every
non-local connection. Runs also set ``BS_INSTALL_DEPENDENCIES=no`` (loading a
plugin would otherwise pip-install its requirements) and point
``RESULTCACHING_HOME`` into the run folder.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cortexsim.errors import BrainScoreEnvError, BrainScoreError

BRAINSCORE_VERSION = "2.4.2"
#: What ``setup`` installs (torch pinned to cortexsim's ceiling so both environments run the same kernels).
REQUIREMENTS: tuple[str, ...] = (f"brainscore-vision=={BRAINSCORE_VERSION}", "torch==2.14.1", "torchvision==0.29.1")
ENV_VAR = "CORTEXSIM_BRAINSCORE_VENV"
#: ``auto`` (namespace when available), ``require`` (fail without one), ``off`` (socket guard only).
ISOLATION_VAR = "CORTEXSIM_BRAINSCORE_ISOLATION"
STAMP = "cortexsim-brainscore.json"
RUNNER = Path(__file__).with_name("runner.py")
#: Exit status of the runner for an error it explains in ``error.json``.
HANDLED_EXIT = 3


def default_venv() -> Path:
    """Where the Brain-Score environment lives when no ``venv`` is given (see module docstring)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "cortexsim" / f"brainscore-{BRAINSCORE_VERSION}"


def _setup_hint(venv: Path, force: bool = False) -> str:
    opt = "" if venv == default_venv() else f" --venv {venv}"
    return f"`cortexsim brainscore setup{opt}{' --force' if force else ''}`"


@functools.cache
def network_isolation() -> tuple[str, ...] | None:
    """Command prefix that runs a program in a fresh network namespace, or None where none can be made.

    Tries ``unshare -n`` (root) then ``unshare -rn`` (user namespace, no root needed).
    """
    exe = shutil.which("unshare")
    if exe is None:
        return None
    for flags in ("-n", "-rn"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run([exe, flags, "true"], capture_output=True, timeout=20)
            if done.returncode == 0:
                return (exe, flags, "--")
    return None


def _isolation_prefix(isolate: str | None) -> tuple[str, ...]:
    mode = (isolate or os.environ.get(ISOLATION_VAR) or "auto").lower()
    if mode not in ("auto", "require", "off"):
        raise BrainScoreError(f"{ISOLATION_VAR} / isolate must be auto, require or off; got {mode!r}.")
    if mode == "off":
        return ()
    prefix = network_isolation()
    if prefix is None and mode == "require":
        raise BrainScoreEnvError(
            "network isolation was required but no network namespace can be created here (`unshare -n` and "
            "`unshare -rn` both failed); run as root, enable unprivileged user namespaces, or set "
            f"{ISOLATION_VAR}=auto to rely on the runner's socket guard alone.")
    return prefix or ()


def _clean_environ(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CONDA"))}
    env.update(
        BS_INSTALL_DEPENDENCIES="no",                 # loading a plugin must not pip-install anything
        RESULTCACHING_HOME=str(workdir / "result_caching"),
        AWS_EC2_METADATA_DISABLED="true",             # boto3: never probe the metadata address
        MPLBACKEND="Agg",
        TQDM_DISABLE="1",
        PYTHONNOUSERSITE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass(frozen=True)
class BrainScoreEnv:
    """A complete Brain-Score environment (use :func:`find_env` / :func:`setup_env` to get one).

    Attributes
    ----------
    path : the virtual environment's folder
    python : its interpreter
    info : the stamp (requirements, versions, creation time and duration)
    """

    path: Path
    python: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def site_packages(self) -> Path:
        """The environment's ``site-packages`` (where ``brainscore_vision`` is installed)."""
        return Path(self.info["site_packages"])

    def run(self, command: str, request: dict[str, Any], workdir: str | os.PathLike, *,
            timeout: float | None = None, isolate: str | None = None) -> dict[str, Any]:
        """Run ``runner.py COMMAND`` in this environment on ``request`` (JSON); return its ``result.json``.

        ``workdir`` holds the request, the result, the runner's log and the
        result cache. ``isolate``: ``auto`` / ``require`` / ``off`` (default:
        ``$CORTEXSIM_BRAINSCORE_ISOLATION`` or ``auto``).

        Raises
        ------
        BrainScoreError
            The runner rejected the request or Brain-Score failed on it (its message).
        BrainScoreEnvError
            The environment could not start the runner (missing / broken install).
        """
        from cortexsim.io import atomic_path

        work = Path(workdir).resolve()
        work.mkdir(parents=True, exist_ok=True)
        for name in ("result.json", "error.json"):
            (work / name).unlink(missing_ok=True)
        req = work / "request.json"
        with atomic_path(req) as tmp:
            tmp.write_text(json.dumps(request, indent=1, default=str))
        prefix = _isolation_prefix(isolate)
        cmd = [*prefix, str(self.python), "-I", str(RUNNER), command, str(req)]
        log = work / "runner.log"
        try:
            with open(log, "w") as fh:
                done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_clean_environ(work),
                                      cwd=work, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BrainScoreError(f"the Brain-Score run `{command}` took longer than {timeout:.0f} s (log: {log}).") from None
        except OSError as exc:
            raise BrainScoreEnvError(f"cannot start the Brain-Score environment's Python {self.python} ({exc}); "
                                     f"recreate it with {_setup_hint(self.path, force=True)}.") from None
        if done.returncode == 0 and (work / "result.json").is_file():
            return json.loads((work / "result.json").read_text())
        if (work / "error.json").is_file():
            err = json.loads((work / "error.json").read_text())
            cls = BrainScoreEnvError if err.get("kind") == "env" else BrainScoreError
            hint = f" Repair the environment with {_setup_hint(self.path, force=True)}." if cls is BrainScoreEnvError else ""
            raise cls(f"{err['message']}{hint} (log: {log})")
        tail = _tail(log)
        raise BrainScoreEnvError(
            f"the Brain-Score environment at {self.path} failed (exit {done.returncode}) before reporting a result; "
            f"if it is broken, recreate it with {_setup_hint(self.path, force=True)}. Last lines of {log}:\n{tail}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    keep = [ln for ln in text if not ln.startswith("WARNING: Location")]
    return "\n".join(keep[-lines:])


def _read_stamp(venv: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((venv / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_env(venv: str | os.PathLike | None = None) -> BrainScoreEnv:
    """The complete Brain-Score environment at ``venv`` (default :func:`default_venv`).

    Raises
    ------
    BrainScoreEnvError
        None there, an incomplete one, one made for other requirements, or one whose
        interpreter is gone — the message names the setup command to run.
    """
    path = Path(venv).expanduser() if venv is not None else default_venv()
    info = _read_stamp(path)
    if info is None:
        what = "an incomplete one (no stamp: its creation was interrupted or failed)" if path.exists() else "none"
        raise BrainScoreEnvError(f"no Brain-Score environment at {path} ({what}); create it with {_setup_hint(path)} "
                                 f"(about 3 minutes and 6.5 GB, once).")
    if tuple(info.get("requirements", ())) != REQUIREMENTS:
        raise BrainScoreEnvError(f"the Brain-Score environment at {path} was made for {info.get('requirements')}, "
                                 f"this cortexsim needs {list(REQUIREMENTS)}; recreate it with "
                                 f"{_setup_hint(path, force=True)}.")
    python = _venv_python(path)
    if not python.exists():
        raise BrainScoreEnvError(f"the Brain-Score environment at {path} has no interpreter {python} (moved or "
                                 f"partly deleted); recreate it with {_setup_hint(path, force=True)}.")
    return BrainScoreEnv(path.resolve(), python, info)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path.lock`` so that two processes never build the same environment at once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _python_version(python: str) -> tuple[int, int]:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=60, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        raise BrainScoreEnvError(f"cannot run the Python {python!r} for the Brain-Score environment ({exc}); "
                                 f"pass --python PATH_TO_PYTHON3.11+.") from None
    return int(out[0]), int(out[1])


def _pip_failure(step: str, log: Path, venv: Path) -> BrainScoreEnvError:
    return BrainScoreEnvError(f"{step} failed while creating the Brain-Score environment at {venv} (pip needs "
                              f"access to a package index). Last lines of {log}:\n{_tail(log)}\nFix the cause and "
                              f"run {_setup_hint(venv, force=True)}.")


def setup_env(venv: str | os.PathLike | None = None, *, python: str | None = None, force: bool = False,
              progress: Callable[[str], None] | None = print) -> BrainScoreEnv:
    """Create (once) and return the Brain-Score environment; an existing complete one is reused at once.

    Parameters
    ----------
    venv : folder of the virtual environment (default :func:`default_venv`)
    python : interpreter to build it from (Python ≥ 3.11, which brainscore-vision 2.4.2 needs);
        default: the base interpreter of the running Python
    force : delete and rebuild it even if it is complete
    progress : called with one-line progress messages (None: silent)

    Takes about 2–4 minutes and 6.5 GB (mostly torch) the first time. Installs
    :data:`REQUIREMENTS` with pip, runs ``pip check`` and imports Brain-Score
    (inside a network namespace when available) before writing the stamp.
    """
    say = progress or (lambda _msg: None)
    path = (Path(venv).expanduser() if venv is not None else default_venv()).absolute()
    with _lock(path):
        if not force:
            with contextlib.suppress(BrainScoreEnvError):
                env = find_env(path)
                say(f"Brain-Score environment ready at {path} (reused)")
                return env
        base = python or getattr(sys, "_base_executable", None) or sys.executable
        if _python_version(base) < (3, 11):
            raise BrainScoreEnvError(f"brainscore-vision {BRAINSCORE_VERSION} needs Python ≥ 3.11; {base} is older. "
                                     f"Pass --python /path/to/python3.11.")
        if path.exists():
            if any(path.iterdir()) and not (path / "pyvenv.cfg").is_file():
                raise BrainScoreEnvError(f"{path} exists and is not a virtual environment; refusing to delete it. "
                                         f"Choose another --venv (or set {ENV_VAR}).")
            shutil.rmtree(path)
        t0 = time.perf_counter()
        say(f"creating the Brain-Score environment at {path} from {base} (once; about 3 minutes, 6.5 GB) ...")
        log = path.with_name(path.name + ".setup.log")
        env_vars = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        with open(log, "w") as fh:
            steps = [
                ("python -m venv", [base, "-m", "venv", str(path)]),
                ("pip install", [str(_venv_python(path)), "-m", "pip", "install", "--disable-pip-version-check",
                                 "--no-input", *REQUIREMENTS]),
                ("pip check", [str(_venv_python(path)), "-m", "pip", "check"]),
            ]
            for step, cmd in steps:
                say(f"  {step} ...")
                fh.write(f"$ {' '.join(cmd)}\n")
                fh.flush()
                if subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env_vars).returncode != 0:
                    raise _pip_failure(step, log, path)
        probe_dir = path / "cortexsim-probe"
        candidate = BrainScoreEnv(path, _venv_python(path), {"requirements": list(REQUIREMENTS)})
        versions = candidate.run("probe", {}, probe_dir, timeout=600)
        shutil.rmtree(probe_dir, ignore_errors=True)
        info = {
            "requirements": list(REQUIREMENTS),
            "versions": versions["versions"],
            "site_packages": versions["site_packages"],
            "python": versions["python"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        from cortexsim.io import atomic_path

        with atomic_path(path / STAMP) as tmp:
            tmp.write_text(json.dumps(info, indent=2))
        shutil.move(str(log), str(path / "setup.log"))
        say(f"Brain-Score environment ready at {path} ({info['seconds']:.0f} s): "
            + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
        return find_env(path)


def ensure_env(venv: str | os.PathLike | None = None, *, create: bool = False,
               progress: Callable[[str], None] | None = None) -> BrainScoreEnv:
    """:func:`find_env`, or :func:`setup_env` when ``create`` is true and none is complete."""
    if create:
        return setup_env(venv, progress=progress)
    return find_env(venv)
