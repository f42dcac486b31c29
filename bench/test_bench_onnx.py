"""ONNX Runtime (CPU) on the exported sampling path (calosim export) of the `calogan` and `small` CaloGAN configs
at batch 1 and 1024: ms/shower in extra_info, normalised by plain matrix products of the path's own shapes
(NumPy), as the generation benchmarks are. Skipped without the onnx extra. `calosim bench --onnx` times calosim
beside it in one run."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="ONNX Runtime benchmarks need the onnx extra: pip install 'calosim[onnx]'")

from calosim.backends import get_backend  # noqa: E402
from calosim.bench_reference import InterleavedGemm  # noqa: E402
from calosim.benchmark import _bench_model  # noqa: E402
from calosim.export.check import draw_inputs, session  # noqa: E402
from calosim.export.onnx_model import onnx_graph  # noqa: E402

CASES = [(config, batch) for config in ("small", "calogan") for batch in (1, 1024)]


@pytest.mark.parametrize("config,batch", CASES, ids=[f"onnxruntime-{c}-{n}" for c, n in CASES])
def test_onnx_runtime_generation(benchmark, record, config, batch):
    model = _bench_model(config, "numpy").freeze()
    sess = session(onnx_graph(model).SerializeToString())
    rng = np.random.default_rng(0)
    energy = rng.uniform(1.0, 100.0, batch).astype(np.float32)

    def run():
        feeds = draw_inputs(sess, model, batch, rng)
        feeds["energy"] = energy
        sess.run(None, feeds)

    reference = InterleavedGemm(get_backend("numpy"), model.sampling_gemm_shapes(batch), rng)
    benchmark.pedantic(run, setup=reference, rounds=5 if batch < 1024 else 3, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.min
    record(backend="onnxruntime", config=config, batch=batch, ms_per_shower=1e3 * seconds / batch,
           **reference.figures(benchmark.stats.stats.data))
