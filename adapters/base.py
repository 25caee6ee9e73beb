"""The one interface every topographic method implements.

A method is registered by name (``tdann``, ``channel``, ``ws``, ``as``, ``reset``,
``topoloss``, ``baseline``) and builds a :class:`TopographicNet`: an ``nn.Module`` whose
``forward`` gives the task output and which, after each forward pass, can return
its spatial loss (already weighted by λ / α) and the per-layer values for logging.
The trainer (``cortexsim.adapters.trainer``) only talks to this interface: the net, and the
:class:`MethodSpec`'s defaults and hooks (``before_training(ctx)``, e.g. TDANN's position
pre-optimisation).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cortexsim.errors import AdapterError, DatasetNotFoundError  # noqa: F401  (old import path: adapters.base)
from cortexsim.layout import Placement


class TopographicNet(nn.Module):
    """Base class of every method's network.

    Subclasses set ``self.net`` (the wrapped architecture) and fill
    ``self.placements`` (module name -> :class:`~cortexsim.layout.Placement`) and
    ``self.areas`` (area name -> module name) so a trained model exports to a
    :class:`cortexsim.SimulatedCortex` with the positions it was trained with.
    """

    method: str = "baseline"

    def __init__(self) -> None:
        super().__init__()
        self.placements: dict[str, Placement] = {}
        self.areas: dict[str, str] = {}
        self.layout: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """x: (N, C, H, W) float images -> task output (N, n_outputs)."""
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Representation used by self-supervised tasks (SimCLR): (N, D). Default: the output."""
        return self.forward(x)

    def spatial_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Spatial term of the last forward pass.

        Returns
        -------
        total : 0-dim tensor on the model's device, weighted (λ or Σ α_l·SL_l) — add it to the task loss
        per_layer : dict layer name -> 0-dim tensor, unweighted (for logging; do not ``.item()`` in the step)
        """
        zero = next(self.parameters()).new_zeros(())
        return zero, {}

    def task_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Task loss of the method (cross-entropy by default; Reset uses BCE)."""
        return nn.functional.cross_entropy(output, target)

    def export_cortex(self, areas: dict[str, str] | None = None, **kwargs: Any):
        """A :class:`cortexsim.SimulatedCortex` with this model's trained positions.

        ``areas`` defaults to ``self.areas``; the placements of the regularised
        layers are reused, so ``record`` gives a Sheet in the trained layout.
        """
        from cortexsim.recording import SimulatedCortex

        areas = dict(areas or self.areas)
        return SimulatedCortex(self, areas=areas, placements=self.placements, **kwargs)


@dataclass
class TrainContext:
    """What a method's training hook sees (``MethodSpec.before_training(ctx)``).

    Attributes
    ----------
    net : the method's network, on ``device``, not yet trained
    dataset : the augmented training set; item ``i`` -> (image (C, H, W) or views (2, C, H, W), label)
    config : the run's :class:`~cortexsim.adapters.train_config.TrainConfig` (options as given)
    task : resolved task (``"supervised"`` / ``"simclr"``)
    device : torch device of the run
    main_process : rank 0 (progress bars, messages)
    progress : show progress bars (the Trainer's ``progress``, on the main process only)
    """

    net: TopographicNet
    dataset: Any
    config: Any
    task: str
    device: torch.device
    main_process: bool = True
    progress: bool = False


@dataclass(frozen=True)
class MethodSpec:
    """Registry entry: how to build a method's network, the paper's defaults and the training hooks.

    ``train_options`` : :meth:`TrainConfig.method_options <cortexsim.adapters.train_config.TrainConfig.method_options>`
        this method accepts (e.g. TDANN's ``swapopt``); for other methods a non-default value is an error.
    ``before_training`` : ``hook(ctx: TrainContext) -> dict | None`` run once after set-up, before the
        first step of a new run (not on resume: its effect is in the checkpoint); a returned dict is
        saved under ``config.json["resolved"]``.
    """

    name: str
    build: Callable[..., TopographicNet]
    archs: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    train_options: tuple[str, ...] = ()
    before_training: Callable[[TrainContext], dict[str, Any] | None] | None = None

    @property
    def train_defaults(self) -> dict[str, Any]:
        """The ``defaults`` the trainer reads: TrainConfig options (``lr``, ``batch_size``, ``image_size`` …)
        and :data:`TRAINER_DEFAULTS` (``weight_decay_norm`` …)."""
        keys = _train_keys()
        return {k: v for k, v in self.defaults.items() if k in keys}

    @property
    def build_defaults(self) -> dict[str, Any]:
        """The ``defaults`` passed to ``build`` (e.g. Reset's ``n``, ``m``, ``loss``, ``dropout``), under
        ``method_kwargs``; each is a :func:`build_options` name (checked by :func:`register`)."""
        keys = _train_keys()
        return {k: v for k, v in self.defaults.items() if k not in keys}


#: Defaults the trainer reads that are not TrainConfig options.
TRAINER_DEFAULTS = ("weight_decay_norm",)


def _train_keys() -> frozenset[str]:
    from .train_config import TrainConfig

    return frozenset(TrainConfig.names()) | frozenset(TRAINER_DEFAULTS)


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (name must be new)."""
    if spec.name in _REGISTRY:
        raise AdapterError(f"method {spec.name!r} is already registered.")
    from .train_config import TrainConfig

    typed = {k: v for k, v in spec.train_defaults.items() if k in TrainConfig.names()}
    try:  # the train defaults are checked as the options they stand for
        TrainConfig(**typed).validate()
    except AdapterError as exc:
        raise AdapterError(f"method {spec.name!r}: bad train default: {exc}") from None
    unused = sorted(set(spec.build_defaults) - set(build_options(spec)))
    if unused:  # a default nothing reads is a silent lie about the method's setup
        raise AdapterError(f"method {spec.name!r}: defaults {unused} are neither trainer options nor build options "
                           f"of its build; options: {', '.join(build_options(spec))}.")
    _REGISTRY[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    """Look up a registered method; unknown names list the known ones."""
    from . import _load_methods

    _load_methods()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AdapterError(f"unknown method {name!r}; known methods: {', '.join(methods())}.") from None


#: ``build`` arguments the trainer sets itself (each has its own Trainer argument / CLI flag).
TRAINER_SET = ("arch", "num_classes", "layout", "lam", "layers", "seed", "image_size")


def build_options(spec: MethodSpec) -> tuple[str, ...]:
    """The keyword arguments of ``spec.build`` a user may set (``method_kwargs`` / ``--method-kwargs``).

    Its named parameters other than :data:`TRAINER_SET`, plus the architecture options
    (:data:`~cortexsim.adapters.archs.ARCH_OPTIONS`) when it takes ``**kwargs`` (which it passes on).
    """
    import inspect

    from .archs import ARCH_OPTIONS

    params = inspect.signature(spec.build).parameters.values()
    named = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in TRAINER_SET]
    extra = ARCH_OPTIONS if any(p.kind is p.VAR_KEYWORD for p in params) else ()
    return tuple(dict.fromkeys([*named, *extra]))


def methods() -> list[str]:
    """Names of the public registered methods (names starting with ``_`` are private, e.g. test doubles)."""
    from . import _load_methods

    _load_methods()
    return sorted(n for n in _REGISTRY if not n.startswith("_"))
