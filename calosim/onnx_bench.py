"""`calosim bench --onnx`: ONNX Runtime (CPU) and calosim on the same model and batch sizes, timed in one run.

Both sides do the same work per call: draw the latent vectors (and the uniform numbers of any Bernoulli draw,
and an energy-factorised model's energy draws) for fixed incident energies and run the sampling path (calosim:
``model.sample`` after ``freeze()``; ONNX Runtime: the exported graph of that path, calosim.export). Compare the
ratio, not the absolute times: on a shared machine the two sides taken side by side share the noise.
"""

from __future__ import annotations

import numpy as np

from calosim.benchmark import _bench_model, best_time


def bench_onnx(config: str | None = None, model_type: str = "calogan", model_path=None, backend_name: str = "numba",
               batch_sizes=(1, 1000), seed: int = 0, min_seconds: float = 0.3, threads: int = 0) -> dict:
    """ms/shower of ONNX Runtime and of calosim's ``backend_name`` per batch size (``threads`` 0: ONNX Runtime's
    default intra-op threads), with the exported graph's size; JSON-able."""
    from calosim.export.check import draw_inputs, session
    from calosim.export.onnx_model import onnx_graph
    from calosim.info import machine_info

    model = _bench_model(config, backend_name, model_path, seed, model_type).freeze()
    data = onnx_graph(model).SerializeToString()
    sess = session(data, threads)
    rng = np.random.default_rng(seed)
    energy = rng.uniform(*model.energy_range, size=max(batch_sizes))
    rows = []
    for batch in batch_sizes:
        fixed = energy[:batch].astype(np.float32)

        def run_onnx(batch=batch, fixed=fixed):
            feeds = draw_inputs(sess, model, batch, rng)
            feeds["energy"] = fixed
            return sess.run(None, feeds)

        onnx_s = best_time(run_onnx, lambda: None, min_seconds=min_seconds)
        calosim_s = best_time(lambda b=batch: model.sample(energy[:b], rng), model.backend.synchronize,
                              min_seconds=min_seconds)
        rows.append({"batch_size": int(batch), "onnx_ms_per_shower": 1e3 * onnx_s / batch,
                     "calosim_ms_per_shower": 1e3 * calosim_s / batch, "calosim_over_onnx": calosim_s / onnx_s})
    ort = sess.get_session_options()
    return {"model_type": model.model_type, "config": model.config.name, "backend": backend_name,
            "model": str(model_path) if model_path else None, "onnx_bytes": len(data),
            "onnx_threads": ort.intra_op_num_threads, "machine": machine_info(), "rows": rows}


def format_onnx_report(report: dict) -> str:
    m = report["machine"]
    what = report["model"] or f"{report['model_type']} {report['config']}"
    threads = report["onnx_threads"] or "default"
    lines = [f"calosim bench --onnx: {what} ({report['onnx_bytes'] / 1e6:.2f} MB as ONNX); ONNX Runtime CPU "
             f"(intra-op threads {threads}) vs calosim {report['backend']} (numba threads {m['numba_threads']}), "
             f"{m['cpu']}, {m['cpu_count']} cores",
             f"{'batch':>6}  {'ONNX Runtime ms/shower':>22}  {'calosim ms/shower':>17}  {'calosim / ORT':>13}"]
    for r in report["rows"]:
        lines.append(f"{r['batch_size']:>6}  {r['onnx_ms_per_shower']:>22.4f}  {r['calosim_ms_per_shower']:>17.4f}  "
                     f"{r['calosim_over_onnx']:>13.2f}")
    return "\n".join(lines)
