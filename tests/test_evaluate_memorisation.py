"""The memorisation check catches a generator that copies its training showers."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.data.formats import read_showers
from calosim.evaluate.memorisation import memorisation_check, nearest_distances


def test_nearest_distances_by_hand():
    bank = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    d, i = nearest_distances(np.array([[3.0, 4.0], [9.0, 0.0], [0.0, 1.0]]), bank, chunk=2)
    np.testing.assert_allclose(d, [0.0, 1.0, 1.0], atol=1e-7)
    assert i.tolist() == [1, 2, 0]


@pytest.fixture
def eplus_flat(shared_data):
    return read_showers(shared_data / "geant4" / "eplus_train.h5", 0, 1600).flat()


def test_copies_of_the_training_set_are_flagged(eplus_flat):
    train, held_out = eplus_flat[:1200], eplus_flat[1200:1600]
    rng = np.random.default_rng(0)
    copies = train[rng.choice(1200, 300, replace=False)] * rng.uniform(0.9, 1.1, (300, 1)).astype(np.float32)
    res = memorisation_check(copies, held_out, train, n_samples=300, rng=np.random.default_rng(1))
    assert res["flag"] and res["verdict"].startswith("SUSPICIOUS")
    assert res["n_exact_copies"] == 300 and res["ratio"] < 0.01


def test_fresh_showers_are_not_flagged(eplus_flat):
    train, held_out, fresh = eplus_flat[:1000], eplus_flat[1000:1300], eplus_flat[1300:1600]
    res = memorisation_check(fresh, held_out, train, n_samples=300, rng=np.random.default_rng(2))
    assert not res["flag"], res["verdict"]
    assert 0.8 < res["ratio"] < 1.25
    assert res["n_exact_copies"] == 0
