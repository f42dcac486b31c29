"""The CaloGAN generator G(z, E) -> [(N, R_l, C_l, 1)] (the package docstring has the architecture)."""

from __future__ import annotations

import numpy as np

from calosim.layers import (
    AveragePooling2D,
    BatchNorm,
    Conv2D,
    Dense,
    InpaintingAttention,
    KneeReLU,
    Layer,
    LeakyReLU,
    LocallyConnected2D,
    Reshape,
    Sequential,
    UpSampling2D,
)
from calosim.models.calogan.config import CaloGANConfig

ENERGY_SCALE_GEV = 100.0  # h = z * (E / 100)


def generator_input(z, energy, config: CaloGANConfig, xp):
    """(h, s): the streams' input and the per-shower factor s = E / 100 GeV, (N, 1), as the config's energy
    input makes them (the paper: h = z * s; energy_scaled_output: h = [z * s^p, log s])."""
    s = (energy / ENERGY_SCALE_GEV).reshape(-1, 1)
    return config.energy_input.stream_input(z, s, xp), s


def stream_input_dim(config: CaloGANConfig) -> int:
    return config.latent_dim + config.energy_input.extra_inputs


def carry_factors(src: tuple[int, int], dst: tuple[int, int]):
    """(upsample, pool) factors per axis turning a (R, C) image into a ``dst`` one, or None if no integer
    up-sampling / pooling does it. (3, 96) -> (12, 12): ((4, 1), (1, 8)); (12, 12) -> (12, 6): ((1, 1), (1, 2))."""
    up, pool = [], []
    for s, d in zip(src, dst):
        if d % s == 0:
            up.append(d // s)
            pool.append(1)
        elif s % d == 0:
            up.append(1)
            pool.append(s // d)
        else:
            return None
    return tuple(up), tuple(pool)


def scale_output(images, s, config: CaloGANConfig):
    """Images (N, R, C, 1) as the config's energy input scales them (energy_scaled_output: times s (N, 1); the
    same factor serves the gradients on the way back)."""
    return config.energy_input.scale_output(images, s)


class Carry(Sequential):
    """The image of the previous layer resampled to this layer's shape: UpSampling2D then AveragePooling2D."""

    def __init__(self, up, pool, name: str):
        layers = []
        if up != (1, 1):
            layers.append(UpSampling2D(up))
        if pool != (1, 1):
            layers.append(AveragePooling2D(pool))
        super().__init__(layers, name=name)
        self.up, self.pool = up, pool


class AnnealedReLU(KneeReLU):
    """The generator's final activation with a leak that anneals away: each training-mode forward uses the slope
    in ``state["slope"]`` (saved with the model, so resuming continues the schedule) and then lowers it by
    ``slope0 / forwards`` down to 0; inference always uses the plain (knee) ReLU."""

    def __init__(self, slope0: float, forwards: int, name: str, knee: float = 0.0):
        super().__init__(knee, 0.0, name=name)
        self.slope0, self.forwards = float(slope0), int(forwards)

    def _build(self, input_shape, rng):
        self.state["slope"] = self.backend.asarray(np.array([self.slope0]))
        return input_shape

    def forward(self, x, training: bool = True):
        if training:
            slope = float(np.asarray(self.backend.to_numpy(self.state["slope"])).ravel()[0])
            self.alpha = max(slope, 0.0)
            nxt = max(slope - self.slope0 / self.forwards, 0.0)
            self.state["slope"] = self.backend.asarray(np.array([nxt]), dtype=self.state["slope"].dtype)
        else:
            self.alpha = 0.0
        return super().forward(x, training)


def final_activation(cfg: CaloGANConfig, name: str) -> KneeReLU:
    """The paper's ReLU, x^2 / (x + k) with output_knee, leaking at first with output_start's leak."""
    knee = cfg.output_knee.knee if cfg.output_knee is not None else 0.0
    start = cfg.output_start
    if start is not None and start.leak > 0:
        return AnnealedReLU(start.leak, start.leak_forwards, name=name, knee=knee)
    return KneeReLU(knee, name=name)


def _generator_stream(shape, cfg: CaloGANConfig, name: str) -> Sequential:
    r, c = shape
    cfg = cfg.architecture
    f = cfg.g_dense_channels
    return Sequential([
        Dense((r + 2) * (c + 2) * f),
        Reshape((r + 2, c + 2, f)),
        Conv2D(cfg.g_conv_filters, 2, padding="same", kernel_init="he_uniform"),
        LeakyReLU(cfg.leaky_alpha),
        BatchNorm(cfg.bn_momentum, cfg.bn_epsilon),
        LocallyConnected2D(cfg.g_lc_filters, 2, kernel_init="he_uniform"),
        LeakyReLU(cfg.leaky_alpha),
        LocallyConnected2D(1, 2, use_bias=False, kernel_init="glorot_normal"),
    ], name=name)


class CaloGANGenerator(Layer):
    """G(z, E): built with ``build((latent_dim,), backend, rng)``; forward([z (N, Z), E (N,) GeV]) returns the
    list of layer images [(N, R_l, C_l, 1)] in training units; backward(d_images) returns dL/dz."""

    def __init__(self, config: CaloGANConfig, shapes, name: str = "generator"):
        super().__init__(name)
        self.config = config
        self.shapes = [tuple(int(v) for v in s) for s in shapes]

    def _build(self, input_shape, rng):
        cfg = self.config
        if tuple(input_shape) != (cfg.latent_dim,):
            raise ValueError(f"{self.name}: input shape must be ({cfg.latent_dim},), got {input_shape}")
        self.streams, self.attentions, self.carries, self.relus = [], [], [], []
        for index, shape in enumerate(self.shapes):
            stream = _generator_stream(shape, cfg, f"{self.name}.stream{index}")
            out = stream.build((stream_input_dim(cfg),), self.backend, rng)
            assert out == (*shape, 1), (out, shape)
            if cfg.output_start is not None and cfg.output_start.init_scale != 1.0:  # after the paper's draw
                kernel = stream.layers[-1].params["kernel"]
                kernel.value = kernel.value * cfg.output_start.init_scale
            self.streams.append(stream)
        for index, shape in enumerate(self.shapes):
            attention = carry = None
            factors = (carry_factors(self.shapes[index - 1], shape) if index > 0 and cfg.architecture.attention
                       else None)
            if factors is not None:
                carry = Carry(*factors, name=f"{self.name}.carry{index}")
                carry.build((*self.shapes[index - 1], 1), self.backend, rng)
                attention = InpaintingAttention(name=f"{self.name}.attention{index}")
                attention.build([(*shape, 1), (*shape, 1)], self.backend, rng)
            self.carries.append(carry)
            self.attentions.append(attention)
            relu = final_activation(cfg, f"{self.name}.relu{index}")
            relu.build((*shape, 1), self.backend, rng)
            self.relus.append(relu)
        return [(*s, 1) for s in self.shapes]

    def sublayers(self):
        return ([*self.streams] + [a for a in self.attentions if a is not None]
                + [c for c in self.carries if c is not None] + self.relus)

    def forward(self, inputs, training: bool = True):
        z, energy = inputs
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim or energy.shape != (z.shape[0],):
            raise ValueError(f"{self.name}: expected z (N, {self.config.latent_dim}) and E (N,), "
                             f"got {tuple(z.shape)} and {tuple(energy.shape)}")
        h, self._scale = generator_input(z, energy, self.config, self.backend.xp)  # the scale is retained
        xs = [stream.forward(h, training) for stream in self.streams]
        for index in range(1, len(xs)):
            if self.attentions[index] is not None:
                carried = self.carries[index].forward(xs[index - 1], training)
                xs[index] = self.attentions[index].forward([xs[index], carried], training)
        self.pre_activation = xs  # retained: the images before the final activation (the occupancy loss)
        return scale_output([relu.forward(x, training) for relu, x in zip(self.relus, xs)], self._scale,
                            self.config)

    def backward(self, d_images, d_pre_activation=None):
        """dL/dz from dL/d(images) and optionally dL/d(images before the final activation)."""
        dxs = [relu.backward(d) for relu, d in zip(self.relus, scale_output(d_images, self._scale, self.config))]
        if d_pre_activation is not None:
            dxs = [dx + dp for dx, dp in zip(dxs, d_pre_activation)]
        for index in range(len(dxs) - 1, 0, -1):
            if self.attentions[index] is not None:
                d_primary, d_carried = self.attentions[index].backward(dxs[index])
                dxs[index] = d_primary
                dxs[index - 1] = dxs[index - 1] + self.carries[index].backward(d_carried)
        dh = None
        for stream, dx in zip(self.streams, dxs):
            d = stream.backward(dx)
            dh = d if dh is None else dh + d
        if dh is None:
            return None
        return self.config.energy_input.latent_gradient(dh, self._scale, self.config.latent_dim)

    def set_latent_gradient(self, flag: bool) -> None:
        """Whether backward computes dL/dz (training never needs it: it skips one large product per stream)."""
        for stream in self.streams:
            stream.layers[0].input_grad = flag


