"""DeviceLoader: batch counts, coverage, determinism per (seed, epoch), transforms."""

import pytest
import torch

from schedtui.engine.loader import DeviceLoader


def _data(n=10):
    return torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 2), torch.arange(n)


def _epoch(loader, epoch):
    loader.set_epoch(epoch)
    return [(xb.clone(), yb.clone()) for xb, yb in loader]


@pytest.mark.parametrize("drop_last, expected", [(False, 4), (True, 3)])
def test_batch_count(drop_last, expected):
    x, y = _data(10)
    loader = DeviceLoader(x, y, 3, shuffle=True, seed=0, drop_last=drop_last)
    assert len(loader) == expected
    batches = _epoch(loader, 0)
    assert len(batches) == expected
    assert loader.n_samples == 10
    sizes = [yb.shape[0] for _, yb in batches]
    assert sizes == ([3, 3, 3, 1] if not drop_last else [3, 3, 3])


def test_every_sample_once_per_epoch_and_pairs_stay_together():
    x, y = _data(37)
    loader = DeviceLoader(x, y, 8, shuffle=True, seed=5, drop_last=False)
    for epoch in range(3):
        batches = _epoch(loader, epoch)
        ys = torch.cat([yb for _, yb in batches])
        assert sorted(ys.tolist()) == list(range(37))
        for xb, yb in batches:
            assert torch.equal(xb[:, 0].long(), yb)
            assert xb.device == x.device


def test_same_seed_and_epoch_give_identical_batches():
    x, y = _data(50)
    a = DeviceLoader(x, y, 7, shuffle=True, seed=3, drop_last=False)
    b = DeviceLoader(x, y, 7, shuffle=True, seed=3, drop_last=False)
    for epoch in (0, 4):
        for (xa, ya), (xb, yb) in zip(_epoch(a, epoch), _epoch(b, epoch)):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    order = lambda loader, e: torch.cat([yb for _, yb in _epoch(loader, e)]).tolist()  # noqa: E731
    assert order(a, 0) == order(a, 0)  # re-iterating an epoch replays it
    assert order(a, 0) != order(a, 1)
    other_seed = DeviceLoader(x, y, 7, shuffle=True, seed=4, drop_last=False)
    assert order(a, 0) != order(other_seed, 0)
    assert order(a, 0) != list(range(50))


def test_no_shuffle_keeps_order():
    x, y = _data(10)
    loader = DeviceLoader(x, y, 4, shuffle=False, seed=0, drop_last=False)
    assert [yb.tolist() for _, yb in _epoch(loader, 3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_transform_gets_a_per_epoch_generator():
    x, y = _data(20)
    seen = []

    def noisy(xb, gen):
        seen.append(gen)
        return xb + torch.rand(xb.shape, generator=gen, device=xb.device)

    loader = DeviceLoader(x, y, 5, shuffle=True, seed=1, drop_last=False, transform=noisy)
    first = torch.cat([xb for xb, _ in _epoch(loader, 0)])
    again = torch.cat([xb for xb, _ in _epoch(loader, 0)])
    other = torch.cat([xb for xb, _ in _epoch(loader, 1)])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert all(isinstance(g, torch.Generator) and g.device == x.device for g in seen)
    frac = first - first.floor()
    assert ((frac > 0) & (frac < 1)).all()  # the transform was applied to every batch


def test_mismatched_lengths_rejected():
    with pytest.raises(ValueError):
        DeviceLoader(torch.zeros(3, 2), torch.zeros(4), 2, shuffle=False, seed=0, drop_last=False)
    with pytest.raises(ValueError):
        DeviceLoader(torch.zeros(3, 2), torch.zeros(3), 0, shuffle=False, seed=0, drop_last=False)
