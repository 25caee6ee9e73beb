"""cortexsim: simulated cortical sheets for topographic deep networks.

The distribution installs three top-level folders of the repository as one package:
``cortexsim/`` is ``cortexsim``, ``adapters/`` is ``cortexsim.adapters`` (training
methods) and ``stimuli/`` is ``cortexsim.stimuli`` (stimulus sets) — import them as
``from cortexsim import adapters, stimuli``, never ``import adapters``.

>>> import cortexsim as cx
>>> cortex = cx.SimulatedCortex(model, areas={"V1": "layer2.0", "IT": "layer4.1"})
>>> ds = cortex.record(images)            # xarray Dataset: responses (stimulus × unit) + positions
>>> cx.save_sheet(ds, "sheet.h5"); ds = cx.open_sheet("sheet.h5")
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import layout
from .accessor import CortexAccessor
from .errors import AdapterError, CortexsimError, DatasetNotFoundError, LayerNotFoundError, LayoutError, SheetError, StimulusError
from .io import SheetWriter, open_sheet, save_sheet
from .sheet import make_sheet, validate_sheet

__all__ = [
    "__version__",
    "AdapterError",
    "Area",
    "CortexAccessor",
    "CortexsimError",
    "DatasetNotFoundError",
    "LayerNotFoundError",
    "LayoutError",
    "SheetError",
    "SheetWriter",
    "SimulatedCortex",
    "StimulusError",
    "layout",
    "make_sheet",
    "open_sheet",
    "record",
    "save_sheet",
    "validate_sheet",
]


def __getattr__(name: str):
    # torch is imported only when recording is used, so `import cortexsim` stays light
    # for analysis-only work on saved Sheets.
    if name in ("SimulatedCortex", "record", "Area"):
        from . import recording

        return getattr(recording, name)
    if name in ("analysis", "stimuli", "adapters", "export", "compare", "brainscore", "plotting"):
        import importlib

        return importlib.import_module(f"cortexsim.{name}")
    raise AttributeError(f"module 'cortexsim' has no attribute {name!r}")
