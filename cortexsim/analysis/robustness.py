"""Robustness of a trained classifier: weight noise, input noise, L2 channel pruning.

These need the model, not only a Sheet. The caller's model is never modified:
every perturbation is applied to a deep copy.

* weight noise (Truong & Hasson): additive Gaussian noise on weights, with the
  representational similarity matrix (RSM) of the readout's class weight vectors
  compared to the clean RSM (cosine similarity of the flattened upper triangles)
  and the test accuracy;
* input noise (Truong & Hasson): accuracy under white / pink / salt-and-pepper
  corruptions of the images;
* pruning (Poli, Dupoux & Riad 2023): in each named layer, zero the fraction of
  output channels whose weights have the lowest L2 norm, no retraining, and
  measure accuracy.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn

from ..capture import evaluating
from ..errors import ParameterError, UndefinedStatisticError
from ..modules import find_module
from ..seeding import torch_generator
from ._common import pearson_normalise
from ._params import Interval, Options, fill_doc, validate_params

Data = Any  # a DataLoader yielding (x, y) batches, or a tuple (images, labels)

#: Constraints of the parameters every robustness function shares (``seed``: SHARED).
_MODEL = {"model": [nn.Module], "batch_size": [Interval(1, None, integer=True)],
          "device": [None, str, int, torch.device]}


# --------------------------------------------------------------------------- evaluation


def _batches(data: Data, batch_size: int = 256) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) or isinstance(t, np.ndarray) for t in data):
        x, y = (torch.as_tensor(t) for t in data)
        if len(x) != len(y):
            raise ParameterError(f"images ({len(x)}) and labels ({len(y)}) differ in length.")
        for s in range(0, len(x), batch_size):
            yield x[s : s + batch_size], y[s : s + batch_size]
    else:
        for batch in data:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ParameterError("a data loader must yield (images, labels) batches.")
            yield batch[0], batch[1]


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@validate_params(_MODEL)
def accuracy(model: nn.Module, data: Data, device: str | torch.device | None = None, batch_size: int = 256) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` on ``data`` in eval mode.

    Parameters
    ----------
    data : DataLoader of (images, labels) or tuple (images (N, C, H, W), labels (N,))
    """
    dev = _device(model, device)
    correct = total = 0
    with evaluating(model):  # eval mode + no grad; every module's own mode restored after
        for x, y in _batches(data, batch_size):
            x, y = x.to(dev), torch.as_tensor(y).to(dev)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = model(x)
            correct += int((logits.argmax(dim=1) == y).sum())
            total += len(y)
    if total == 0:
        raise UndefinedStatisticError("no data to evaluate: the loader / tensors are empty.")
    return correct / total


# --------------------------------------------------------------------------- weight noise


def class_weight_rsm(weight: torch.Tensor, similarity: str = "cosine") -> np.ndarray:
    """RSM (n_classes, n_classes) of class weight vectors (rows of a readout weight, flattened)."""
    if similarity not in ("cosine", "correlation"):
        raise ParameterError(f"similarity must be 'cosine' or 'correlation'; got {similarity!r}.")
    w = weight.detach().reshape(weight.shape[0], -1).double().cpu().numpy()
    w, defined = pearson_normalise(w, axis=1, center=similarity == "correlation")
    if not defined.all():
        raise UndefinedStatisticError("a class weight vector is constant (zero after centring); its RSM row is undefined.")
    return w @ w.T


