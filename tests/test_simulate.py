import numpy as np
import pytest
from click.testing import CliRunner

from calosim.cli.main import main
from calosim.data import read_showers
from calosim.data.simulate import simulate, simulate_uniform
from calosim.errors import ConfigError


@pytest.mark.parametrize("particle", ["eplus", "gamma", "piplus"])
def test_shapes_and_determinism(particle):
    a = simulate_uniform(particle, 40, (1, 100), seed=3)
    b = simulate_uniform(particle, 40, (1, 100), seed=3)
    c = simulate_uniform(particle, 40, (1, 100), seed=4)
    assert [x.shape for x in a.layers] == [(40, 3, 96), (40, 12, 12), (40, 12, 6)]
    assert a.overflow.shape == (40, 3) and a.energy.dtype == np.float32
    for x, y in zip(a.layers, b.layers):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.layers[1], c.layers[1])
    assert all((x >= 0).all() and np.isfinite(x).all() for x in a.layers)


@pytest.mark.parametrize("particle,lo,hi", [("eplus", 0.95, 1.0), ("gamma", 0.95, 1.0), ("piplus", 0.1, 0.5)])
def test_energy_response(particle, lo, hi):
    s = simulate(particle, np.full(200, 20.0), np.random.default_rng(0))
    response = s.total_energy() / 20000.0
    assert lo < response.mean() < hi
    if particle != "piplus":
        assert response.std() < 0.03
        f = s.layer_energies().mean(0) / s.total_energy().mean()
        assert 0.1 < f[0] < 0.4 and f[1] > 0.6 and f[2] < 0.01


def test_energy_scales():
    rng = np.random.default_rng(1)
    low, high = simulate("eplus", np.full(50, 5.0), rng), simulate("eplus", np.full(50, 80.0), rng)
    assert 12 < high.total_energy().mean() / low.total_energy().mean() < 20
    # higher energy showers reach deeper: less of the energy in layer 0
    assert (high.layer_energies()[:, 0] / high.total_energy()).mean() < \
           (low.layer_energies()[:, 0] / low.total_energy()).mean()


def test_bad_arguments():
    with pytest.raises(ConfigError, match="particle"):
        simulate("muon", [10.0], np.random.default_rng(0))
    with pytest.raises(ConfigError, match="energ"):
        simulate("eplus", [-1.0], np.random.default_rng(0))
    with pytest.raises(ConfigError, match="energy range"):
        simulate_uniform("eplus", 3, (0, 10))


def test_cli_simulate_and_show(tmp_path):
    out = tmp_path / "g.h5"
    runner = CliRunner()
    r = runner.invoke(main, ["simulate", "--particle", "gamma", "--num-showers", "30", "--energy-range", "5", "50",
                             "--seed", "2", "-o", str(out)])
    assert r.exit_code == 0, r.output
    s = read_showers(out)
    assert len(s) == 30 and s.particle == "gamma" and s.attrs["seed"] == 2
    assert 5 <= s.energy.min() and s.energy.max() <= 50
    r = runner.invoke(main, ["data", "show", str(out)])
    assert r.exit_code == 0 and "calogan" in r.output and "gamma" in r.output and "layer_2" in r.output
    r = runner.invoke(main, ["data", "list"])
    assert r.exit_code == 0 and "eplus" in r.output
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    r = runner.invoke(main, ["data", "show", str(bad)])
    assert r.exit_code == 1 and "not an HDF5 file" in r.output and "Traceback" not in r.output
