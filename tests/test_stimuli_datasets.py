"""CIFAR-10/100 (python and binary layouts) and ImageFolder from tiny fake folders; errors; CLI/registry."""
from __future__ import annotations

import argparse
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from cortexsim import stimuli
from cortexsim.errors import StimulusError
from cortexsim.stimuli import DatasetNotFoundError
from cortexsim.stimuli.cli import add_parser


def _cifar_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def _write_cifar10_py(root, n=4):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    data = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        x = _cifar_images(n, k)
        y = [(k + j) % 10 for j in range(n)]
        data[name] = (x, y)
        with open(d / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": y, "data": x, "filenames": [f"{name}-{j}.png" for j in range(n)]}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}, f)
    return data


def test_cifar10_python_layout_pixels_and_labels(tmp_path):
    data = _write_cifar10_py(tmp_path)
    s = stimuli.cifar10(tmp_path)
    x, y = data["test_batch"]
    assert len(s) == 4 and s.shape == (3, 32, 32)
    np.testing.assert_array_equal((s.tensor() * 255).round().to(torch.uint8).numpy(), x.reshape(4, 3, 32, 32))
    m = s.metadata
    assert m["label"].tolist() == y and m["label_name"][0] == f"class{y[0]}"
    assert set(m["macro_class"]) == {"none"} and set(m["split"]) == {"test"}
    tr = stimuli.cifar10(tmp_path / "cifar-10-batches-py", split="train", image_size=8)
    assert len(tr) == 20 and tr.load([19]).shape == (1, 3, 8, 8)
    x5, _ = data["data_batch_5"]
    np.testing.assert_array_equal(
        (stimuli.cifar10(tmp_path, split="train")[19] * 255).round().to(torch.uint8).numpy(), x5[3].reshape(3, 32, 32)
    )


def test_cifar100_binary_layout_with_reset_macro_classes(tmp_path):
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    fine = np.array([2, 17, 9, 50, 98, 76], np.uint8)
    coarse = fine // 5
    x = _cifar_images(6, 1)
    (d / "test.bin").write_bytes(np.concatenate([coarse[:, None], fine[:, None], x], 1).tobytes())
    (d / "train.bin").write_bytes(np.concatenate([coarse[:2, None], fine[:2, None], x[:2]], 1).tobytes())
    (d / "fine_label_names.txt").write_text("\n".join(f"fine{i}" for i in range(100)))
    (d / "coarse_label_names.txt").write_text("\n".join(f"coarse{i}" for i in range(20)))
    s = stimuli.cifar100(tmp_path)
    m = s.metadata
    assert m["label"].tolist() == fine.tolist() and m["coarse_label"].tolist() == coarse.tolist()
    assert m["macro_class"].tolist() == ["people", "houses", "objects", "none", "people", "houses"]
    np.testing.assert_array_equal((s.load([4, 1]) * 255).round().to(torch.uint8).numpy(), x[[4, 1]].reshape(2, 3, 32, 32))
    assert len(stimuli.cifar100(tmp_path, split="all")) == 8


def test_cifar_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py.*Nothing is downloaded|Nothing is downloaded.*cifar-10-batches-py"):
        stimuli.cifar10(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        stimuli.cifar100(tmp_path)
    d = tmp_path / "cifar-10-batches-py"
    _write_cifar10_py(tmp_path)
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(d / "test_batch", "wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f)
    with pytest.raises(StimulusError, match="refusing to unpickle"):
        stimuli.cifar10(tmp_path)


def test_imagefolder(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("cat", 2), ("dog", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray((rng.random((10, 10, 3)) * 255).astype(np.uint8)).save(tmp_path / cls / f"{i}.png")
    s = stimuli.imagefolder(tmp_path, image_size=10, macro_classes={"pets": ["dog"]})
    m = s.metadata
    assert m["label"].tolist() == [0, 0, 1, 1, 1] and m["label_name"].tolist() == ["cat"] * 2 + ["dog"] * 3
    assert m["macro_class"].tolist() == ["none"] * 2 + ["pets"] * 3
    assert m["stimulus_id"][2] == "dog/0.png"
    ref = np.asarray(Image.open(tmp_path / "dog" / "0.png")) / 255.0
    np.testing.assert_allclose(s[2].permute(1, 2, 0).numpy(), ref, atol=1e-6)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        stimuli.imagefolder(tmp_path / "none")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="one folder per class"):
        stimuli.imagefolder(tmp_path / "empty")


def test_registry_and_preview_cli(tmp_path, capsys):
    assert set(stimuli.names()) >= {"gratings", "floc", "floc_offline", "numbers", "digits", "cifar10", "cifar100", "imagefolder"}
    assert len(stimuli.get("numbers", n_per_digit=1, image_size=16)) == 10
    assert set(stimuli.get("digits", n_per_digit=1).metadata["source"]) == {"load_digits"}
    with pytest.raises(StimulusError, match="unknown stimulus set"):
        stimuli.get("mnist")
    with pytest.raises(StimulusError, match="--path"):
        stimuli.get("cifar10")
    parser = argparse.ArgumentParser(prog="cortexsim")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "grid.png"
    args = parser.parse_args(["stimuli", "preview", "digits", "--out", str(out), "--n", "6", "--nrow", "3", "--image-size", "16"])
    assert args.func(args) == 0
    img = np.asarray(Image.open(out))
    assert img.shape[:2] == (2 * 16 + 3 * 2, 3 * 16 + 4 * 2)  # 2 rows x 3 cols with 2-px padding
    bad = parser.parse_args(["stimuli", "preview", "imagefolder", "--out", str(out), "--path", str(tmp_path / "x")])
    with pytest.raises(DatasetNotFoundError, match="does not exist"):  # the CLI prints it on one line, exit 2
        bad.func(bad)


def test_one_cifar_reader_binary_first_kind_detection_and_incomplete_folders(tmp_path):
    from cortexsim.stimuli.cifar import locate_cifar, read_cifar

    data = _write_cifar10_py(tmp_path)
    py = read_cifar(tmp_path, split="train", names=False)  # kind detected, no class-name file needed
    assert (py.kind, py.fmt, py.names) == (10, "py", None) and py.split == ["train"] * 20
    np.testing.assert_array_equal(py.images()[4], data["data_batch_2"][0][0].reshape(3, 32, 32))
    np.testing.assert_array_equal(py.labels[:4], data["data_batch_1"][1])
    # a binary copy next to it wins (one format rule for stimuli and training)
    b = tmp_path / "cifar-10-batches-bin"
    b.mkdir()
    rec = np.zeros((2, 3073), np.uint8)
    rec[:, 0], rec[:, 1:] = [7, 3], np.arange(2)[:, None] + 100
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rec.tofile(b / name)
    (b / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    got = read_cifar(tmp_path, 10, split="test")
    assert got.fmt == "bin" and got.labels.tolist() == [7, 3] and got.names[7] == "c7"
    assert int(got.images()[1].min()) == 101 and isinstance(got.parts[0].base, np.memmap)
    assert locate_cifar(b) == (10, "bin", b)  # the inner folder itself
    (b / "data_batch_3.bin").unlink()
    assert locate_cifar(tmp_path, split="test")[1] == "bin"  # the test split is complete
    with pytest.raises(DatasetNotFoundError, match=r"cifar-10-batches-bin is incomplete \(data_batch_3.bin missing\)"):
        read_cifar(tmp_path, split="train")
    with pytest.raises(DatasetNotFoundError, match="CIFAR-100 not found.*cifar-100-python"):
        read_cifar(tmp_path, 100)
