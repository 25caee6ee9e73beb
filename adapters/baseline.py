"""``baseline``: the same architectures as the topographic methods, no spatial term.

>>> net = get_method("baseline").build("resnet18", 10)
>>> net.spatial_loss()[0]      # always 0

With ``layout`` the baseline also fixes positions for its areas (default areas
per arch: its registered ``default_areas``, or ``layers``), so that a trained
baseline exports to a Sheet in the same layout as the method it is compared with.
"""
from __future__ import annotations

from typing import Any

from cortexsim.layout import LAYOUTS, resolve_layout_params

from .archs import ARCHS, arch_kwargs, build_arch, get_arch, head_name
from .base import MethodSpec, TopographicNet, register
from .hooks import PREFIX, HookedNet, check_lam, check_layout, place_layers, resolve_layers


class BaselineNet(HookedNet):
    """An architecture with :meth:`spatial_loss` == 0 (inherited from :class:`TopographicNet`)."""

    method = "baseline"


def build(
    arch: str,
    num_classes: int,
    *,
    layout: str | None = None,
    lam: float = 0.0,
    layers: list[str] | None = None,
    seed: int = 0,
    image_size: int = 32,
    **kwargs: Any,
) -> TopographicNet:
    """Build a baseline network.

    Parameters
    ----------
    arch : a registered architecture (:func:`adapters.archs.arch_names`)
    num_classes : int
    layout : str, optional
        Fix positions of the areas with this layout (any of :data:`cortexsim.layout.LAYOUTS`).
    lam : float
        Accepted for a uniform interface; must be ≥ 0 and has no effect.
    layers : list of str, optional
        Modules to export as areas (area name = module name); default per arch.
    seed, image_size : int
    **kwargs : ``in_channels``, ``cifar_stem``, ``maxpool``, ``stem_init``, ``input_norm`` (see
        :func:`adapters.archs.build_arch`).
    """
    spec = get_arch(arch)
    arch = spec.name
    check_lam(lam)
    akw = arch_kwargs(kwargs, "baseline")
    net = build_arch(arch, num_classes, image_size=image_size, seed=seed, **akw)
    if layout is not None:
        layout = check_layout(layout, LAYOUTS, "baseline")
    defaults = spec.default_areas
    names = resolve_layers(net, layers, list(defaults.values()))
    areas = dict(defaults) if layers is None else {n: n for n in names}
    model = BaselineNet(net, capture=names if layout else [], head=head_name(arch))
    model.areas = {a: PREFIX + m for a, m in areas.items()}
    if layout is not None:
        shapes = model.probe_shapes(image_size)  # channels: the net's first conv
        extra = {"seed": seed} if layout == "retinotopic" else {}
        model.placements = place_layers(shapes, layout, {m: resolve_layout_params(layout, a, extra) for a, m in areas.items()})
        model.layout = layout
    return model


SPEC = register(
    MethodSpec(
        name="baseline",
        build=build,
        archs=ARCHS,
        defaults={"lam": 0.0, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 256},
        paper="Non-topographic control: the same architectures trained on the task loss alone.",
    )
)
