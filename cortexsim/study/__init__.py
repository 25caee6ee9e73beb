"""Studies: the whole pipeline on one question, with its control, ending in a report.

>>> from cortexsim import study
>>> summary = study.run_demo("cortexsim_demo", quick=True)     # train, record, statistics, export, compare
>>> study.write_report({"WS": "ws.h5", "control": "control.h5"}, "out", by="numerosity")

:func:`run_demo` is ``cortexsim demo`` (:mod:`.demo`); :func:`write_report` is ``cortexsim report``
(:mod:`.report`): statistics and figures recomputed from saved Sheets alone. The adapters
(torch models) are imported only inside the functions that train, so importing this package
is light.
"""
from __future__ import annotations

from .._lazy import lazy_package

_LAZY = {
    "run_demo": "demo",
    "DemoConfig": "demo",
    "write_report": "report",
    "environment": "report",
    "map_result": "stats",
    "MapResult": "stats",
    "train_in_memory": "train",
    "scan_split": "data",
    "number_task": "data",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_package(__name__, _LAZY)
