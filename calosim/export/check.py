"""Checked, not assumed: ONNX Runtime and calosim's own sampling path on the same inputs.

The inputs are drawn once per batch size and fed to both: latent vectors, incident energies in the model's
range, class labels (two-class models), the uniform numbers of the Bernoulli draws (calosim's ``generate``
takes them through its ``rng``) and, for energy-factorised models, the energy model's uniform and normal draws
(through the ``rng`` of ``apply_energy_model``, the last step of ``ShowerModel.sample``); see
:class:`GivenDraws`. The tolerance is stated once: per output layer,
|ONNX Runtime - calosim| <= RTOL * (the layer's largest |cell| in the batch) + ATOL_MEV, i.e. float32 rounding
of sums of up to a few thousand terms and of the exponential of the voxel transforms (a few 1e-6 relative seen;
the energy model's layer energies, float64 in calosim and float32 in the graph, add about 1e-6).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from calosim.export import require
from calosim.models.base import MIRROR_UNIFORM
from calosim.models.energy import ENERGY_NORMAL, ENERGY_UNIFORM

RTOL = 1e-4
ATOL_MEV = 1e-6


class GivenDraws:
    """Stands in for ``numpy.random.Generator`` where calosim draws what the exported graph takes as inputs:
    ``random(shape, dtype)`` and ``standard_normal(shape, dtype)`` return the given uniform and normal arrays,
    each kind in order, so that calosim keeps the cells and draws the energies ONNX Runtime does."""

    def __init__(self, uniforms=(), normals=()):
        self.queues = {"uniform": list(uniforms), "standard normal": list(normals)}

    def _next(self, kind: str, shape, dtype):
        if not self.queues[kind]:
            raise ValueError(f"calosim drew more {kind} arrays than the exported graph takes")
        given = self.queues[kind].pop(0)
        shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
        if shape != given.shape:
            raise ValueError(f"calosim drew {kind} numbers of shape {shape}; the graph's input has {given.shape}")
        return given.astype(dtype)

    def random(self, shape, dtype=np.float64):
        return self._next("uniform", shape, dtype)

    def standard_normal(self, shape, dtype=np.float64):
        return self._next("standard normal", shape, dtype)

    def check_used(self) -> None:
        """Every given array was drawn (otherwise the graph takes draws calosim does not make)."""
        left = {kind: len(queue) for kind, queue in self.queues.items() if queue}
        if left:
            raise ValueError(f"calosim drew fewer arrays than the exported graph takes: {left} left")


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
    """Feeds for every input of the session: z, energy (GeV, uniform in the model's range), label, uniforms,
    and the energy model's normals."""
    lo, hi = model.energy_range
    feeds = {}
    for item in sess.get_inputs():
        if item.name == "z":
            feeds["z"] = rng.standard_normal((batch, model.latent_dim)).astype(np.float32)
        elif item.name == "energy":
            feeds["energy"] = rng.uniform(lo, hi, batch).astype(np.float32)
        elif item.name == "label":
            feeds["label"] = rng.integers(0, model.n_classes, batch).astype(np.int64)
        elif item.name == ENERGY_NORMAL:
            feeds[item.name] = rng.standard_normal((batch, int(item.shape[1])), dtype=np.float32)
        else:  # the uniform numbers of a Bernoulli draw or of the energy model's component choice, (N, K)
            feeds[item.name] = rng.random((batch, int(item.shape[1])), dtype=np.float32)
    return feeds


def calosim_showers(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """calosim's sampling path on the same inputs: ``model.generate`` (the graph's Bernoulli uniforms, in
    order, through its ``rng``), the calibration, ``model.apply_energy_model`` (column l of energy_uniform and
    energy_normal as layer l's draws) and ``model.apply_mirror`` (column k of mirror_uniform as axis k's), as
    ``ShowerModel.sample`` runs them."""
    be = model.backend
    not_generate_draws = ("z", "energy", "label", ENERGY_UNIFORM, ENERGY_NORMAL, MIRROR_UNIFORM)
    uniforms = [u for name, u in feeds.items() if name not in not_generate_draws]
    given = GivenDraws(uniforms)
    extra = {"rng": given} if uniforms else {}
    layers = model.generate(be.asarray(feeds["z"]), be.asarray(feeds["energy"]), labels=feeds.get("label"), **extra)
    given.check_used()
    layers = model.apply_profile_spread(layers, feeds["energy"])
    if model.draws_layer_energies:
        # sample draws per layer a uniform then a normal: the columns, each kind in order
        given = GivenDraws(list(feeds[ENERGY_UNIFORM].T), list(feeds[ENERGY_NORMAL].T))
        layers = model.apply_energy_model(layers, feeds["energy"], given)
        given.check_used()
    else:
        layers = model.apply_energy_model(layers, feeds["energy"], None)
    layers = model.apply_cell_calibration(layers, feeds["energy"])
    if model.sampling_mirror_axes:  # one uniform per shower and axis: the columns, in order
        given = GivenDraws(list(feeds[MIRROR_UNIFORM].T))
        layers = model.apply_mirror(layers, given)
        given.check_used()
    return [np.asarray(be.to_numpy(x)) for x in layers]


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
