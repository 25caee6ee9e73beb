"""Forward-hook capture of module outputs and an eval-mode context manager.

The one place cortexsim reads activations from a model's modules: recording,
the adapters' spatial losses, the analyses and the Brain-Score plugin checks all
use :func:`capture` (hooks removed on exit) or :class:`OutputStore` (a hook that
stays on a model and survives ``copy.deepcopy``), and run probes inside
:func:`evaluating` (eval mode and no autograd, each module's mode restored).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .modules import find_module

__all__ = ["OutputStore", "capture", "evaluating", "first_tensor"]


def first_tensor(output: Any) -> Any:
    """A module's output tensor: the first element when it returns a tuple / list (e.g. ``nn.MultiheadAttention``)."""
    return output[0] if isinstance(output, (tuple, list)) else output


class OutputStore:
    """Forward hook writing a module's output (or its first input) into ``store[key]``.

    A small callable object rather than a closure, so ``copy.deepcopy`` of a
    model carrying it (EMA, SWA) gives a copy whose hook writes into the copy's
    own store.

    Parameters
    ----------
    store : dict
        Where the capture goes.
    key : hashable
    use_input : bool
        Keep the module's first positional input instead of its output (e.g. the
        features entering a classifier head).
    transform : callable, optional
        Applied to the tensor before it is stored (e.g. ``lambda y: y.detach().cpu()``).
    accumulate : bool
        Append to ``store[key]`` (a list, one entry per forward) instead of replacing it.
    """

    def __init__(self, store: dict, key: Any, *, use_input: bool = False,
                 transform: Callable[[torch.Tensor], Any] | None = None, accumulate: bool = False) -> None:
        self.store, self.key, self.use_input = store, key, use_input
        self.transform, self.accumulate = transform, accumulate

    def __call__(self, module: nn.Module, args: tuple, output: Any) -> None:
        value = args[0] if self.use_input else first_tensor(output)
        if self.transform is not None:
            value = self.transform(value)
        if self.accumulate:
            self.store.setdefault(self.key, []).append(value)
        else:
            self.store[self.key] = value


def _as_mapping(model: nn.Module, modules: Mapping[Any, str | nn.Module] | Iterable[str]) -> dict[Any, nn.Module]:
    items = modules.items() if isinstance(modules, Mapping) else ((n, n) for n in modules)
    return {k: (m if isinstance(m, nn.Module) else find_module(model, m)) for k, m in items}


@contextlib.contextmanager
def capture(
    model: nn.Module,
    modules: Mapping[Any, str | nn.Module] | Iterable[str],
    *,
    use_input: bool = False,
    transform: Callable[[torch.Tensor], Any] | None = None,
    accumulate: bool = False,
) -> Iterator[dict[Any, Any]]:
    """Hook ``modules`` of ``model`` for the ``with`` block; yields the dict the captures go into.

    Parameters
    ----------
    model : nn.Module
    modules : mapping key -> module name / module, or iterable of module names
        Names are resolved with :func:`cortexsim.modules.find_module` (a misspelt
        name raises :class:`~cortexsim.errors.LayerNotFoundError` with close matches
        before any hook is registered). With an iterable the names are the keys.
    use_input, transform, accumulate
        As in :class:`OutputStore`: by default each forward overwrites
        ``captured[key]`` with the module's output tensor (first element of a tuple).

    Examples
    --------
    >>> with evaluating(net), capture(net, ["layer2.0"], transform=lambda y: y.flatten(1)) as acts:
    ...     net(images)
    >>> acts["layer2.0"].shape  # (N, C·H·W)
    """
    targets = _as_mapping(model, modules)
    captured: dict[Any, Any] = {}
    handles = [m.register_forward_hook(OutputStore(captured, k, use_input=use_input, transform=transform,
                                                   accumulate=accumulate))
               for k, m in targets.items()]
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def evaluating(model: nn.Module, *, grad: bool = False, inference: bool = False) -> Iterator[nn.Module]:
    """Run the block with ``model`` in eval mode (BN running statistics, no dropout) and without autograd.

    Every sub-module's own ``training`` flag is restored on exit (a model whose
    BatchNorm layers were frozen in eval mode keeps them so), also when the block
    raises.

    Parameters
    ----------
    grad : bool
        Keep autograd on (default off: ``torch.no_grad``).
    inference : bool
        Use ``torch.inference_mode`` instead of ``no_grad`` (faster; the tensors it
        makes can never enter autograd later).
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    if grad:
        ctx: contextlib.AbstractContextManager = contextlib.nullcontext()
    else:
        ctx = torch.inference_mode() if inference else torch.no_grad()
    try:
        with ctx:
            yield model
    finally:
        for m, mode in modes:
            m.training = mode
