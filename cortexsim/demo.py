"""``cortexsim demo`` — kept as an import path; the study lives in :mod:`cortexsim.study.demo`."""
from __future__ import annotations

from typing import Any


def run_demo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`cortexsim.study.demo.run_demo` (imported on call: core cortexsim does not import the adapters)."""
    from .study.demo import run_demo as run

    return run(*args, **kwargs)


__all__ = ["run_demo"]
