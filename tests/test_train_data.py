"""Datasets load through torchvision's own classes from tiny files in the real on-disk formats."""

import hashlib
import pickle
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

from reference import data

MNIST_STATS = data.TORCHVISION["mnist"][1:]


def _write_idx(path, array: np.ndarray) -> None:
    """An uncompressed idx file: magic (0, 0, type 0x08 = uint8, ndim), big-endian sizes, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root, cls_name="MNIST", n_train=40, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / cls_name / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28))
        labels = rng.integers(0, 10, n)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = images, labels
    return arrays


def write_cifar(root, monkeypatch, n_per_batch=6, seed=0):
    """Five train batches, a test batch and the meta file; the class's md5 lists point at them."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    md5 = {}

    def dump(name, obj):
        (folder / name).write_bytes(pickle.dumps(obj))
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()

    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch).tolist()
        dump(name, {"data": images, "labels": labels})
        batches[name] = images, labels
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    dump("batches.meta", {"label_names": names})
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(
        cls, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)]
    )
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5["batches.meta"]})
    return batches, names


def test_mnist_from_idx_files(tmp_path):
    arrays = write_mnist(tmp_path)
    d = data.load("mnist", data_dir=tmp_path, seed=3, val_fraction=0.25)
    assert (len(d.train), len(d.val), len(d.test)) == (30, 10, 10)
    assert d.in_channels == 1 and d.image_size == (28, 28) and d.class_names[0] == "0 - zero"
    assert (d.mean, d.std) == MNIST_STATS
    images, labels = arrays["t10k"]
    mean, std = MNIST_STATS
    expected = (torch.as_tensor(images, dtype=torch.float32) / 255 - mean[0]) / std[0]
    torch.testing.assert_close(d.test.x[:, 0], expected)
    assert d.test.y.tolist() == labels.tolist()
    # train + val is the training file, each image once, with its own label
    train_images, train_labels = arrays["train"]
    got = torch.cat([d.train.x, d.val.x])[:, 0] * std[0] + mean[0]
    pixels = np.rint(got.numpy() * 255).astype(np.int64)
    rows = {p.tobytes(): label for p, label in zip(train_images, train_labels)}
    assert sorted(rows[p.tobytes()] for p in pixels) == sorted(train_labels.tolist())
    assert set(torch.cat([d.train.y, d.val.y]).tolist()) <= set(train_labels.tolist())


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    write_mnist(tmp_path, "FashionMNIST")
    d = data.load("fashion-mnist", data_dir=tmp_path)
    assert d.class_names[0] == "T-shirt/top" and d.train.x.shape[1:] == (1, 28, 28)


def test_cifar10_with_checked_md5s(tmp_path, monkeypatch):
    batches, names = write_cifar(tmp_path, monkeypatch)
    d = data.load("cifar10", model="lenet", data_dir=tmp_path, val_fraction=0.2)
    assert (len(d.train) + len(d.val), len(d.test)) == (30, 6)
    assert d.class_names == tuple(names) and d.image_size == (32, 32) and d.in_channels == 3
    images, labels = batches["test_batch"]
    _, mean, std = data.TORCHVISION["cifar10"]
    expected = torch.as_tensor(images, dtype=torch.float32).view(-1, 3, 32, 32) / 255
    expected = (expected - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(d.test.x, expected)
    assert d.test.y.tolist() == labels
    # a corrupted batch fails torchvision's integrity check: a DataError, not a silent load
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"corrupt")
    with pytest.raises(data.DataError, match="cifar10"):
        data.load("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_folder_names_dataset_folder_and_fix(tmp_path, name):
    with pytest.raises(data.DataError) as e:
        data.load(name, data_dir=tmp_path / "nowhere")
    message = str(e.value)
    assert repr(name) in message and str(tmp_path / "nowhere") in message
    assert "--download" in message


def _no_network(*args, **kwargs):
    raise URLError("[Errno -3] Temporary failure in name resolution")


def test_download_without_network_mnist(tmp_path, monkeypatch):
    """MNIST tries each mirror and raises a RuntimeError listing them: covered by our message."""
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", _no_network)
    with pytest.raises(data.DataError, match=r"'mnist' could not be downloaded.*Tried https://"):
        data.load("mnist", data_dir=tmp_path, download=True)


def test_download_without_network_cifar(tmp_path, monkeypatch):
    """CIFAR-10's download raises a bare URLError: covered by our message too."""
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", _no_network)
    with pytest.raises(data.DataError, match=r"'cifar10' could not be downloaded.*URLError"):
        data.load("cifar10", data_dir=tmp_path, download=True)


def test_digits_offline_splits_are_seeded_and_disjoint():
    a = data.load("digits", seed=5)
    b = data.load("digits", seed=5)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.image_size == (8, 8) and a.class_names == tuple("0123456789")
    assert abs(a.train.x.mean().item()) < 0.05  # normalised with the training set's stats
    conv = data.load("digits", model="lenet", seed=5)
    assert conv.image_size == (32, 32)


def test_train_fraction_is_a_nested_seeded_subset():
    full = data.load("digits", seed=1)
    half = data.load("digits", seed=1, train_fraction=0.5)
    assert len(half.train) == -(-len(full.train) // 2)
    assert torch.equal(half.train.x, full.train.x[: len(half.train)])
    assert torch.equal(half.val.x, full.val.x) and torch.equal(half.test.x, full.test.x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="train_fraction must be in"):
        data.load("digits", train_fraction=0)
