"""The README's main job: train the recipe of the shipped pretrained models (calosim.pretrained: the `medium` VAE
with the energy factorisation, its layer energies from the conditional layer-energy model calosim.models.energy,
mirrored sampling and the calibration fitted when training ends) on the bundled Geant4 positrons, generate as
many showers as the bundled held-out Geant4 sample holds (at its incident energies), and evaluate them against it.

Everything it needs ships with the package (no download). OUT holds run/ (the training run), generated.h5
and report/ (metrics.json, plots/, report.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from calosim.data.bundled import bundled_path

MODEL_TYPE, CONFIG = "vae", "medium"  # the shipped models' recipe, with the energy factorisation


@dataclass
class QuickstartResult:
    run_dir: Path
    generated: Path
    report_dir: Path
    metrics: dict
    seconds: dict


def quickstart(out, backend: str = "numba", epochs: int | None = None, seed: int = 0, reporter=None,
               progress=None) -> QuickstartResult:
    """Train, generate and evaluate under directory ``out``; a run already there is resumed, not overwritten."""
    from calosim.evaluate.report import evaluate
    from calosim.sampling import generate
    from calosim.training import train

    out = Path(out)
    run_dir, generated, report_dir = out / "run", out / "generated.h5", out / "report"
    reference = bundled_path("eplus-test")
    seconds = {}
    started = time.perf_counter()
    train(run_dir, data=bundled_path("eplus"), backend=backend, config=CONFIG, epochs=epochs, seed=seed,
          model_type=MODEL_TYPE, energy_model=True, resume=(run_dir / "checkpoint.h5").exists(), reporter=reporter)
    seconds["train"] = time.perf_counter() - started
    started = time.perf_counter()
    generate(run_dir, generated, backend=backend, energies_from=reference, seed=seed + 1, progress=progress)
    seconds["generate"] = time.perf_counter() - started
    started = time.perf_counter()
    metrics = evaluate(reference, generated, report_dir, train_path=bundled_path("eplus"), seed=seed)
    seconds["evaluate"] = time.perf_counter() - started
    return QuickstartResult(run_dir, generated, report_dir, metrics, seconds)
