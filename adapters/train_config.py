"""``TrainConfig``: every trainer option in one place — its default, its check, its CLI flag, its resume rule.

One field per option. Its ``metadata`` (written with :func:`option`) says

* ``help`` — the ``cortexsim train --<flag>`` help (the flag is the name with ``-`` for ``_``);
* ``cli`` — the argparse ``type`` name (:data:`_CLI_TYPES`), ``"bool"`` (``--x/--no-x``),
  ``"list"`` (``nargs="+"``), ``"json"`` or None (no flag);
* ``check`` — how :meth:`TrainConfig.validate` checks a given value (:data:`_CHECKS`);
* ``fixed`` — the value may not change when a run is resumed;
* ``method_option`` — only methods that list it in ``MethodSpec.train_options`` accept a
  non-default value (e.g. TDANN's ``swapopt``).

So adding an option is one field here (plus the code that uses it): the ``Trainer`` keyword,
the saved ``config.json["trainer"]`` entry, the default an older ``config.json`` that lacks it
reads as, the resume check and the CLI flag all come from the field. ``None`` means "the
method's default" (:attr:`MethodSpec.train_defaults`), resolved when training is set up.

This module imports no torch: ``cortexsim --help`` builds the train parser from it.
"""
from __future__ import annotations

import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from cortexsim.errors import AdapterError

