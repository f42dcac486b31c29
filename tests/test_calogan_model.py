"""CaloGAN generator and discriminator: parameter counts, carry factors, full-model gradient checks (float64,
directional central differences through the composite backward passes), and numpy/numba parity."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.backends import get_backend
from calosim.geometry import calogan_geometry
from calosim.gradcheck import relative_error
from calosim.losses import bce_with_logits, mean_absolute_error
from calosim.models.calogan import build_calogan
from calosim.models.calogan.config import CONFIGS, Architecture, CaloGANConfig, Training
from calosim.models.calogan.generator import carry_factors

# A tiny geometry whose shapes relate like CaloGAN's: (2, 16) -> (4, 4) is UpSample(2, 1) + AvgPool(1, 4),
# (4, 4) -> (4, 2) is AvgPool(1, 2); so both attention blocks are exercised.
TINY_SHAPES = [(2, 16), (4, 4), (4, 2)]
TINY = CaloGANConfig(name="tiny", architecture=Architecture(latent_dim=6, g_dense_channels=3, g_conv_filters=3,
                                                          g_lc_filters=2, d_conv_filters=3, d_lc_filters=(3, 2, 2),
                                                          mbd_kernels=3, mbd_dim=2),
                     training=Training(batch_size=4))
H = 1e-6
TOL = 1e-6


def test_calogan_parameter_counts():
    be = get_backend("numpy")
    g, d = build_calogan(CONFIGS["calogan"], calogan_geometry().shapes, be, np.random.default_rng(0))
    assert abs(g.num_params() - 29.7e6) < 0.05e6, g.num_params()
    assert abs(d.num_params() - 2.7e6) < 0.05e6, d.num_params()
    assert g.num_params() == 29_726_280 and d.num_params() == 2_743_632
    # the discriminator streams flatten to CaloGAN's 1000, 448 and 336 features
    assert [s.output_shape[0] for s in d.streams] == [1000, 448, 336]


def test_carry_factors():
    assert carry_factors((3, 96), (12, 12)) == ((4, 1), (1, 8))
    assert carry_factors((12, 12), (12, 6)) == ((1, 1), (1, 2))
    assert carry_factors((12, 12), (5, 5)) is None


def test_attention_only_where_shapes_relate():
    be = get_backend("numpy")
    g, _ = build_calogan(TINY, [(2, 16), (5, 5), (5, 5)], be, np.random.default_rng(0))
    assert [a is not None for a in g.attentions] == [False, False, True]
    g, d = build_calogan(TINY, [(25, 25)], be, np.random.default_rng(0))  # LAGAN-like single layer
    out = g.forward([be.asarray(np.ones((3, 6))), be.asarray(np.full(3, 50.0))])
    assert out[0].shape == (3, 25, 25, 1) and d.forward([*out, be.asarray(np.full(3, 50.0))]).shape == (3, 1)


def _model(seed=0, config=TINY):
    be = get_backend("numpy", "float64")
    g, d = build_calogan(config, TINY_SHAPES, be, np.random.default_rng(seed))
    # Random biases: zero biases put every all-zero patch exactly on a LeakyReLU kink, where a central
    # difference is meaningless; and the attention's carry weight (~5e-5 at start) gets a real share.
    rng = np.random.default_rng(seed + 100)
    for p in g.parameters() + d.parameters():
        if p.name.endswith("/bias") or p.name.endswith("/beta"):
            p.value[...] = rng.normal(0.0, 0.1, p.value.shape)
    return be, g, d


def _directional(params, loss_fn, grads, rng, n_directions=3, extra=None):
    """Compare (L(+h v) - L(-h v)) / 2h with <grad, v> along random directions of the parameters (and of the
    arrays in ``extra``: a list of (array, gradient, mask))."""
    extra = extra or []
    worst = 0.0
    report = []
    for _ in range(n_directions):
        vs = [rng.standard_normal(p.value.shape) for p in params]
        ves = [rng.standard_normal(a.shape) * m for a, _, m in extra]
        originals = [p.value.copy() for p in params]
        originals_e = [a.copy() for a, _, _ in extra]
        values = []
        for sign in (1.0, -1.0):
            for p, o, v in zip(params, originals, vs):
                p.value[...] = o + sign * H * v
            for (a, _, _), o, v in zip(extra, originals_e, ves):
                a[...] = o + sign * H * v
            values.append(loss_fn())
        for p, o in zip(params, originals):
            p.value[...] = o
        for (a, _, _), o in zip(extra, originals_e):
            a[...] = o
        numeric = (values[0] - values[1]) / (2 * H)
        analytic = sum(float((g * v).sum()) for g, v in zip(grads, vs))
        analytic += sum(float((g * v).sum()) for (_, g, _), v in zip(extra, ves))
        report.append((numeric, analytic))
        worst = max(worst, relative_error(numeric, analytic))
    return worst, report


def test_discriminator_gradient_full_model():
    be, _, d = _model()
    rng = np.random.default_rng(1)
    n = 5
    images = []
    masks = []
    for shape in TINY_SHAPES:
        x = rng.uniform(0.0, 2.0, size=(n, *shape, 1))
        zero = rng.random(x.shape) < 0.3
        x[zero] = 0.0  # exact zeros, as after the generator's ReLU: the sparsity is then not constant
        images.append(x)
        masks.append(~zero)  # never move a zero cell (the sparsity would jump)
    totals = sum(x.reshape(n, -1).sum(axis=1) for x in images)
    energy = totals + np.array([1.0, -2.0, 8.0, -9.0, 0.5])  # |E_tot - E| on both sides of the 5 GeV step
    targets = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]])

    def loss():
        return bce_with_logits(d.forward([*images, energy]), targets, np)[0]

    _, dl = bce_with_logits(d.forward([*images, energy]), targets, np)
    d_images = d.backward(dl)
    params = d.parameters()
    grads = [p.grad.copy() for p in params]
    worst, report = _directional(params, loss, grads, np.random.default_rng(2),
                                 extra=[(x, dx, m) for x, dx, m in zip(images, d_images, masks)])
    assert worst < TOL, f"discriminator: numeric vs analytic {report}"
    d.set_input_gradient(False)  # the discriminator's own step: the same weight gradients, no image gradient
    try:
        d.forward([*images, energy])
        assert d.backward(dl) is None
        for p, g in zip(params, grads):
            np.testing.assert_array_equal(p.grad, g, err_msg=p.name)
    finally:
        d.set_input_gradient(True)
    d.forward([*images, energy])
    assert len(d.backward(dl)) == len(images)


@pytest.mark.parametrize("energy_scaled,knee,power", [(False, 0.0, 0.0), (True, 0.0, 0.0), (True, 0.05, -0.5)],
                         ids=["paper", "energy_scaled_output", "energy_scaled_knee_latent_power"])
def test_generator_gradient_through_discriminator(energy_scaled, knee, power):
    be, g, d = _model(config=TINY.replace(g_energy_scaled_output=energy_scaled, g_output_knee=knee,
                                          g_latent_energy_power=power))
    rng = np.random.default_rng(3)
    n = 4
    z = rng.standard_normal((n, TINY.latent_dim))
    energy = rng.uniform(1.0, 100.0, n)
    ones = np.ones((n, 1))

    def forward():
        images = g.forward([z, energy])
        logits = d.forward([*images, energy])
        bce, dl = bce_with_logits(logits, ones, np)
        sums = sum(x.reshape(n, -1).sum(axis=1) for x in images)
        mae, ds = mean_absolute_error(sums, energy, np)
        return images, bce + TINY.training.energy_loss_weight * mae, dl, ds

    images, _, dl, ds = forward()
    d_images = d.backward(dl)
    d_images = [dx + TINY.training.energy_loss_weight * ds.reshape(-1, 1, 1, 1) for dx in d_images]
    dz = g.backward(d_images)
    params = g.parameters()
    grads = [p.grad.copy() for p in params]
    worst, report = _directional(params, lambda: forward()[1], grads, np.random.default_rng(4),
                                 extra=[(z, dz, np.ones_like(z))])
    assert worst < TOL, f"generator through D: numeric vs analytic {report}"
    # every generator parameter, the attention blocks' included, receives a gradient
    assert all(np.abs(gr).sum() > 0 for p, gr in zip(params, grads) if "bias" not in p.name or "attention" in p.name)


def test_numpy_numba_agree_on_full_calogan_generator():
    pytest.importorskip("numba")
    shapes = calogan_geometry().shapes
    outs = []
    rng = np.random.default_rng(5)
    z = rng.standard_normal((2, 1024)).astype(np.float32)
    energy = np.array([10.0, 80.0], np.float32)
    for name in ("numpy", "numba"):
        be = get_backend(name)
        g, _ = build_calogan(CONFIGS["calogan"], shapes, be, np.random.default_rng(0))
        for training in (True, False):
            outs.append([be.to_numpy(x) for x in g.forward([be.asarray(z), be.asarray(energy)], training)])
    for a, b in zip(outs[:2], outs[2:]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5 * float(np.abs(x).max()))
