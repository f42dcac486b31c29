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
    """(h, s): the streams' input and the per-shower factor s = E / 100 GeV, (N, 1).

    The paper: h = z * s. With config.g_energy_scaled_output: h = [z * s^p, log s] (N, Z + 1), p =
    config.g_latent_energy_power, and the generator multiplies its output images by s."""
    s = (energy / ENERGY_SCALE_GEV).reshape(-1, 1)
    if config.g_energy_scaled_output:
        return xp.concatenate([z * latent_scale(s, config), xp.log(s)], axis=1), s
    return z * s, s


def latent_scale(s, config: CaloGANConfig):
    """dh/dz of the energy-scaled input: s^p (1 for p = 0)."""
    return s ** config.g_latent_energy_power if config.g_latent_energy_power else 1.0


def stream_input_dim(config: CaloGANConfig) -> int:
    return config.latent_dim + (1 if config.g_energy_scaled_output else 0)


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
    """Images (N, R, C, 1) times s (N, 1) with config.g_energy_scaled_output, else as they are (the same
    factor serves the gradients on the way back)."""
    if not config.g_energy_scaled_output:
        return images
    return [x * s.reshape(-1, 1, 1, 1) for x in images]


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


def _generator_stream(shape, cfg: CaloGANConfig, name: str) -> Sequential:
    r, c = shape
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
            if cfg.g_output_init_scale != 1.0:  # after the draw: the same random numbers as the paper's init
                kernel = stream.layers[-1].params["kernel"]
                kernel.value = kernel.value * cfg.g_output_init_scale
            self.streams.append(stream)
        for index, shape in enumerate(self.shapes):
            attention = carry = None
            factors = carry_factors(self.shapes[index - 1], shape) if index > 0 and cfg.attention else None
            if factors is not None:
                carry = Carry(*factors, name=f"{self.name}.carry{index}")
                carry.build((*self.shapes[index - 1], 1), self.backend, rng)
                attention = InpaintingAttention(name=f"{self.name}.attention{index}")
                attention.build([(*shape, 1), (*shape, 1)], self.backend, rng)
            self.carries.append(carry)
            self.attentions.append(attention)
            name = f"{self.name}.relu{index}"  # knee 0: the paper's ReLU
            if cfg.g_output_leak > 0:
                relu = AnnealedReLU(cfg.g_output_leak, cfg.g_output_leak_forwards, name=name, knee=cfg.g_output_knee)
            else:
                relu = KneeReLU(cfg.g_output_knee, name=name)
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
        if self.config.g_energy_scaled_output:
            return dh[:, :self.config.latent_dim] * latent_scale(self._scale, self.config)
        return dh * self._scale

    def set_latent_gradient(self, flag: bool) -> None:
        """Whether backward computes dL/dz (training never needs it: it skips one large product per stream)."""
        for stream in self.streams:
            stream.layers[0].input_grad = flag


