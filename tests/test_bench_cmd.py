"""`calosim bench` times every model type: fresh ones by --model-type / --config and trained model files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from family_helpers import TINY_GEOMETRY

from calosim.backends import get_backend
from calosim.benchmark import bench_generator
from calosim.cli.main import main
from calosim.models import registry
from calosim.models.files import save_model


@pytest.mark.parametrize("model_type,config", [("wgan-gp", "small"), ("vae", "small"), ("lagan", "small"),
                                               ("calogan", "small")])
def test_bench_generator_times_every_model_type(model_type, config):
    rows = bench_generator(config, "numpy", (1, 4), model_type=model_type, min_seconds=0.0)
    assert [r.batch_size for r in rows] == [1, 4]
    for r in rows:
        assert r.ms_per_shower > 0 and r.gflops > 0 and r.model_gflops > 0


def test_bench_cli_reads_the_model_type_from_a_model_file(tmp_path):
    kind = registry.get_model_type("vae")
    cfg = kind.get_config("small").replace(hidden=[8, 6], latent_dim=3)
    model = kind.build(cfg, TINY_GEOMETRY, get_backend("numpy"), np.random.default_rng(0))
    save_model(tmp_path / "vae.h5", model)
    result = CliRunner().invoke(main, ["bench", "--backend", "numpy", "--model", str(tmp_path / "vae.h5"),
                                       "--batch-sizes", "1,2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model_type"] == "vae" and [r["batch_size"] for r in report["generation"]] == [1, 2]


def test_bench_cli_errors_are_one_line():
    runner = CliRunner()
    result = runner.invoke(main, ["bench", "--backend", "numpy", "--model-type", "vae", "--config", "nope"])
    assert result.exit_code != 0 and "unknown config 'nope'" in result.output


def test_bench_times_the_training_step_of_any_model_type():
    result = CliRunner().invoke(main, ["bench", "--backend", "numpy", "--model-type", "wgan-gp", "--config", "small",
                                       "--batch-sizes", "1", "--train-step", "--json"])
    assert result.exit_code == 0, result.output
    step = json.loads(result.output)["train_step"]
    assert step["model_type"] == "wgan-gp" and step["batch_size"] == 128 and step["seconds_per_step"] > 0
