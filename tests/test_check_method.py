"""cortexsim.adapters.testing.check_method on every registered method, and that it catches broken ones."""
from __future__ import annotations

import dataclasses

import pytest

from cortexsim import adapters
from cortexsim.adapters import get_method
from cortexsim.adapters.testing import TINY, MethodCheckError, check_method

METHODS = adapters.methods()


def test_tiny_configurations_name_registered_methods():
    # a method without an entry is checked at its spec's default arch and build options (slower, same checks)
    assert set(TINY) <= set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_method_conforms(method):
    report = check_method(method)
    assert report["loss_after"] < report["loss_before"]
    assert report["n_placements"] >= 1
    if method == "baseline":
        assert report["spatial_loss"] == 0.0
    else:  # every other method's tiny configuration trains a spatial term
        assert report["spatial_loss"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_method_resumes_through_the_trainer(method):
    check_method(method, trainer=True)


def _broken(spec, patch):
    def build(*args, **kwargs):
        net = spec.build(*args, **kwargs)
        patch(net)
        return net

    return dataclasses.replace(spec, name=f"{spec.name}_broken", build=build)


def test_wrong_placement_size_is_caught():
    spec = get_method("ws")

    def drop_units(net):
        (name, p), = net.placements.items()
        net.placements[name] = dataclasses.replace(p, positions=p.positions[:-1], channel=p.channel[:-1],
                                                   row=p.row[:-1], col=p.col[:-1])

    with pytest.raises(MethodCheckError, match=r"ws_broken\] placements: 'net.fc1': \(15, 2\) positions / 15 units"
                                               r" for an output of \(16,\)"):
        check_method(_broken(spec, drop_units), arch="th_mnist", build_kwargs={"grid_side": 4})


def test_detached_spatial_loss_is_caught():
    spec = get_method("ws")

    def detach(net):
        original = net.spatial_loss

        def spatial_loss():
            total, per_layer = original()
            return total.detach() + 1.0, per_layer  # no graph and not 0: the weights get no spatial gradient
        net.spatial_loss = spatial_loss

    with pytest.raises(MethodCheckError, match="gradient: a spatial loss without a graph must be the constant 0"):
        check_method(_broken(spec, detach), arch="th_mnist", build_kwargs={"grid_side": 4})


def test_positions_not_rebuilt_are_caught():
    spec = get_method("ws")
    calls = []

    def shift_second(net):
        calls.append(1)
        if len(calls) == 2:  # the rebuilt twin gets other positions than the trained net
            (name, p), = net.placements.items()
            net.placements[name] = dataclasses.replace(p, positions=p.positions + 1.0)

    with pytest.raises(MethodCheckError, match="resume: a rebuilt network has different placements"):
        check_method(_broken(spec, shift_second), arch="th_mnist", build_kwargs={"grid_side": 4})


def test_a_method_without_a_tiny_entry_is_checked_at_its_defaults():
    spec = dataclasses.replace(get_method("ws"), name="_ws_untuned", defaults={"arch": "th_mnist", "grid_side": 3})
    report = check_method(spec)
    assert report["arch"] == "th_mnist" and report["n_placements"] == 1
