"""Without the onnx extra, `calosim export` says in one line how to install it (runs with or without the extra)."""

from __future__ import annotations

import sys

import numpy as np
from click.testing import CliRunner
from family_helpers import TINY_GEOMETRY

from calosim.backends import get_backend
from calosim.cli.main import main
from calosim.models import registry
from calosim.models.files import save_model


def test_export_without_the_onnx_package_says_how_to_install_it(tmp_path, monkeypatch):
    kind = registry.get_model_type("vae")
    model = kind.build(kind.get_config("vae", hidden=(8,), latent_dim=2), TINY_GEOMETRY, get_backend("numpy"),
                       np.random.default_rng(0))
    save_model(tmp_path / "vae.h5", model)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails, as where it is not installed
    result = CliRunner().invoke(main, ["export", "--model", str(tmp_path / "vae.h5"), "-o", str(tmp_path / "g.onnx")])
    assert result.exit_code == 1
    assert "needs the onnx package: pip install 'calosim[onnx]'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "g.onnx").exists()
