"""make_moons and the moons DataBundle."""

import pytest
import torch

from schedtui.engine.data import build_data
from schedtui.engine.moons import make_moons
from schedtui.errors import UserError


def test_shape_dtype_and_balance():
    x, y = make_moons(101, 0.1, seed=0)
    assert x.shape == (101, 2) and x.dtype == torch.float32
    assert y.shape == (101,) and y.dtype == torch.float32
    assert set(y.unique().tolist()) == {0.0, 1.0}
    assert int(y.sum()) == 51  # 50 outer (0), 51 inner (1)
    assert (y[:50] == 0).any() and (y[:50] == 1).any()  # shuffled, not blocked


def test_deterministic_by_seed():
    a = make_moons(200, 0.2, seed=7)
    b = make_moons(200, 0.2, seed=7)
    c = make_moons(200, 0.2, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_noise_free_points_lie_on_the_half_circles():
    x, y = make_moons(200, 0.0, seed=1)
    outer, inner = x[y == 0], x[y == 1]
    assert torch.allclose(outer.pow(2).sum(1), torch.ones(len(outer)), atol=1e-5)
    assert (outer[:, 1] >= -1e-6).all()
    centred = inner - torch.tensor([1.0, 0.5])
    assert torch.allclose(centred.pow(2).sum(1), torch.ones(len(inner)), atol=1e-5)
    assert (inner[:, 1] <= 0.5 + 1e-6).all()
    assert outer[:, 0].min() == pytest.approx(-1.0) and inner[:, 0].max() == pytest.approx(2.0)


def test_noise_spreads_points_off_the_circle():
    x, y = make_moons(2000, 0.3, seed=2)
    r = x[y == 0].pow(2).sum(1).sqrt()
    assert 0.15 < (r - 1).std().item() < 0.45


def test_bad_values_are_user_errors():
    with pytest.raises(UserError):
        make_moons(1, 0.1, seed=0)
    with pytest.raises(UserError):
        make_moons(10, -0.1, seed=0)


def test_build_data_moons():
    bundle = build_data({"kind": "moons"}, torch.device("cpu"), seed=0, data_dir="/nonexistent")
    assert (bundle.name, bundle.task, bundle.n_classes, bundle.input_shape) == ("moons", "binary", 1, (2,))
    assert bundle.train.n_samples == 800 and bundle.val.n_samples == 200
    assert len(bundle.train) == 25 and bundle.val.batch_size == 64 and not bundle.val.shuffle
    xb, yb = next(iter(bundle.train))
    assert xb.shape == (32, 2) and yb.dtype == torch.float32
    again = build_data({"kind": "moons"}, torch.device("cpu"), seed=0, data_dir="/nonexistent")
    assert torch.equal(next(iter(again.train))[0], xb)
    custom = build_data({"kind": "moons", "n_samples": 100, "val_fraction": 0.5, "batch_size": 8,
                         "eval_batch_size": 10}, torch.device("cpu"), seed=0, data_dir=".")
    assert custom.train.n_samples == 50 and len(custom.train) == 7 and len(custom.val) == 5


def test_unknown_kind():
    with pytest.raises(UserError, match="moons, cifar10"):
        build_data({"kind": "mnist"}, torch.device("cpu"), seed=0, data_dir=".")
