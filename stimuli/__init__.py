"""Stimulus sets with labelled metadata: this folder (``stimuli/``) is the package ``cortexsim.stimuli``.

Import it as ``from cortexsim import stimuli`` (``import stimuli`` does not exist:
pyproject's ``package-dir`` installs the folder under ``cortexsim``).

Every set follows the StimulusSet protocol (:mod:`.base`): ``len(s)``, ``s[i]``
-> (C, H, W) float32 in [0, 1] (after the optional ``normalize`` hook),
``s.batches(batch_size)``, and ``s.metadata`` (``stimulus_id`` + coords), and
can be passed to ``SimulatedCortex.record``.

>>> from cortexsim import stimuli
>>> s = stimuli.floc_offline(image_size=64, n_per_category=20, seed=0)
>>> s.metadata["domain"].unique()         # faces, characters, objects, places
>>> g = stimuli.tdann_gratings()          # 640 gratings, coords orientation_deg, sf_cpd, phase, color
>>> n = stimuli.corrupt(g, "pink", [0.05, 0.1])
"""
from __future__ import annotations

from cortexsim._lazy import lazy_package

#: Where every public name lives; imported on first use (they pull in torch), so that
#: ``import cortexsim.stimuli`` (and ``cortexsim --help``) stays fast.
_MODULES: dict[str, tuple[str, ...]] = {
    "base": ("IMAGENET_MEAN", "IMAGENET_STD", "ConcatSet", "DatasetNotFoundError", "StimulusSet", "SubsetSet",
             "concat"),
    "corruptions": ("TRUONG_HASSON_LEVELS", "CorruptedSet", "corrupt", "pink_noise"),
    "datasets": ("RESET_MACRO_CLASSES", "CifarSet", "cifar10", "cifar100", "imagefolder"),
    "files": ("FileSet",),
    "floc": ("DOMAINS", "FLOC_CATEGORIES", "OFFLINE_CATEGORIES", "floc", "floc_offline"),
    "gratings": ("TDANN_SF_CPD", "Gratings", "gratings", "tdann_gratings"),
    "numbers": ("digits", "number_codes"),
    "registry": ("get", "names"),
}
# `floc` and `gratings` are functions shadowing their submodules: the function wins.
__getattr__, __dir__ = lazy_package(__name__, {n: m for m, names in _MODULES.items() for n in names},
                                    shadowed=("floc", "gratings"))

__all__ = [
    "DOMAINS", "FLOC_CATEGORIES", "IMAGENET_MEAN", "IMAGENET_STD", "OFFLINE_CATEGORIES", "RESET_MACRO_CLASSES",
    "TDANN_SF_CPD", "TRUONG_HASSON_LEVELS",
    "CifarSet", "ConcatSet", "CorruptedSet", "DatasetNotFoundError", "FileSet", "Gratings", "StimulusSet", "SubsetSet",
    "cifar10", "cifar100", "concat", "corrupt", "digits", "floc", "floc_offline", "get", "gratings", "imagefolder",
    "names", "number_codes", "pink_noise", "tdann_gratings",
]
