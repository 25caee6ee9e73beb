"""cortexsim.study.train: the method's recipe, one saved model per run, soft targets, accuracies."""
from __future__ import annotations

import json

import pytest
import torch

from cortexsim.adapters.trainer import load_trained
from cortexsim.study.train import accuracy, recipe, train_in_memory


def test_recipe_is_the_methods_own():
    assert recipe("ws") == {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "weight_decay": 0.0,
                            "scheduler": "constant", "warmup_fraction": 0.0}
    ch = recipe("channel", batch_size=64)  # Poli et al.: SGD 0.01 at batch 256, momentum 0.9, wd 0.01, warm-up 30 %
    assert ch["lr"] == pytest.approx(0.01 * 64 / 256) and ch["momentum"] == 0.9 and ch["weight_decay"] == 0.01
    assert ch["scheduler"] == "cosine" and ch["warmup_fraction"] == 0.3
    assert recipe("reset")["optimizer"] == "adam" and recipe("reset", lr=0.01)["lr"] == 0.01


def test_accuracy_by_argmax_and_by_nearest_code():
    labels = torch.tensor([0, 1, 1])
    assert accuracy(torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0]]), labels) == pytest.approx(2 / 3)
    codes = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    out = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.5, 0.6], [0.2, 0.9, 0.0]])
    assert accuracy(out, labels, codes) == pytest.approx(1.0)


def _task(n: int = 64, size: int = 16):
    """Two classes told apart by brightness of the left or the right half (learnable in a few steps)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = 0.2 * torch.rand(n, 3, size, size, generator=g)
    x[y == 0, :, :, : size // 2] += 0.7
    x[y == 1, :, :, size // 2:] += 0.7
    return x, y


@pytest.mark.parametrize("soft", [False, True])
def test_training_learns_writes_one_model_and_reloads(tmp_path, soft):
    x, y = _task(size=8 if soft else 16)
    codes = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]) if soft else None
    method = "reset" if soft else "ws"
    build = ({"method": "reset", "arch": "resnet20", "num_classes": 3, "layout": None, "lam": 0.0, "layers": None,
              "seed": 0, "image_size": 8, "kw": {"n": 1, "m": 4}} if soft else
             {"method": "ws", "arch": "th_mnist", "num_classes": 2, "layout": None, "lam": 0.5, "layers": None,
              "seed": 0, "image_size": 16, "kw": {}})
    res = train_in_memory(tmp_path, build, x, y, steps=30, codes=codes, heldout=(x[:16], y[:16]), log_every=10,
                          recipe_overrides={"batch_size": 16, "lr": 3e-3}, progress=False)
    assert [h["step"] for h in res["history"]] == [10, 20, 30]
    assert res["history"][-1]["task_loss"] < res["history"][0]["task_loss"]
    assert res["train_accuracy"] >= 0.9 and 0 <= res["heldout_accuracy"] <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "log.jsonl", "model.pt"]
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["build"] == build and cfg["trainer"]["optimizer"] == "adam" and cfg["trainer"]["batch_size"] == 16
    assert cfg["resolved"]["heldout_accuracy"] == res["heldout_accuracy"]
    net = load_trained(tmp_path)
    with torch.no_grad():
        out = net(x[:16])
    expect = accuracy(torch.sigmoid(out) if soft else out, y[:16], codes)
    assert expect == pytest.approx(res["heldout_accuracy"])
    assert method == build["method"]


def test_same_seed_same_run_although_dropout_draws_from_the_global_rng(tmp_path):
    # th_mnist has dropout 0.5: before the loop seeded the global RNG, two runs of one seed differed
    x, y = _task(size=16)
    build = {"method": "ws", "arch": "th_mnist", "num_classes": 2, "layout": None, "lam": 0.5, "layers": None,
             "seed": 0, "image_size": 16, "kw": {}}
    states = []
    for i, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)  # the caller's stream must not matter
        train_in_memory(tmp_path / str(i), build, x, y, steps=6, seed=3, log_every=3,
                        recipe_overrides={"batch_size": 16}, progress=False)
        states.append(torch.load(tmp_path / str(i) / "model.pt", weights_only=True))
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    train_in_memory(tmp_path / "c", build, x, y, steps=2, seed=3, progress=False, recipe_overrides={"batch_size": 16})
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's stream is restored