def rsm_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of the flattened upper triangles (k = 1) of two RSMs.

    Written as dot / sqrt(|a|²·|b|²) so identical inputs give exactly 1.0.
    """
    iu = np.triu_indices(a.shape[0], k=1)
    va, vb = a[iu], b[iu]
    den = np.sqrt(float(va @ va) * float(vb @ vb))
    return float(va @ vb) / den if den > 0 else float("nan")


@validate_params({**_MODEL, "layer_name": [str], "n_repeats": [Interval(1, None, integer=True)],
                  "scope": [Options(("readout", "all"))], "similarity": [Options(("cosine", "correlation"))]},
                 positional=("seed",))
@fill_doc
def weight_noise_robustness(
    model: nn.Module,
    layer_name: str,
    data: Data,
    levels: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0),
    n_repeats: int = 3,
    *,
    seed: int = 0,
    scope: str = "readout",
    similarity: str = "cosine",
    device: str | torch.device | None = None,
    batch_size: int = 256,
) -> xr.Dataset:
    """Accuracy and class-weight RSM stability under additive Gaussian weight noise.

    Noise: every perturbed weight tensor W becomes W + level · std(W) · ε with
    ε ~ N(0, 1) i.i.d. (std over the tensor's entries), so ``level`` is the noise
    std relative to the weights' own spread and is comparable across layers.
    Repeat r draws ε once (seeded by ``seed`` and r) and scales it for every level.

    Parameters
    ----------
    model : nn.Module
        A trained classifier (copied; the original is untouched).
    layer_name : str
        The readout layer (``named_modules`` name) whose weight rows are the class
        weight vectors (CWVs), e.g. ``"fc"``.
    data : DataLoader of (images, labels) or (images, labels) tensors
    levels : sequence of float, relative noise std (0 = clean)
    n_repeats : int, independent noise draws per level
    %(seed)s
    scope : {"readout", "all"}
        Perturb only the readout weight, or every weight tensor with ≥ 2 dims
        (conv / linear kernels; biases and norm parameters left alone).
    similarity : {"cosine", "correlation"}, how the RSM compares two CWVs

    Returns
    -------
    xarray.Dataset, dims (level, repeat)
        ``accuracy``, ``accuracy_drop`` (clean − noisy), ``rsm_similarity``
        (cosine of RSM upper triangles vs clean; 1 = unchanged); attrs
        ``clean_accuracy``.
    """
    levels_arr = np.asarray(levels, dtype=float)
    if levels_arr.ndim != 1 or (levels_arr < 0).any():
        raise ParameterError("levels must be a 1-D sequence of non-negative noise levels.")
    work = copy.deepcopy(model)
    readout = find_module(work, layer_name)
    if not isinstance(getattr(readout, "weight", None), torch.Tensor):
        raise ParameterError(f"module {layer_name!r} has no weight tensor to read class weight vectors from.")
    params = [readout.weight] if scope == "readout" else [p for p in work.parameters() if p.ndim >= 2]
    clean = [p.detach().clone() for p in params]
    scales = [p.float().std() for p in clean]
    clean_rsm = class_weight_rsm(readout.weight, similarity)
    clean_acc = accuracy(work, data, device, batch_size)
    acc = np.empty((len(levels_arr), n_repeats))
    sim = np.empty_like(acc)
    for r in range(n_repeats):
        # One noise draw per repeat, scaled for every level (common random numbers):
        # results do not depend on which other levels are asked for, and curves are smoother.
        gen = torch_generator(seed, "weight_noise", r)  # the one seed scheme: stream (seed, "weight_noise", r)
        noises = [torch.randn(c.shape, generator=gen, dtype=torch.float32).to(c.device, c.dtype) for c in clean]
        for i, level in enumerate(levels_arr):
            with torch.no_grad():
                for p, c, s, e in zip(params, clean, scales, noises):
                    p.copy_(c + float(level) * s.to(c.dtype) * e if level > 0 else c)
            sim[i, r] = rsm_similarity(clean_rsm, class_weight_rsm(readout.weight, similarity))
            acc[i, r] = clean_acc if level == 0 else accuracy(work, data, device, batch_size)
    return xr.Dataset(
        {
            "accuracy": (("level", "repeat"), acc),
            "accuracy_drop": (("level", "repeat"), clean_acc - acc),
            "rsm_similarity": (("level", "repeat"), sim, {"long_name": "cosine similarity of CWV RSM upper triangles vs clean"}),
        },
        coords={"level": levels_arr, "repeat": np.arange(n_repeats)},
        attrs={"clean_accuracy": clean_acc, "layer": layer_name, "scope": scope, "similarity": similarity,
               "noise": "W + level * std(W) * N(0, 1)", "seed": int(seed)},
    )


# --------------------------------------------------------------------------- input noise


@validate_params({**_MODEL, "preprocess": [None, Callable]})
@fill_doc
def input_noise_robustness(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    kinds: Sequence[str] = ("white", "pink", "salt_pepper"),
    levels: Sequence[float] = (0.01, 0.05, 0.1, 0.15, 0.2),
    *,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> xr.Dataset:
    """Accuracy under image corruptions (``cortexsim.stimuli.corruptions.apply_noise``).

    Parameters
    ----------
    images : (N, C, H, W) in [0, 1] (corruptions are defined on that range)
    labels : (N,) int
    kinds, levels : corruption kinds and levels (see ``cortexsim.stimuli.corruptions``:
        white/pink = additive noise std in intensity units, salt_pepper = fraction of pixels)
    preprocess : callable, optional
        Applied after corruption and before the model (e.g. mean/std normalisation).
    %(seed)s

    Returns
    -------
    xarray.Dataset, dims (kind, level): ``accuracy``, ``accuracy_drop``; attrs ``clean_accuracy``.
    """
    x = torch.as_tensor(images).float()
    y = torch.as_tensor(labels).long()
    if x.ndim != 4:
        raise ParameterError(f"images must be (N, C, H, W); got shape {tuple(x.shape)}.")
    if len(x) != len(y):
        raise ParameterError(f"{len(x)} images but {len(y)} labels.")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ParameterError("images must be in [0, 1] (corruption levels are defined on that range); pass preprocess= for normalisation.")
    from ..stimuli.corruptions import apply_noise as noise  # part of the package: no fallback copy

    prep = preprocess or (lambda t: t)
    model = copy.deepcopy(model)  # eval-mode toggling must not touch the caller's model
    clean = accuracy(model, (prep(x), y), device, batch_size)
    items = np.arange(len(x))
    acc = np.empty((len(kinds), len(levels)))
    for i, kind in enumerate(kinds):
        for j, level in enumerate(levels):
            xn = torch.cat([noise(x[s : s + batch_size], kind, float(level), items[s : s + batch_size], seed)
                            for s in range(0, len(x), batch_size)])
            acc[i, j] = accuracy(model, (prep(xn), y), device, batch_size)
    return xr.Dataset(
        {"accuracy": (("kind", "level"), acc), "accuracy_drop": (("kind", "level"), clean - acc)},
        coords={"kind": list(kinds), "level": np.asarray(levels, dtype=float)},
        attrs={"clean_accuracy": clean, "seed": int(seed), "noise_source": noise.__module__ + "." + noise.__name__},
    )


# --------------------------------------------------------------------------- pruning


@validate_params({"weight": [torch.Tensor], "fraction": [Interval(0, 1)]})
def l2_channel_mask(weight: torch.Tensor, fraction: float) -> torch.Tensor:
    """Boolean keep-mask over output channels (dim 0): False for the ``round(fraction·C)``
    channels whose weights have the lowest L2 norm (same count and order as
    ``torch.nn.utils.prune.ln_structured(n=2, dim=0)``)."""
    c = weight.shape[0]
    k = int(round(fraction * c))
    norms = weight.detach().reshape(c, -1).double().norm(dim=1)
    keep = torch.ones(c, dtype=torch.bool, device=weight.device)
    if k:
        keep[torch.topk(norms, k, largest=False).indices] = False
    return keep


@validate_params({**_MODEL, "layers": [list, tuple], "fraction": [Interval(0, 1)], "prune_bias": [bool]})
def prune_channels(model: nn.Module, layers: Sequence[str], fraction: float, *, prune_bias: bool = True) -> nn.Module:
    """A pruned deep copy of ``model``: in each layer the lowest-L2 output channels are zeroed.

    With ``prune_bias`` the pruned channels' biases are zeroed too, so the channel
    is removed (outputs exactly 0 before any normalisation).
    """
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        for name in layers:
            m = find_module(pruned, name)
            w = getattr(m, "weight", None)
            if not isinstance(w, torch.Tensor) or w.ndim < 2:
                raise ParameterError(f"layer {name!r} has no (out, in, ...) weight to prune channels of.")
            keep = l2_channel_mask(w, fraction)
            w.mul_(keep.view(-1, *([1] * (w.ndim - 1))).to(w.dtype))
            b = getattr(m, "bias", None)
            if prune_bias and isinstance(b, torch.Tensor):
                b.mul_(keep.to(b.dtype))
    return pruned


@validate_params({**_MODEL, "layers": [list, tuple], "eval_fn": [Callable], "prune_bias": [bool]})
def pruning_curve(
    model: nn.Module,
    layers: Sequence[str],
    fractions: Sequence[float],
    eval_fn: Callable[[nn.Module], float],
    *,
    prune_bias: bool = True,
) -> xr.Dataset:
    """Accuracy vs fraction of channels pruned (L2 structured, per layer, no retraining).

    Parameters
    ----------
    model : nn.Module (not modified)
    layers : names of the layers to prune (each pruned by the same fraction)
    fractions : sequence in [0, 1]
    eval_fn : callable(model) -> float, e.g. ``lambda m: accuracy(m, (x, y))``

    Returns
    -------
    xarray.Dataset, dim ``fraction``: ``accuracy``, ``n_pruned`` (channels zeroed over all layers).
    """
    if not layers:
        raise ParameterError("give at least one layer name to prune.")
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or fr.size == 0 or not np.all((fr >= 0) & (fr <= 1)):
        raise ParameterError("fractions must be a non-empty 1-D sequence in [0, 1].")
    acc = np.empty(len(fr))
    n_pruned = np.empty(len(fr), dtype=np.int64)
    for i, f in enumerate(fr):
        pruned = prune_channels(model, layers, float(f), prune_bias=prune_bias)
        n_pruned[i] = sum(int(round(f * find_module(model, n).weight.shape[0])) for n in layers)
        acc[i] = float(eval_fn(pruned))
    return xr.Dataset(
        {"accuracy": ("fraction", acc), "n_pruned": ("fraction", n_pruned)},
        coords={"fraction": fr},
        attrs={"layers": list(layers), "criterion": "L2 norm of output-channel weights", "prune_bias": int(prune_bias)},
    )
