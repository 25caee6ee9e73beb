"""Training data (offline sets, CIFAR layouts, image folders), seeded sampling/augmentation, NT-Xent."""
from __future__ import annotations

import pickle

import numpy as np
import os

import pytest
import torch
from torch import nn

from cortexsim.adapters.base import AdapterError
from cortexsim.errors import DatasetNotFoundError
from cortexsim.adapters.data import Augmented, EpochSampler, load_dataset, supervised_transform
from cortexsim.adapters.simclr import TwoViews, nt_xent, simclr_transform


def test_digits_is_sklearn_digits_upsampled():
    from sklearn.datasets import load_digits

    d = load_digits()
    data = load_dataset("digits")
    assert data.num_classes == 10 and len(data) == 1797 and data.image_size == 32
    img, label = data.base[7]
    assert img.shape == (3, 32, 32) and img.dtype == torch.uint8 and int(label) == d.target[7]
    assert torch.equal(img[0], img[2])  # grey replicated to RGB
    # Mean intensity survives bilinear upsampling (up to edge effects and uint8 rounding).
    assert img.float().mean().item() / 255 == pytest.approx(d.images[7].mean() / 16, abs=0.03)
    again = load_dataset("digits")
    assert torch.equal(again.base.images, data.base.images)  # deterministic


def test_lfw_is_faces_then_non_faces():
    from skimage.data import lfw_subset

    data = load_dataset("lfw", image_size=24)
    assert data.num_classes == 2 and len(data) == 200
    labels = data.base.labels
    assert labels[:100].tolist() == [1] * 100 and labels[100:].tolist() == [0] * 100
    # 25 -> 24 px bilinear: close to the source pixel values.
    src = lfw_subset()[3]
    ours = data.base.images[3, 0].float().numpy() / 255
    assert abs(ours.mean() - src.mean()) < 0.02


def _fake_cifar_python(root, n_per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)
        expected.append((data, labels))
    return expected


def test_cifar10_python_layout(tmp_path):
    expected = _fake_cifar_python(tmp_path)
    train = load_dataset(tmp_path)
    assert train.name == "cifar10" and train.num_classes == 10 and len(train) == 20
    img, label = train.base[5]  # second batch, second image; rows are R, G, B planes of 32×32
    data, labels = expected[1]
    assert torch.equal(img, torch.from_numpy(data[1].reshape(3, 32, 32))) and int(label) == labels[1]
    test = load_dataset(tmp_path / "cifar-10-batches-py", train=False)  # the inner folder works too
    assert len(test) == 4 and torch.equal(test.base.images[0], torch.from_numpy(expected[5][0][0].reshape(3, 32, 32)))


def test_cifar100_binary_layout(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    rec = np.zeros((3, 2 + 3072), dtype=np.uint8)
    rec[:, 0] = [1, 2, 3]          # coarse labels (ignored)
    rec[:, 1] = [10, 55, 99]       # fine labels
    rec[:, 2:] = np.arange(3)[:, None]
    rec.tofile(folder / "train.bin")
    data = load_dataset(tmp_path)
    assert data.name == "cifar100" and data.num_classes == 100
    assert data.base.labels.tolist() == [10, 55, 99] and data.base.images[2].unique().tolist() == [2]


def test_incomplete_cifar_and_missing_folders_say_what_to_put_where(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DatasetNotFoundError, match="incomplete .*data_batch_1 missing.*ROOT/cifar-10-batches-py/data_batch_1"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="does not exist .CIFAR is not downloaded for you.; put CIFAR-10"):
        load_dataset("cifar10")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no CIFAR files or class folders found .*ROOT/train/<class>/<image>"):
        load_dataset(tmp_path / "empty")


def test_missing_data_is_a_dataset_not_found_error_under_every_import_path(tmp_path):
    import cortexsim
    from cortexsim import adapters, errors

    assert cortexsim.AdapterError is adapters.AdapterError is AdapterError is errors.AdapterError
    assert adapters.DatasetNotFoundError is cortexsim.DatasetNotFoundError is errors.DatasetNotFoundError
    for where in (tmp_path / "nothing-here", "cifar10"):
        with pytest.raises(errors.DatasetNotFoundError) as info:
            load_dataset(where)
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, cortexsim.CortexsimError)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(AdapterError, match="is a file, not a folder") as info:   # a wrong argument, not missing data
        load_dataset(tmp_path / "a-file")
    assert not isinstance(info.value, FileNotFoundError)