def option(default: Any, help: str, *, cli: str | None = None, check: str | None = None, fixed: bool = False,
           choices: tuple[str, ...] | None = None, method_option: bool = False, legacy: Any = MISSING) -> Any:
    """A :class:`TrainConfig` field with its metadata (see the module docstring).

    ``legacy``: what a ``config.json`` written before the option existed reads as, where that differs
    from ``default`` (what those runs did, so they resume unchanged).
    """
    meta = {"help": help, "cli": cli, "check": check, "fixed": fixed, "choices": choices,
            "method_option": method_option, "legacy": default if legacy is MISSING else legacy}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """The options of one training run (as given; ``None`` = the method's default). See :class:`Trainer`."""

    method: str = option("baseline", "registered method, listed below (default: baseline)", cli="str",
                         check="str", fixed=True)
    arch: str | None = option(None, "architecture, e.g. resnet18 (default: the method's, listed below)",
                              cli="str", check="str_or_none", fixed=True)
    layout: str | None = option(None, "unit/channel layout (default: the method's)", cli="str",
                                check="str_or_none", fixed=True)
    lam: float | None = option(None, "spatial-loss weight λ ≥ 0 (default: the method's)", cli="nonneg_float",
                               fixed=True)
    data: str | os.PathLike = option("digits", "digits | lfw | folder with CIFAR-10/100 (torchvision layout or "
                                     "binary) or ImageNet-style ROOT[/train]/<class>/<image> (default: digits)",
                                     cli="str", fixed=True)
    epochs: int | None = option(None, "epochs (at least one of --epochs / --steps)", cli="pos_int",
                                check="pos_int_or_none")
    steps: int | None = option(None, "maximum optimizer steps", cli="pos_int", check="pos_int_or_none")
    batch_size: int | None = option(None, "images per step and process (default: the method's, else 128)",
                                    cli="pos_int", check="pos_int_or_none", fixed=True)
    lr: float | None = option(None, "learning rate > 0 (default: the method's)", cli="pos_float",
                              check="pos_float_or_none")
    optimizer: str | None = option(None, "default: the method's", cli="str", choices=("sgd", "adam", "adamw"))
    weight_decay: float | None = option(None, "weight decay ≥ 0 (default: the method's)", cli="nonneg_float",
                                        check="nonneg_float_or_none")
    momentum: float | None = option(None, "SGD momentum ≥ 0 (default: the method's, else 0.9)", cli="nonneg_float",
                                    check="nonneg_float_or_none")
    nesterov: bool | None = option(None, "Nesterov momentum for SGD (default: the method's; TDANN's supervised "
                                   "recipe uses it)", cli="bool")
    scheduler: str | None = option(None, "lr schedule (default: the method's, else cosine for SGD, constant "
                                   "for Adam)", cli="str", choices=("cosine", "constant"))
    warmup_fraction: float | None = option(None, "fraction of the steps with a linear lr warm-up, in [0, 1) "
                                           "(default: the method's, else 0)", cli="nonneg_float")
    task: str | None = option(None, "default: the method's, else supervised", cli="str",
                              choices=("supervised", "simclr"), fixed=True)
    temperature: float = option(0.1, "SimCLR NT-Xent temperature > 0 (default 0.1)", cli="pos_float",
                                check="pos_float")
    augment: str | None = option(
        None, "supervised augmentation: reference (the method's reference: none for ws/as, tdann for tdann, "
              "standard for the others) | none | standard (random crop + flip) | flip | tdann (random resized "
              "crop, flip, colour jitter 0.4); default reference", cli="str",
        choices=("reference", "none", "standard", "flip", "tdann"), fixed=True, legacy="standard")
    simclr_strength: float | None = option(None, "SimCLR colour-jitter strength (default: the method's "
                                           "reference, tdann 1.0, else 0.5)", cli="nonneg_float",
                                           check="nonneg_float_or_none", fixed=True, legacy=0.5)
    simclr_blur: float | None = option(None, "SimCLR Gaussian-blur probability in [0, 1] (default: the method's "
                                       "reference, tdann 0.5, else 0)", cli="nonneg_float",
                                       check="nonneg_float_or_none", fixed=True, legacy=0.0)
    simclr_min_scale: float | None = option(None, "SimCLR smallest crop area fraction in (0, 1] (default: the "
                                            "method's reference, tdann 0.08, else 0.2)", cli="pos_float",
                                            check="pos_float_or_none", fixed=True, legacy=0.2)
    device: str = option("auto", "auto | cpu | cuda | cuda:N (default auto)", cli="str", check="str")
    amp: bool = option(True, "bf16 autocast on CUDA (default on)", cli="bool", check="bool")
    compile: bool = option(False, "torch.compile (default off)", cli="bool", check="bool")
    seed: int = option(0, "random seed (default 0)", cli="nonneg_int", check="nonneg_int", fixed=True)
    checkpoint_every: int | None = option(None, "checkpoint every N steps", cli="pos_int", check="pos_int_or_none")
    keep_last: int = option(3, "checkpoints kept (default 3)", cli="pos_int", check="pos_int")
    log_every: int = option(10, "log every N steps (default 10)", cli="pos_int", check="pos_int")
    num_workers: int = option(0, "DataLoader workers (default 0)", cli="nonneg_int", check="nonneg_int")
    image_size: int | None = option(None, "input side in px, ≥ 8 (default: 32 for CIFAR/digits/lfw; image "
                                    "folders: the method's, else 224)", cli="image_size", check="pos_int_or_none",
                                    fixed=True)
    layers: list[str] | None = option(None, "layers to regularise (default: the method's)", cli="list", fixed=True)
    method_kwargs: dict[str, Any] | None = option(
        None, "the method's own build options as a JSON object, e.g. '{\"n\": 4}' for reset; an unknown key is "
              "an error that lists the method's options (stored in config.json; fixed on --resume)",
        cli="json", fixed=True)
    deterministic: bool = option(False, "torch.use_deterministic_algorithms, no cuDNN autotuning",
                                 cli="bool", check="bool")
    find_unused_parameters: bool | None = option(None, "DDP find_unused_parameters (default: the method's)",
                                                 cli="bool")
    swapopt: int = option(
        0, "tdann: position pre-optimisation before training (default 0 = off). What N counts depends on the "
           "net's swap_algorithm (--method-kwargs '{\"swap_algorithm\": ...}'): \"cortexsim\" (default) N rounds per "
           "layer, each applying the best swap in 64 groups of the 32 nearest units; \"tdann\" N squares of the "
           "neighbourhood width visited per layer, swap_steps (500) swap attempts in each (TDANN's own run: "
           "100,000 squares)",
        cli="nonneg_int", check="nonneg_int", fixed=True, method_option=True)
    swapopt_images: int = option(512, "training images driving the swaps (default 512)", cli="pos_int",
                                 check="pos_int", fixed=True, method_option=True)
    swapopt_reference: str | None = option(None, "run folder of a trained network whose responses drive the "
                                           "swaps (default: the initial net)", cli="str", check="str_or_none",
                                           fixed=True, method_option=True)

    def __post_init__(self) -> None:
        if isinstance(self.swapopt_reference, os.PathLike):
            self.swapopt_reference = str(self.swapopt_reference)

    # ------------------------------------------------------------------ the table every other place reads
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in the order of ``config.json["trainer"]``."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Option -> what a ``config.json`` written before the option existed reads as: its ``legacy`` value
        where it has one (the augmentation: those runs used ``standard`` and SimCLR 0.5 / no blur / 0.2), else
        its default."""
        return {f.name: f.metadata["legacy"] for f in fields(cls)}

    @classmethod
    def resume_fixed(cls) -> tuple[str, ...]:
        """Options that must keep their value when a run is resumed."""
        return tuple(f.name for f in fields(cls) if f.metadata["fixed"])

    @classmethod
    def method_options(cls) -> tuple[str, ...]:
        """Options only the methods that declare them (``MethodSpec.train_options``) accept."""
        return tuple(f.name for f in fields(cls) if f.metadata["method_option"])

    @classmethod
    def from_saved(cls, saved: dict[str, Any], **overrides: Any) -> TrainConfig:
        """The config of ``config.json["trainer"]`` (missing keys: their defaults), with ``overrides``.

        Raises AdapterError for keys this version does not know.
        """
        unknown = sorted(set(saved) - set(cls.names()))
        if unknown:
            raise AdapterError(f"unknown trainer settings {unknown}; the config was written by another version "
                               f"or edited by hand. Fix it or start a new run folder.")
        return cls(**{**cls.defaults(), **saved, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able options as saved in ``config.json["trainer"]``."""
        d = asdict(self)
        d["data"] = str(d["data"])
        d["layers"] = None if d["layers"] is None else list(d["layers"])
        return d

    def changed_on_resume(self, saved: dict[str, Any]) -> list[str]:
        """The :meth:`resume_fixed` options whose value differs from ``saved`` (a run's config)."""
        def value(cfg: dict[str, Any], k: str) -> Any:
            v = cfg.get(k, self.defaults().get(k))
            return (v or {}) if k == "method_kwargs" else v  # None and {} are the same: no options

        now = self.to_dict()
        return [k for k in self.resume_fixed() if value(saved, k) != value(now, k)]

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check each given value against its field's ``check`` / ``choices``; AdapterError says which and why."""
        for f in fields(self):
            value, check, choices = getattr(self, f.name), f.metadata["check"], f.metadata["choices"]
            if choices is not None and value is not None and (not isinstance(value, str)
                                                              or value.lower() not in choices):
                raise AdapterError(f"{f.name} must be one of {choices}; got {value!r}.")
            if check is not None and not _CHECKS[check][0](value):
                raise AdapterError(f"{f.name} must be {_CHECKS[check][1]}; got {value!r}.")
        if self.lam is not None and not _is_number(self.lam, 0):
            raise AdapterError(f"lam (the spatial-loss weight λ) must be a finite number ≥ 0; got {self.lam!r}.")
        if self.warmup_fraction is not None and not (_is_number(self.warmup_fraction, 0) and self.warmup_fraction < 1):
            raise AdapterError(f"warmup_fraction must be in [0, 1); got {self.warmup_fraction!r}.")
        for name in ("simclr_blur", "simclr_min_scale"):
            if getattr(self, name) is not None and getattr(self, name) > 1:
                raise AdapterError(f"{name} must be at most 1; got {getattr(self, name)!r}.")


