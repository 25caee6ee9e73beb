"""Python source that rebuilds a network from torch alone: the architecture part of a plugin's ``model.py``.

A Brain-Score plugin must be self-contained (cortexsim cannot be installed next to
brainscore-vision 2.4.2, which pins numpy < 2), so the architecture is written out
as code. :func:`architecture_source` traces the network with ``torch.fx``
(in eval mode) and emits one ``nn.Module`` class per traced graph:

* built-in ``torch.nn`` layers (conv, batch norm, linear, pooling, activations,
  dropout …) are constructed from their ``repr`` — which is their constructor
  call — at the same qualified names, so the original state dict loads as is;
* the recorded layers (``keep``, e.g. ``layer2.0``) stay modules of their own at
  their original names (traced into classes of their own), so Brain-Score's
  forward hooks find them by name exactly as cortexsim's recording does;
* parameters and buffers used directly in a ``forward`` (e.g. Reset's tiling
  order) become parameters / buffers of the generated module, filled from the
  state dict.

The emitted source is checked before use: :func:`build_from_source` executes it,
:func:`verify` loads the weights and compares outputs of the network and of every
kept layer with the original on a random batch. Networks ``torch.fx`` cannot trace
(data-dependent control flow) raise :class:`~cortexsim.errors.BrainScoreError`.
"""
from __future__ import annotations

import builtins
import contextlib
import re
import textwrap
from collections.abc import Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from cortexsim.capture import capture, evaluating
from cortexsim.errors import BrainScoreError
from cortexsim.modules import module_names

