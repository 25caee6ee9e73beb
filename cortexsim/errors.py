"""Exceptions raised by cortexsim.

Every error subclasses a built-in (``ValueError``/``KeyError``) so that code which
already catches those keeps working, while callers who care can catch the
specific cortexsim type.
"""
from __future__ import annotations


class CortexsimError(Exception):
    """Base class of every cortexsim-specific error."""


class SheetError(CortexsimError, ValueError):
    """A Sheet (xarray Dataset) or a Sheet file does not follow the schema."""


class LayoutError(CortexsimError, ValueError):
    """A layout cannot place the requested units (bad shape or parameter)."""


class LayerNotFoundError(CortexsimError, KeyError):
    """A module name given for an area does not exist in the model."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


class StimulusError(CortexsimError, ValueError):
    """Stimuli have the wrong type, shape, dtype or values."""


class BrainScoreError(CortexsimError, ValueError):
    """Bad input for the Brain-Score bridge (region, stimuli, neural data, plugin), or a failed Brain-Score run."""


class BrainScoreEnvError(BrainScoreError):
    """The separate Brain-Score environment is missing or broken; the message says what to run."""


class MapError(CortexsimError, ValueError):
    """A map to export or compare (per-unit, NIfTI, GIFTI, NumPy) is unusable: affine, shape, values, overlap."""


class OutputError(CortexsimError, OSError):
    """An output path cannot be written: a directory where a file is expected, under a file, read-only."""


class ParameterError(CortexsimError, ValueError):
    """A parameter of an analysis (or plot) has a value outside what it accepts; the message says which."""


class ParameterTypeError(CortexsimError, TypeError):
    """A parameter of an analysis (or plot) has the wrong type, or a keyword it does not take."""


class UndefinedStatisticError(CortexsimError, ValueError):
    """The data make a statistic undefined (a constant map, one stimulus, no pair in range).

    Also a ``ValueError``, as these cases raised before the class existed; ``cortexsim analyze``
    records it for the one analysis and goes on with the others.
    """


class AdapterError(CortexsimError, ValueError):
    """Bad training / method configuration: unknown method, arch or layer, λ < 0, a damaged run folder ...

    Also importable as ``cortexsim.adapters.AdapterError`` (and from ``cortexsim.adapters.base``).
    """


class DatasetNotFoundError(CortexsimError, FileNotFoundError):
    """A user data folder is missing or incomplete: training data (``data=``), a CIFAR / fLoc /
    image folder of a stimulus set (missing folder, incomplete CIFAR, no class folders).

    Nothing is downloaded; the message says what to put where. One class for training and
    stimuli (also ``cortexsim.stimuli.DatasetNotFoundError`` and ``cortexsim.adapters.DatasetNotFoundError``).
    """