def _is_int(v: Any, low: int) -> bool:
    return not isinstance(v, bool) and isinstance(v, int) and v >= low


def _is_number(v: Any, low: float, strict: bool = False) -> bool:
    return (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
            and (v > low if strict else v >= low))


#: check name -> (predicate, what the value must be)
_CHECKS: dict[str, tuple[Any, str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "str_or_none": (lambda v: v is None or isinstance(v, (str, os.PathLike)), "a string or None"),
    "bool": (lambda v: isinstance(v, bool), "True or False"),
    "pos_int": (lambda v: _is_int(v, 1), "a positive integer"),
    "pos_int_or_none": (lambda v: v is None or _is_int(v, 1), "a positive integer"),
    "nonneg_int": (lambda v: _is_int(v, 0), "an integer ≥ 0"),
    "pos_float": (lambda v: _is_number(v, 0, strict=True), "a finite number > 0"),
    "pos_float_or_none": (lambda v: v is None or _is_number(v, 0, strict=True), "a finite number > 0"),
    "nonneg_float_or_none": (lambda v: v is None or _is_number(v, 0), "a finite number ≥ 0"),
}


def _cli_types() -> dict[str, Any]:
    from cortexsim.cliutil import finite_float, int_at_least, nonnegative_int, positive_int

    from .cli import json_object

    return {"str": str, "pos_int": positive_int, "nonneg_int": nonnegative_int,
            "pos_float": finite_float(0.0, strict=True), "nonneg_float": finite_float(0.0),
            "image_size": int_at_least(8, " px (the networks downsample by up to 32×; CIFAR is 32 px)"),
            "json": json_object}


def add_arguments(parser: Any) -> None:
    """One ``--flag`` per :class:`TrainConfig` field with a ``cli`` entry; every argparse default is None
    (so ``--resume`` overrides only what is given; the Trainer fills the rest)."""
    import argparse

    types = _cli_types()
    for f in fields(TrainConfig):
        kind, meta = f.metadata["cli"], f.metadata
        if kind is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = {"dest": f.name, "help": meta["help"], "default": None}
        if kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif kind == "list":
            kw["nargs"] = "+"
        else:
            kw["type"] = types[kind]
            if kind == "json":
                kw["metavar"] = "JSON"
        if meta["choices"]:
            kw["choices"] = meta["choices"]
        parser.add_argument(flag, **kw)


def given_options(args: Any) -> dict[str, Any]:
    """The :class:`TrainConfig` options given on the command line (argparse ``Namespace`` -> dict)."""
    return {k: getattr(args, k) for k in TrainConfig.names() if getattr(args, k, None) is not None}