#: Globals the fx code generator may reference; the header of the emitted source defines all of them.
_ALLOWED_GLOBALS = {"torch", "inf", "nan", "NoneType", "device", "fx_pytree", "pytree"}
HEADER = '''import torch
from math import inf, nan
from torch import device, nn

NoneType = type(None)


def _put(root: nn.Module, path: str, module: nn.Module) -> None:
    """Register ``module`` at the dotted ``path`` under ``root`` (plain containers on the way)."""
    *parents, last = path.split(".")
    for part in parents:
        if part not in root._modules:
            root.add_module(part, nn.Module())
        root = root._modules[part]
    root.add_module(last, module)


def _tensor(root: nn.Module, path: str, shape, dtype, parameter: bool) -> None:
    """An empty parameter / buffer at the dotted ``path`` (its values come from the state dict)."""
    *parents, last = path.split(".")
    for part in parents:
        if part not in root._modules:
            root.add_module(part, nn.Module())
        root = root._modules[part]
    value = torch.empty(shape, dtype=dtype)
    if parameter:
        root.register_parameter(last, nn.Parameter(value))
    else:
        root.register_buffer(last, value)
'''
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _is_builtin_layer(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.modules") and not isinstance(module, _CONTAINERS)


def _constructor(module: nn.Module, qualname: str) -> str:
    """``nn.Conv2d(3, 64, kernel_size=(3, 3), ...)``: the repr of a built-in layer, checked to rebuild it."""
    text = "nn." + repr(module)
    if "\n" in text:
        raise BrainScoreError(f"cannot write layer {qualname!r} ({type(module).__name__}) as code: its repr spans "
                              f"several lines.")
    try:
        rebuilt = eval(text, {"nn": nn, "torch": torch, "inf": float("inf"), "nan": float("nan")})  # noqa: S307 - repr of torch.nn layers
    except Exception as exc:  # noqa: BLE001
        raise BrainScoreError(f"cannot write layer {qualname!r} as code: {text} does not rebuild it ({exc}).") from None
    if type(rebuilt) is not type(module) or repr(rebuilt) != repr(module):
        raise BrainScoreError(f"cannot write layer {qualname!r} as code: {text} builds {rebuilt!r}.")
    return text


class _Tracer(fx.Tracer):
    def __init__(self, keep: set[str]) -> None:
        super().__init__()
        self.keep = keep

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.keep or _is_builtin_layer(m)


def _torch_alias(name: str, obj: Any, aliases: dict[str, str]) -> bool:
    """Record ``name = torch.X`` for a global of the fx code that is a public torch object (e.g. an annotation)."""
    if isinstance(obj, str):  # a string annotation (``from __future__ import annotations``)
        candidates = (obj,)
        obj = None
        with contextlib.suppress(AttributeError):
            obj = _attr(torch, candidates[0][len("torch."):]) if candidates[0].startswith("torch.") else None
        if obj is None:
            return False
    else:
        candidates = ("torch." + getattr(obj, "__name__", ""),
                      f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}")
    for public in candidates:
        try:
            if public.startswith("torch.") and _attr(torch, public[len("torch."):]) is obj:
                aliases[name] = public
                return True
        except AttributeError:
            continue
    return False


def _class_source(module: nn.Module, keep: Sequence[str], name: str, classes: list[str], counter: list[int],
                  aliases: dict[str, str]) -> str:
    """Source of class ``name`` rebuilding ``module``; classes of kept sub-modules are appended to ``classes``."""
    keep_here = {k for k in keep if k}
    try:
        graph = _Tracer(keep_here).trace(module)
    except Exception as exc:  # noqa: BLE001 - fx raises many kinds (TraceError, TypeError, ...)
        raise BrainScoreError(f"torch.fx cannot trace {type(module).__name__} ({type(exc).__name__}: {exc}); its "
                              f"architecture cannot be written into a self-contained model.py.") from None
    code = graph.python_code(root_module="self")
    odd = {k for k in set(code.globals) - _ALLOWED_GLOBALS - set(dir(builtins)) if not _torch_alias(k, code.globals[k], aliases)}
    if odd:
        raise BrainScoreError(f"the traced forward of {type(module).__name__} calls functions outside torch "
                              f"({sorted(odd)}); they cannot be written into a self-contained model.py.")
    lines = [f"class {name}(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    seen: set[str] = set()
    for node in graph.nodes:
        if node.target in seen or node.op not in ("call_module", "get_attr"):
            continue
        seen.add(node.target)
        if node.op == "call_module":
            sub = module.get_submodule(node.target)
            if _is_builtin_layer(sub):
                lines.append(f"        _put(self, {node.target!r}, {_constructor(sub, node.target)})")
            else:
                counter[0] += 1
                sub_name = f"_Block{counter[0]}"
                inner = [k[len(node.target) + 1:] for k in keep if k.startswith(node.target + ".")]
                classes.append(_class_source(sub, inner, sub_name, classes, counter, aliases))
                lines.append(f"        _put(self, {node.target!r}, {sub_name}())  # {type(sub).__name__}")
        else:
            value = _attr(module, node.target)
            if not isinstance(value, torch.Tensor):
                raise BrainScoreError(f"{type(module).__name__}.{node.target} is a {type(value).__name__}, not a "
                                      f"tensor; it cannot be written into model.py.")
            is_param = isinstance(value, nn.Parameter)
            lines.append(f"        _tensor(self, {node.target!r}, {tuple(value.shape)}, {value.dtype}, {is_param})")
    body = re.sub(r"^\n+", "", code.src)
    return "\n".join(lines) + "\n\n" + textwrap.indent(body, "    ").rstrip() + "\n"


def _attr(module: nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def architecture_source(net: nn.Module, keep: Sequence[str], class_name: str = "Net") -> str:
    """Self-contained source (torch only) of a class ``class_name`` that rebuilds ``net`` with random weights.

    Parameters
    ----------
    net : the network (traced in eval mode; its training flag is restored)
    keep : qualified module names that must stay modules (the recorded layers)
    class_name : name of the top-level class

    Returns
    -------
    Python source: :data:`HEADER` (imports and two helpers), the classes of kept
    blocks, then ``class_name``. Load the weights with ``Net().load_state_dict(...)``
    after :func:`state_dict_for`.
    """
    names = set(module_names(net))
    missing = [k for k in keep if k not in names]
    if missing:
        raise BrainScoreError(f"layers {missing} are not modules of {type(net).__name__}.")
    classes: list[str] = []
    aliases: dict[str, str] = {}
    with evaluating(net):  # traced in eval mode (BN, dropout as at inference); every module's mode restored
        top = _class_source(net, list(keep), class_name, classes, [0], aliases)
    alias_lines = "".join(f"{k} = {v}\n" for k, v in sorted(aliases.items()))
    return HEADER + alias_lines + "\n\n" + "\n\n".join([*classes, top])


def build_from_source(source: str, class_name: str = "Net") -> nn.Module:
    """Execute generated source (in a fresh namespace) and instantiate ``class_name``."""
    namespace: dict[str, Any] = {"__name__": "cortexsim_generated"}
    exec(compile(source, "<cortexsim model.py>", "exec"), namespace)  # noqa: S102 - source generated above
    return namespace[class_name]()


def state_dict_for(rebuilt: nn.Module, net: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``net`` under the names of ``rebuilt`` (non-persistent buffers included)."""
    values = {**dict(net.named_parameters()), **dict(net.named_buffers(remove_duplicate=False))}
    out = {}
    for key, ref in rebuilt.state_dict().items():
        if key not in values:
            raise BrainScoreError(f"the rebuilt network has {key!r}, which the original has not.")
        value = values[key].detach().cpu()
        if value.shape != ref.shape:
            raise BrainScoreError(f"{key!r}: original shape {tuple(value.shape)}, rebuilt {tuple(ref.shape)}.")
        out[key] = value.clone()
    return out


def verify(rebuilt: nn.Module, net: nn.Module, layers: Sequence[str], example: torch.Tensor,
           atol: float = 1e-5) -> None:
    """Check that ``rebuilt`` (weights loaded) gives ``net``'s outputs and ``layers``' outputs on ``example``.

    Raises
    ------
    BrainScoreError
        A layer or the output differs by more than ``atol`` (relative to its scale).
    """
    def run(model: nn.Module) -> dict[str, torch.Tensor]:
        with evaluating(model, inference=True), capture(model, layers, transform=lambda y: y.detach().clone()) as got:
            out = model(example).detach()
        return {**got, "__output__": out}

    a, b = run(net), run(rebuilt)
    for name, ref in a.items():
        scale = float(ref.abs().max()) or 1.0
        err = float((ref - b[name]).abs().max())
        if b[name].shape != ref.shape or err > atol * max(scale, 1.0):
            raise BrainScoreError(f"the model.py rebuild of {name!r} differs from the original (max |Δ| {err:.3g}, "
                                  f"shape {tuple(b[name].shape)} vs {tuple(ref.shape)}).")
