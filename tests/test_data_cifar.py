"""CIFAR-10 loading from a fake CIFAR-format folder, error messages, GPU-style augmentation."""

import urllib.error

import numpy as np
import pytest
import torch
from cifar_fixture import make_fake_cifar, read_fake_cifar

from schedtui.engine.cifar import MEAN, STD, cifar_augment, cifar_normalize, load_cifar10
from schedtui.engine.data import build_data
from schedtui.errors import UserError

CPU = torch.device("cpu")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    folder = make_fake_cifar(root, n_train_per_batch=20, n_test=20, seed=3)
    return root, folder


def test_load_fake_folder_unverified(fake):
    root, folder = fake
    train_x, train_y, test_x, test_y = load_cifar10(root, CPU, download=False, verify=False)
    assert train_x.shape == (100, 3, 32, 32) and train_x.dtype == torch.uint8
    assert test_x.shape == (20, 3, 32, 32) and test_x.dtype == torch.uint8
    assert train_y.dtype == torch.int64 and train_y.shape == (100,)
    assert train_x.is_contiguous() and train_x.device == CPU
    want_x, want_y, want_tx, want_ty = read_fake_cifar(folder)
    assert np.array_equal(train_x.numpy(), want_x) and train_y.tolist() == want_y
    assert np.array_equal(test_x.numpy(), want_tx) and test_y.tolist() == want_ty
    # channel-planar layout: byte 1024 of a row is the first green pixel
    raw = want_x.reshape(100, 3072)
    assert train_x[0, 1, 0, 0] == raw[0, 1024] and train_x[0, 2, 31, 31] == raw[0, 3071]


def test_verify_rejects_a_folder_with_foreign_md5s(fake):
    root, _ = fake
    with pytest.raises(UserError) as err:
        load_cifar10(root, CPU, download=False, verify=True)
    msg = str(err.value)
    assert "corrupted" in msg and "data.verify=false" in msg and "\n" not in msg


def test_missing_folder_without_download(tmp_path):
    where = tmp_path / "nowhere"
    with pytest.raises(UserError) as err:
        load_cifar10(where, CPU, download=False)
    msg = str(err.value)
    assert str(where) in msg and "--data-dir" in msg and "\n" not in msg


def test_failed_download_is_a_user_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError("Name or service not known"))

    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", offline)
    with pytest.raises(UserError) as err:
        load_cifar10(tmp_path, CPU, download=True)
    msg = str(err.value)
    assert "could not be downloaded" in msg and "Name or service not known" in msg
    assert str(tmp_path) in msg and "\n" not in msg


def test_unreadable_batch_is_a_user_error(tmp_path):
    folder = make_fake_cifar(tmp_path, n_train_per_batch=2, n_test=2)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="could not read CIFAR-10"):
        load_cifar10(tmp_path, CPU, download=False, verify=False)


def test_normalize_matches_mean_std():
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=_gen())
    out = cifar_normalize(x)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert torch.allclose(out, (x.float() / 255 - mean) / std, atol=1e-5)
    plain = cifar_augment(crop_padding=0, flip=False)(x, _gen())
    assert torch.equal(plain, out)


def test_crop_translates_within_padding():
    x = torch.zeros(256, 3, 32, 32, dtype=torch.uint8)
    x[:, 0, 16, 16] = 255  # one bright red pixel
    out = cifar_augment(crop_padding=4, flip=False)(x, _gen(1))
    assert out.shape == x.shape and out.dtype == torch.float32
    bright = cifar_normalize(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8))[0, 0, 0, 0]
    shifts = set()
    for img in out[:, 0]:
        rows, cols = torch.nonzero(img == bright, as_tuple=True)
        assert len(rows) == 1  # the pixel survives, exactly once
        dy, dx = int(rows[0]) - 16, int(cols[0]) - 16
        assert abs(dy) <= 4 and abs(dx) <= 4
        shifts.add((dy, dx))
    assert len(shifts) > 20  # many of the 81 offsets occur


def test_crop_pads_with_black():
    x = torch.full((128, 3, 32, 32), 255, dtype=torch.uint8)
    out = cifar_augment(crop_padding=4, flip=False)(x, _gen(2))
    black = cifar_normalize(torch.zeros(1, 3, 1, 1, dtype=torch.uint8))[0, 0, 0, 0]
    n_black = (out[:, 0] == black).sum(dim=(1, 2))
    allowed = {1024 - (32 - a) * (32 - b) for a in range(5) for b in range(5)}
    assert set(n_black.tolist()) <= allowed
    assert (n_black > 0).any() and len(set(n_black.tolist())) > 5  # shifted by various offsets


def test_flip_some_but_not_all():
    cols = torch.arange(32, dtype=torch.uint8) * 8
    x = cols.view(1, 1, 1, 32).expand(400, 3, 32, 32).contiguous()
    out = cifar_augment(crop_padding=0, flip=True)(x, _gen(3))
    plain, mirrored = cifar_normalize(x), cifar_normalize(x.flip(-1))
    is_plain = (out == plain).flatten(1).all(1)
    is_flip = (out == mirrored).flatten(1).all(1)
    assert (is_plain ^ is_flip).all()
    assert 120 < int(is_flip.sum()) < 280


def test_augment_deterministic_given_generator_seed():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=_gen(9))
    aug = cifar_augment()
    assert torch.equal(aug(x, _gen(5)), aug(x, _gen(5)))
    assert not torch.equal(aug(x, _gen(5)), aug(x, _gen(6)))


def test_build_data_cifar10(fake):
    root, _ = fake
    cfg = {"kind": "cifar10", "batch_size": 16, "verify": False, "download": False, "train_subset": 40}
    bundle = build_data(cfg, CPU, seed=0, data_dir=root)
    assert (bundle.name, bundle.task, bundle.n_classes, bundle.input_shape) == \
        ("cifar10", "multiclass", 10, (3, 32, 32))
    assert bundle.train.n_samples == 40 and len(bundle.train) == 2  # drop_last
    assert bundle.val.n_samples == 20 and bundle.val.batch_size == 32 and len(bundle.val) == 1
    xb, yb = next(iter(bundle.train))
    assert xb.shape == (16, 3, 32, 32) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    vx, vy = next(iter(bundle.val))
    _, _, test_x, test_y = load_cifar10(root, CPU, download=False, verify=False)
    assert torch.equal(vx, cifar_normalize(test_x)) and torch.equal(vy, test_y)


def test_build_data_cifar10_batch_larger_than_subset(fake):
    root, _ = fake
    cfg = {"kind": "cifar10", "batch_size": 64, "verify": False, "download": False, "train_subset": 40}
    with pytest.raises(UserError, match="data.batch_size"):
        build_data(cfg, CPU, seed=0, data_dir=root)

