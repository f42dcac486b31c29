"""The audit a user runs on their own machine: every layer's and loss's gradient against finite
differences (float64), and every backend's results against the NumPy specification (float32).

The same cases drive the test suite (tests/test_gradients.py, tests/test_layer_parity.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from calosim import layers as L
from calosim import losses
from calosim.backends import get_backend
from calosim.gradcheck import GradcheckResult, check_directions, check_function, check_layer
from calosim.layers.double_backward import gradient_penalty, input_gradient, input_gradient_backward

GRADIENT_TOLERANCE = 1e-6  # float64 central differences
PARITY_TOLERANCE = 1e-5  # float32, max |a - b| / max |reference|
NETWORK_PARITY_TOLERANCE = 2e-4  # float32, a whole (tiny) network of a dozen layers


@dataclass(frozen=True)
class LayerCase:
    name: str
    make: Callable[[], L.Layer]
    input_shapes: tuple  # per-sample; a tuple of shapes means a multi-input layer
    batch: int = 4
    training: bool = True
    parity_tolerance: float = PARITY_TOLERANCE  # whole networks accumulate more float32 rounding than one op

    @property
    def multi_input(self) -> bool:
        return isinstance(self.input_shapes[0], tuple)

    def inputs(self, rng: np.random.Generator) -> list[np.ndarray] | np.ndarray:
        shapes = self.input_shapes if self.multi_input else (self.input_shapes,)
        # values kept away from 0 so that no finite-difference step crosses a ReLU kink
        arrays = [_away_from_zero(rng.standard_normal((self.batch, *s))) for s in shapes]
        return arrays if self.multi_input else arrays[0]

    def build(self, backend, seed: int = 0) -> L.Layer:
        layer = self.make()
        shapes = list(self.input_shapes) if self.multi_input else self.input_shapes
        layer.build(shapes, backend, np.random.default_rng(seed))
        return layer


def _away_from_zero(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * (0.1 + np.abs(x))


def _bn_inference() -> L.Layer:
    return L.BatchNorm(name="batchnorm_inference")


def _lagan_tiny(part: str) -> L.Layer:
    from calosim.models.lagan import LAGANConfig, LAGANDiscriminator, LAGANGenerator

    cfg = LAGANConfig.from_dict({"name": "tiny", "architecture": dict(
        latent_dim=3, n_classes=2, g_dense_channels=2, g_conv_filters=2, g_lc_filters=2, d_conv_filters=2,
        d_lc_filters=2, mbd_kernels=2, mbd_dim=2)})
    return LAGANGenerator(cfg) if part == "generator" else LAGANDiscriminator(cfg)


def _class_embedding() -> L.Layer:
    from calosim.models.lagan import ClassEmbedding

    return ClassEmbedding()


LAYER_CASES: tuple[LayerCase, ...] = (
    LayerCase("dense", lambda: L.Dense(7), (5,)),
    LayerCase("dense_nobias_3d", lambda: L.Dense(4, use_bias=False), (3, 6)),
    LayerCase("lc2d_2x2", lambda: L.LocallyConnected2D(3, 2), (5, 7, 2)),
    LayerCase("lc2d_3x3_stride_1x2_nobias", lambda: L.LocallyConnected2D(2, 3, (1, 2), use_bias=False), (6, 9, 3)),
    LayerCase("lc2d_2x2_stride2_batch1", lambda: L.LocallyConnected2D(2, 2, 2), (5, 6, 3), batch=1),
    LayerCase("conv2d_same_2x2", lambda: L.Conv2D(3, 2, padding="same"), (5, 6, 2)),
    LayerCase("conv2d_valid_3x3_stride2", lambda: L.Conv2D(2, 3, 2), (7, 8, 2)),
    LayerCase("conv2d_same_5x5", lambda: L.Conv2D(2, 5, padding="same"), (7, 7, 1)),
    LayerCase("conv2d_one_channel_2x2", lambda: L.Conv2D(4, 2, padding="same"), (3, 6, 1)),
    LayerCase("zeropad2d", lambda: L.ZeroPad2D(((1, 2), (0, 1))), (3, 4, 2)),
    LayerCase("upsampling2d", lambda: L.UpSampling2D((4, 1)), (3, 5, 1)),
    LayerCase("avgpool2d", lambda: L.AveragePooling2D((2, 3)), (5, 7, 2)),
    LayerCase("reshape", lambda: L.Reshape((6, 2)), (3, 4)),
    LayerCase("flatten", lambda: L.Flatten(), (3, 4, 2)),
    LayerCase("concat", lambda: L.Concat(axis=-1), ((3, 4, 1), (3, 4, 2))),
    LayerCase("batchnorm_train", lambda: L.BatchNorm(), (3, 4, 2), batch=5),
    LayerCase("batchnorm_inference", _bn_inference, (3, 4, 2), training=False),
    LayerCase("relu", lambda: L.ReLU(), (3, 5)),
    LayerCase("leakyrelu", lambda: L.LeakyReLU(0.3), (3, 5)),
    LayerCase("kneerelu", lambda: L.KneeReLU(0.5, 0.1), (3, 5)),
    LayerCase("splitrelu", lambda: L.SplitReLU(2, 0.2), (3, 5)),
    LayerCase("splitrelu_linear_tail", lambda: L.SplitReLU(2, 0.2, n_linear=2), (3, 6)),
    LayerCase("sigmoid", lambda: L.Sigmoid(), (6,)),
    LayerCase("tanh", lambda: L.Tanh(), (6,)),
    LayerCase("channel_softmax", lambda: L.ChannelSoftmax(), (3, 2, 4)),
    LayerCase("minibatch_discrimination", lambda: L.MinibatchDiscrimination(3, 4), (6,), batch=5),
    LayerCase("dropout", lambda: L.Dropout(0.3), (4, 5)),
    LayerCase("inpainting_attention", lambda: L.InpaintingAttention(), ((4, 5, 1), (4, 5, 1))),
    # model types built from the layers above (wgan-gp and vae are chains of Dense and activations)
    LayerCase("lagan_class_embedding", _class_embedding, ((5,), (2,))),
    LayerCase("lagan_generator_tiny", lambda: _lagan_tiny("generator"), ((3,), (2,), (1,)), batch=6,
              parity_tolerance=NETWORK_PARITY_TOLERANCE),
    LayerCase("lagan_discriminator_tiny", lambda: _lagan_tiny("discriminator"), ((25, 25, 1), (1,), (1,)), batch=3,
              parity_tolerance=NETWORK_PARITY_TOLERANCE),
)


def _bce(x):
    targets = (np.arange(x.size).reshape(x.shape) % 2).astype(float)
    return losses.bce_with_logits(x, targets, np)


def _mae(x):
    return losses.mean_absolute_error(x, np.linspace(-1.0, 1.0, x.size).reshape(x.shape), np)


def _critic(x):
    loss, d_real, d_fake = losses.wasserstein_critic_loss(x[: len(x) // 2], x[len(x) // 2 :], np)
    return loss, np.concatenate([d_real, d_fake])


def _vae_reparameterisation_kl(x):
    """KL + <r, z> for z = mu + exp(logvar / 2) eps, x = [mu, logvar] (fixed eps and r)."""
    from calosim.models.vae import kl_divergence, reparameterise, reparameterise_backward

    mu, logvar = x[: len(x) // 2].reshape(1, -1), x[len(x) // 2:].reshape(1, -1)
    eps = np.linspace(-1.5, 1.2, mu.size).reshape(mu.shape)
    r = np.cos(np.arange(mu.size)).reshape(mu.shape)
    z, sigma = reparameterise(mu, logvar, eps, np)
    kl, dmu_kl, dlogvar_kl = kl_divergence(mu, logvar, np)
    dmu, dlogvar = reparameterise_backward(r, sigma, eps)
    return float(kl.sum() + (r * z).sum()), np.concatenate([(dmu + dmu_kl).ravel(), (dlogvar + dlogvar_kl).ravel()])


LOSS_CASES: tuple[tuple[str, Callable], ...] = (
    ("bce_with_logits", _bce),
    ("mean_absolute_error", _mae),
    ("wasserstein_critic", _critic),
    ("vae_reparameterisation_kl", _vae_reparameterisation_kl),
)


@dataclass(frozen=True)
class DoubleBackwardCase:
    """A critic-like chain and the number of leading input features its gradient penalty covers."""

    name: str
    make: Callable[[], L.Layer]
    n_features: int
    n_penalised: int | None = None
    batch: int = 4


DOUBLE_BACKWARD_CASES: tuple[DoubleBackwardCase, ...] = (
    # the FastCaloGAN critic in miniature: 6 voxels + 1 condition, penalty on the voxels
    DoubleBackwardCase("critic_relu", lambda: L.Sequential([L.Dense(7), L.ReLU(), L.Dense(7), L.ReLU(),
                                                            L.Dense(7), L.ReLU(), L.Dense(1)]), 7, 6),
    DoubleBackwardCase("critic_leakyrelu", lambda: L.Sequential([L.Dense(5), L.LeakyReLU(0.2), L.Dense(1)]), 4),
    # smooth activations: the second-order terms (f'' != 0) travel down the forward graph
    DoubleBackwardCase("mlp_tanh_sigmoid", lambda: L.Sequential([L.Dense(5), L.Tanh(), L.Dense(4), L.Sigmoid(),
                                                                 L.Dense(3), L.Tanh(), L.Dense(1)]), 6, 4),
    DoubleBackwardCase("dense_3_outputs", lambda: L.Sequential([L.Dense(6), L.Sigmoid(), L.Dense(3)]), 5, None, 3),
)


def double_backward_check(case: DoubleBackwardCase, backend_name: str, seed: int = 0, n_directions: int = 3,
                          h: float = 1e-6) -> GradcheckResult:
    """The weight and input gradient of P = 10 mean_n (||g_n[:n_penalised]|| - 1)^2, g = dD/dx from the
    hand-written backward, against float64 central differences of P along seeded random directions."""
    backend = get_backend(backend_name, "float64")
    rng = np.random.default_rng(seed)
    net = case.make()
    net.build((case.n_features,), backend, rng)
    params = net.parameters()
    x = backend.asarray(_away_from_zero(rng.standard_normal((case.batch, case.n_features))))
    seed_dy = None

    def penalty(x_in):
        nonlocal seed_dy
        y, g, tape = input_gradient(net, x_in, seed_dy)
        if seed_dy is None:  # a fixed random seed for multi-output nets (ones for D (N, 1))
            seed_dy = backend.asarray(rng.standard_normal(y.shape)) if y.shape[1] > 1 else backend.xp.ones_like(y)
            y, g, tape = input_gradient(net, x_in, seed_dy)
        value, gg, _ = gradient_penalty(g, case.n_penalised, 10.0, backend.xp)
        return value, gg, tape

    _, gg, tape = penalty(x)
    dx, grads = input_gradient_backward(tape, gg)
    return check_directions(lambda xs: penalty(xs[0])[0], [x], params, [dx], [grads[p] for p in params], backend,
                            rng, n_directions, h, case.name)


@dataclass
class CheckRow:
    op: str
    check: str
    max_rel_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_rel_error) and self.max_rel_error < self.tolerance)


def gradient_check(case: LayerCase, backend_name: str, seed: int = 0):
    """Gradient check of one layer case on ``backend_name`` in float64."""
    backend = get_backend(backend_name, "float64")
    rng = np.random.default_rng(seed)
    layer = case.build(backend, seed)
    if not case.training:
        _randomise_statistics(layer, backend, rng)
    return check_layer(layer, case.inputs(rng), backend, rng, training=case.training, name=case.name)


def _randomise_statistics(layer, backend, rng):
    for sub in layer.walk():
        for key, value in sub.state.items():
            sub.state[key] = backend.asarray(np.abs(rng.standard_normal(value.shape)) + 0.5)


def parity_error(case: LayerCase, backend_name: str, seed: int = 0) -> float:
    """Largest relative difference of forward output, input gradients and parameter gradients, float32."""
    reference, other = get_backend("numpy", "float32"), get_backend(backend_name, "float32")
    results = []
    for backend in (reference, other):
        rng = np.random.default_rng(seed)
        layer = case.build(backend, seed)
        inputs = case.inputs(rng)
        xs = [backend.asarray(x) for x in inputs] if case.multi_input else backend.asarray(inputs)
        y = layer.forward(xs, case.training)
        dy = backend.asarray(rng.standard_normal(y.shape))
        dx = layer.backward(dy)
        arrays = [y, *(dx if case.multi_input else [dx]), *(p.grad for p in layer.parameters())]
        results.append([np.asarray(backend.to_numpy(a), dtype=np.float64) for a in arrays])
    return max(_rel(a, b) for a, b in zip(results[1], results[0]))


def _rel(value: np.ndarray, reference: np.ndarray) -> float:
    scale = max(float(np.abs(reference).max(initial=0.0)), 1e-30)
    return float(np.abs(value - reference).max(initial=0.0)) / scale


def run_selftest(backend_name: str, seed: int = 0) -> list[CheckRow]:
    """Every check for ``backend_name``: gradients (float64) and, for non-reference backends, parity (float32)."""
    get_backend(backend_name)  # fails early, with the reason, when the backend cannot run here
    rows = []
    for case in LAYER_CASES:
        result = gradient_check(case, backend_name, seed)
        rows.append(CheckRow(case.name, "gradient float64", result.max_rel_error, GRADIENT_TOLERANCE))
        if backend_name != "numpy":
            rows.append(CheckRow(case.name, "parity float32", parity_error(case, backend_name, seed),
                                 case.parity_tolerance))
    for case in DOUBLE_BACKWARD_CASES:
        result = double_backward_check(case, backend_name, seed)
        rows.append(CheckRow(case.name, "double backward", result.max_rel_error, GRADIENT_TOLERANCE))
    rng = np.random.default_rng(seed)
    for name, fn in LOSS_CASES:
        result = check_function(fn, rng.standard_normal(8), rng, name=name)
        rows.append(CheckRow(name, "gradient float64", result.max_rel_error, GRADIENT_TOLERANCE))
    return rows


def format_rows(rows: list[CheckRow]) -> str:
    width = max(len(r.op) for r in rows)
    lines = [f"{'op':<{width}}  {'check':<16}  {'max rel error':>13}  result"]
    for r in rows:
        lines.append(f"{r.op:<{width}}  {r.check:<16}  {r.max_rel_error:>13.2e}  {'pass' if r.passed else 'FAIL'}")
    failed = sum(not r.passed for r in rows)
    lines.append(f"{len(rows) - failed} passed, {failed} failed")
    return "\n".join(lines)