def test_image_folder(tmp_path):
    from PIL import Image

    for k, cls in enumerate(["cat", "dog"]):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((40, 50, 3), 40 * k + i, np.uint8)).save(tmp_path / "train" / cls / f"{i}.png")
    data = load_dataset(tmp_path, image_size=16)
    assert data.name == "imagefolder" and data.num_classes == 2 and len(data) == 6 and not data.in_memory
    aug = Augmented(data.base, supervised_transform(16, in_memory=False))
    x, y = aug[4]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and int(y) == 1
    assert torch.allclose(x, torch.full_like(x, 41 / 255), atol=1e-6)  # constant image stays constant


def test_epoch_sampler_partitions_like_distributed_sampler_and_resumes():
    n, bs = 23, 3
    full = [list(EpochSampler(n, bs, seed=1, epoch=2, rank=r, world_size=2)) for r in range(2)]
    assert [len(f) for f in full] == [9, 9]          # 23 // 2 = 11 per rank -> 3 whole batches
    assert not set(full[0]) & set(full[1])          # disjoint shards
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1 * 1_000_003 + 2 * 7_919 - 104_729 + 12_345))
    assert full[0] == perm[0:22:2][:9].tolist() and full[1] == perm[1:22:2][:9].tolist()
    resumed = list(EpochSampler(n, bs, seed=1, epoch=2, rank=1, world_size=2, start_batch=2))
    assert resumed == full[1][6:] and len(EpochSampler(n, bs, seed=1, epoch=2, rank=1, world_size=2, start_batch=2)) == 3
    assert list(EpochSampler(n, bs, seed=1, epoch=3)) != list(EpochSampler(n, bs, seed=1, epoch=2))


def test_augmentation_depends_only_on_seed_epoch_index_and_leaves_global_rng_alone():
    data = load_dataset("lfw")
    aug = Augmented(data.base, supervised_transform(32, in_memory=True), seed=9)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = aug[17][0]
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(123)  # a different global state does not matter
    assert torch.equal(aug[17][0], a)
    aug.set_epoch(1)
    assert not torch.equal(aug[17][0], a)
    # Crop + flip: the output is a shifted / mirrored copy of the padded image, values in [0, 1].
    assert a.min() >= 0 and a.max() <= 1 and a.shape == (3, 32, 32)
    src = data.base.images[17].float() / 255
    padded = nn.functional.pad(src, (4, 4, 4, 4))
    hits = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (0, 1)
            if torch.allclose(padded[:, dy:dy + 32, dx:dx + 32].flip(-1) if f else padded[:, dy:dy + 32, dx:dx + 32],
                              a, atol=1e-6)]
    assert hits


def test_simclr_views_differ_and_are_in_range():
    data = load_dataset("lfw")
    aug = Augmented(data.base, TwoViews(simclr_transform(32)), seed=0)
    views, _ = aug[3]
    assert views.shape == (2, 3, 32, 32) and not torch.equal(views[0], views[1])
    assert views.min() >= 0 and views.max() <= 1


def _nt_xent_loop(z1, z2, tau):
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denom = sum(torch.exp(z[i] @ z[k] / tau) for k in range(n2) if k != i)
        total += -torch.log(torch.exp(z[i] @ z[j] / tau) / denom)
    return total / n2


def test_nt_xent_matches_loop_reference_and_hand_value():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    for tau in (0.1, 0.5):
        assert nt_xent(z1, z2, tau).item() == pytest.approx(_nt_xent_loop(z1, z2, tau).item(), rel=1e-5)
    # 2 images, orthogonal pairs: each anchor sees its positive (cos 1) and two negatives (cos 0):
    # loss = −log(e^{1/τ} / (e^{1/τ} + 2)).
    e = torch.eye(2)
    tau = 0.5
    assert nt_xent(e, e, tau).item() == pytest.approx(-np.log(np.exp(2) / (np.exp(2) + 2)), rel=1e-6)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent(z1, z2, 0.0)


def test_cifar_folder_with_a_malicious_pickle_is_refused(tmp_path):
    """Training data folders are untrusted: a pickle that would run code must not be loaded."""
    import pickle

    from cortexsim.adapters.data import load_dataset
    from cortexsim.errors import StimulusError

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    with pytest.raises(StimulusError, match="refusing to unpickle"):
        load_dataset(tmp_path)
    assert not (tmp_path / "pwned").exists()
