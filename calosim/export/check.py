"""Checked, not assumed: ONNX Runtime and calosim's own ``model.generate`` on the same inputs.

The inputs are drawn once per batch size and fed to both: latent vectors, incident energies in the model's
range, class labels (two-class models) and the uniform numbers of the Bernoulli draws (calosim's ``generate``
takes them through its ``rng``, see :class:`GivenUniforms`). The tolerance is stated once: per output layer,
|ONNX Runtime - calosim| <= RTOL * (the layer's largest |cell| in the batch) + ATOL_MEV, i.e. float32 rounding
of sums of up to a few thousand terms and of the exponential of the voxel transforms (a few 1e-6 relative seen).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from calosim.export import require

RTOL = 1e-4
ATOL_MEV = 1e-6


class GivenUniforms:
    """Stands in for ``numpy.random.Generator`` in ``model.generate(..., rng=)``: its draws ``random(shape,
    dtype)`` return the given arrays, in order, so that calosim keeps the cells ONNX Runtime keeps."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = list(arrays)

    def random(self, shape, dtype=np.float64):
        if not self.arrays:
            raise ValueError("generate drew more uniform arrays than the exported graph takes")
        u = self.arrays.pop(0)
        if tuple(shape) != u.shape:
            raise ValueError(f"generate drew uniforms of shape {tuple(shape)}; the graph's input has {u.shape}")
        return u.astype(dtype)


@dataclass
class Agreement:
    batch_size: int
    max_abs_mev: float  # largest |ONNX Runtime - calosim| over all cells
    max_relative: float  # the largest, per layer, of that difference over the layer's largest |cell|
    tolerance_mev: float  # the smallest per-layer tolerance RTOL * largest |cell| + ATOL_MEV
    largest_cell_mev: float  # calosim's largest |cell| in the batch
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def session(onnx_bytes: bytes, threads: int = 0):
    """An ONNX Runtime CPU session of the serialised model (threads 0: ONNX Runtime's default)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def draw_inputs(sess, model, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Feeds for every input of the session: z, energy (GeV, uniform in the model's range), label, uniforms."""
    lo, hi = model.energy_range
    feeds = {}
    for item in sess.get_inputs():
        if item.name == "z":
            feeds["z"] = rng.standard_normal((batch, model.latent_dim)).astype(np.float32)
        elif item.name == "energy":
            feeds["energy"] = rng.uniform(lo, hi, batch).astype(np.float32)
        elif item.name == "label":
            feeds["label"] = rng.integers(0, model.n_classes, batch).astype(np.int64)
        else:  # the uniform numbers of a Bernoulli draw, (N, K)
            feeds[item.name] = rng.random((batch, int(item.shape[1])), dtype=np.float32)
    return feeds


def calosim_showers(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """``model.generate`` on the same inputs (the graph's uniform inputs, in order, through ``rng``)."""
    be = model.backend
    uniforms = [u for name, u in feeds.items() if name not in ("z", "energy", "label")]
    extra = {"rng": GivenUniforms(uniforms)} if uniforms else {}
    out = model.generate(be.asarray(feeds["z"]), be.asarray(feeds["energy"]), labels=feeds.get("label"), **extra)
    return [np.asarray(be.to_numpy(x)) for x in out]


def check_agreement(model, onnx_bytes: bytes, batch_sizes=(1, 1000), seed: int = 0) -> list[Agreement]:
    """ONNX Runtime against ``model.generate`` (the model frozen, as exported) per batch size."""
    sess = session(onnx_bytes)
    rng = np.random.default_rng(seed)
    rows = []
    for batch in batch_sizes:
        feeds = draw_inputs(sess, model, batch, rng)
        got = sess.run(None, feeds)
        want = calosim_showers(model, feeds)
        worst_abs, worst_rel, tolerance, largest, passed = 0.0, 0.0, np.inf, 0.0, True
        for a, b in zip(got, want):
            diff = float(np.abs(a.astype(np.float64) - b).max())
            scale = float(np.abs(b).max())
            allowed = RTOL * scale + ATOL_MEV
            passed = passed and a.shape == b.shape and diff <= allowed
            worst_abs, tolerance, largest = max(worst_abs, diff), min(tolerance, allowed), max(largest, scale)
            worst_rel = max(worst_rel, diff / scale if scale > 0 else (np.inf if diff > 0 else 0.0))
        rows.append(Agreement(int(batch), worst_abs, worst_rel, tolerance, largest, passed))
    return rows


def format_agreement(rows: list[Agreement]) -> str:
    lines = [f"ONNX Runtime vs calosim (numpy, float32), tolerance per layer {RTOL:g} x its largest cell "
             f"+ {ATOL_MEV:g} MeV:"]
    for r in rows:
        lines.append(f"  batch {r.batch_size:>5}: largest |difference| {r.max_abs_mev:.3g} MeV "
                     f"({r.max_relative:.2g} of the layer's largest cell) {'ok' if r.passed else 'FAILED'}")
    return "\n".join(lines)
