import numpy as np
import pytest

from convcore.nn.data import DataLoader, batches


def test_batches_cover_everything_once():
    x, y = np.arange(10)[:, None] * 1.0, np.arange(10)
    got = list(batches(x, y, 4, shuffle=True, seed=0))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    ys = np.concatenate([b[1] for b in got])
    assert sorted(ys) == list(range(10)) and list(ys) != list(range(10))
    for bx, by in got:
        np.testing.assert_array_equal(bx[:, 0], by)


def test_drop_last_and_determinism():
    x = np.arange(10)
    a = [b.tolist() for b in batches(x, batch_size=3, shuffle=True, drop_last=True, seed=1)]
    b = [b.tolist() for b in batches(x, batch_size=3, shuffle=True, drop_last=True, seed=1)]
    assert a == b and len(a) == 3


def test_dataloader_reshuffles_each_epoch():
    dl = DataLoader(np.arange(20), np.arange(20), batch_size=5, shuffle=True, seed=0)
    assert len(dl) == 4
    e1 = np.concatenate([b[1] for b in dl])
    e2 = np.concatenate([b[1] for b in dl])
    assert sorted(e1) == sorted(e2) and list(e1) != list(e2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        list(batches(np.zeros(3), batch_size=0))
    with pytest.raises(ValueError, match="same first dimension"):
        list(batches(np.zeros(3), np.zeros(4), 2))
