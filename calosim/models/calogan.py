"""CaloGAN (arXiv:1705.02355): a conditional generator and discriminator for layered calorimeter images.

Built from calosim.layers for any layered geometry (one stream per layer); reference sections 2-3.

Notation: N batch, L layers, layer l an image (R_l, C_l); Z latent size; images are channels-last
(N, R_l, C_l, 1) in training units (GeV = MeV / config.image_scale); E the incident energy (N,) in GeV.

Generator  G(z, E) -> [(N, R_l, C_l, 1)]:
    h = z * (E / 100)   [config g_energy_scaled_output: h = [z (E / 100)^p, log(E / 100)], p config
                         g_latent_energy_power, and out_l below times E / 100]
    stream_l(h) = Dense((R+2)(C+2) F) -> Reshape(R+2, C+2, F) -> Conv2D(f, 2x2, same, he_uniform) -> LeakyReLU
                  -> BatchNorm -> LC2D(g, 2x2, he_uniform) -> LeakyReLU -> LC2D(1, 2x2, no bias, glorot_normal)
    x_l = attention(stream_l(h), carry_l(x_{l-1}))  for l >= 1 where the shapes relate (else x_l = stream_l(h))
    out_l = ReLU(x_l)   [config g_output_knee k > 0: x_l^2 / (x_l + k) where x_l > 0, 0 elsewhere]
carry_l = AveragePool(p) o UpSample(u): per axis, u = R_l / R_{l-1} if that divides, or p = R_{l-1} / R_l;
in the CaloGAN geometry (3, 96) -> (12, 12) is UpSample(4, 1) then AveragePool(1, 8) and (12, 12) -> (12, 6)
is AveragePool(1, 2), as in the paper. The carry is taken from x_{l-1} after its attention, before the ReLU.

Discriminator  D([images], E) -> logits (N, 1) (the sigmoid lives in the BCE-with-logits loss):
    per layer: s_l = Flatten(stream: Conv2D(c, 2x2, same) -> LeakyReLU -> 3 x [ZeroPad(1) -> LC2D -> LeakyReLU
               -> BatchNorm] with (16, 3x3, stride (1, 2)), (8, 2x2), (8, 2x2, stride (1, 2)))
               features s_l, tanh(MBD(s_l)), sparsity_l (fraction of cells > 0), tanh(MBD(sparsity_l))
    global:    E_l / 10, E_tot / 100, tanh(MBD(E_l)), |E_tot - E|, 10 [|E_tot - E| > 5 GeV]
               (E_l = sum of layer l's cells, E_tot = sum_l E_l, all in GeV)
    -> concat -> Dense(1).
Gradients: the sparsity and the step 10 [. > 5] are piecewise constant (zero gradient); gradients reach the
images through the streams, E_l, E_tot and |E_tot - E|. ``backward`` returns dL/d(images), which the trainer
chains into the generator's backward.
"""

from __future__ import annotations

import numpy as np

from calosim.layers import (
    AveragePooling2D,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    InpaintingAttention,
    KneeReLU,
    Layer,
    LeakyReLU,
    LocallyConnected2D,
    MinibatchDiscrimination,
    Reshape,
    Sequential,
    Tanh,
    UpSampling2D,
    ZeroPad2D,
)
from calosim.models.config import CaloGANConfig

ENERGY_SCALE_GEV = 100.0  # h = z * (E / 100)
WELL_THRESHOLD_GEV = 5.0  # the discriminator's "energy too far off" step


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


def _discriminator_stream(shape, cfg: CaloGANConfig, name: str) -> Sequential:
    f1, f2, f3 = cfg.d_lc_filters
    layers: list[Layer] = [Conv2D(cfg.d_conv_filters, 2, padding="same"), LeakyReLU(cfg.leaky_alpha)]
    for filters, kernel, stride in ((f1, 3, (1, 2)), (f2, 2, 1), (f3, 2, (1, 2))):
        layers += [ZeroPad2D(1), LocallyConnected2D(filters, kernel, strides=stride), LeakyReLU(cfg.leaky_alpha),
                   BatchNorm(cfg.bn_momentum, cfg.bn_epsilon)]
    layers.append(Flatten())
    return Sequential(layers, name=name)


class CaloGANDiscriminator(Layer):
    """D([images], E) -> logits (N, 1); built with ``build([(R_l, C_l, 1) ...], backend, rng)``.

    forward([img_0, ..., img_{L-1}, E]) with images (N, R_l, C_l, 1) in training units (GeV) and E (N,) GeV;
    backward(d_logits (N, 1)) returns [d img_l] (no gradient for E, which is never a function of weights).
    """

    def __init__(self, config: CaloGANConfig, shapes, name: str = "discriminator"):
        super().__init__(name)
        self.config = config
        self.shapes = [tuple(int(v) for v in s) for s in shapes]
        self.update_statistics = True

    def _build(self, input_shapes, rng):
        cfg = self.config
        expected = [(*s, 1) for s in self.shapes]
        if [tuple(s) for s in input_shapes] != expected:
            raise ValueError(f"{self.name}: input shapes must be {expected}, got {input_shapes}")
        k, d = cfg.mbd_kernels, cfg.mbd_dim
        self.streams, self.feature_mbd, self.feature_tanh, self.sparsity_mbd, self.sparsity_tanh = [], [], [], [], []
        widths = []  # widths of the pieces of the final concatenation, in order
        for index, shape in enumerate(expected):
            stream = _discriminator_stream(shape, cfg, f"{self.name}.stream{index}")
            (n_features,) = stream.build(shape, self.backend, rng)
            mbd = MinibatchDiscrimination(k, d, name=f"{self.name}.mbd_features{index}")
            mbd.build((n_features,), self.backend, rng)
            smbd = MinibatchDiscrimination(k, d, name=f"{self.name}.mbd_sparsity{index}")
            smbd.build((1,), self.backend, rng)
            tanhs = [Tanh(name=f"{self.name}.tanh_{what}{index}") for what in ("features", "sparsity")]
            for t in tanhs:
                t.build((k,), self.backend, rng)
            self.streams.append(stream)
            self.feature_mbd.append(mbd)
            self.sparsity_mbd.append(smbd)
            self.feature_tanh.append(tanhs[0])
            self.sparsity_tanh.append(tanhs[1])
            widths += [n_features, k, 1, k]
        n_layers = len(expected)
        self.energy_mbd = MinibatchDiscrimination(k, d, name=f"{self.name}.mbd_energies")
        self.energy_mbd.build((n_layers,), self.backend, rng)
        self.energy_tanh = Tanh(name=f"{self.name}.tanh_energies")
        self.energy_tanh.build((k,), self.backend, rng)
        widths += [n_layers, 1, k, 1, 1]  # E_l / 10, E_tot / 100, tanh(MBD(E_l)), |E_tot - E|, step
        self.widths = widths
        self.output = Dense(1, name=f"{self.name}.output")
        self.output.build((sum(widths),), self.backend, rng)
        return (1,)

    def sublayers(self):
        return [*self.streams, *self.feature_mbd, *self.feature_tanh, *self.sparsity_mbd, *self.sparsity_tanh,
                self.energy_mbd, self.energy_tanh, self.output]

    def set_input_gradient(self, flag: bool) -> None:
        """Whether backward returns dL/d(images) (off in the discriminator's own steps, which only need the
        weight gradients: the first convolution's data gradient is then skipped)."""
        self.input_grad = flag
        for stream in self.streams:
            stream.layers[0].input_grad = flag

    def set_update_statistics(self, flag: bool) -> None:
        """Whether training-mode forwards update the BatchNorm moving statistics (off in the generator step)."""
        for layer in self.walk():
            if isinstance(layer, BatchNorm):
                layer.update_statistics = flag

    def forward(self, inputs, training: bool = True):
        *images, energy = inputs
        xp = self.backend.xp
        if len(images) != len(self.shapes):
            raise ValueError(f"{self.name}: expected {len(self.shapes)} images and the energy, "
                             f"got {len(inputs)} inputs")
        n = energy.shape[0]
        pieces = []
        layer_energies = []
        for index, x in enumerate(images):
            features = self.streams[index].forward(x, training)
            pieces.append(features)
            mbd = self.feature_mbd[index].forward(features, training)
            pieces.append(self.feature_tanh[index].forward(mbd, training))
            sparsity = (x > 0).reshape(n, -1).mean(axis=1, keepdims=True).astype(x.dtype)
            pieces.append(sparsity)
            pieces.append(self.sparsity_tanh[index].forward(self.sparsity_mbd[index].forward(sparsity, training),
                                                            training))
            layer_energies.append(x.reshape(n, -1).sum(axis=1))
        e_layers = xp.stack(layer_energies, axis=1)  # (N, L) GeV
        e_tot = e_layers.sum(axis=1, keepdims=True)  # (N, 1)
        deviation = e_tot - energy.reshape(n, 1)
        self._deviation_sign = xp.sign(deviation)  # retained: d|E_tot - E| / dE_tot
        well = xp.abs(deviation)
        pieces += [e_layers / 10.0, e_tot / 100.0,
                   self.energy_tanh.forward(self.energy_mbd.forward(e_layers, training), training),
                   well, 10.0 * (well > WELL_THRESHOLD_GEV).astype(well.dtype)]
        self._image_shapes = [x.shape for x in images]  # retained: the shapes of the image gradients
        return self.output.forward(xp.concatenate(pieces, axis=1), training)

    def backward(self, d_logits):
        dp = self.output.backward(d_logits)
        bounds = np.cumsum(self.widths)[:-1]
        parts = np.split(np.arange(dp.shape[1]), bounds)
        d = [dp[:, p[0]:p[-1] + 1] for p in parts]
        n_layers = len(self.shapes)
        d_e_layers, d_e_tot, d_mbd_e, d_well, _ = d[4 * n_layers:]
        d_e_layers = d_e_layers / 10.0 + self.energy_mbd.backward(self.energy_tanh.backward(d_mbd_e))
        d_e_tot = d_e_tot / 100.0 + d_well * self._deviation_sign  # (N, 1); the step has no gradient
        d_e_layers = d_e_layers + d_e_tot
        d_images = []
        for index in range(n_layers):
            d_features, d_mbd, _, d_smbd = d[4 * index: 4 * index + 4]
            d_features = d_features + self.feature_mbd[index].backward(self.feature_tanh[index].backward(d_mbd))
            if self.sparsity_mbd[index].param_grads:  # its input (the occupancy) has no gradient: weights only
                self.sparsity_mbd[index].backward(self.sparsity_tanh[index].backward(d_smbd))
            dx = self.streams[index].backward(d_features)
            if self.input_grad:
                d_images.append(dx + d_e_layers[:, index].reshape(-1, 1, 1, 1))
        return d_images if self.input_grad else None


def build_calogan(config: CaloGANConfig, shapes, backend, rng: np.random.Generator):
    """(generator, discriminator) built on ``backend`` with weights drawn from ``rng`` (generator first)."""
    generator = CaloGANGenerator(config, shapes)
    generator.build((config.latent_dim,), backend, rng)
    discriminator = CaloGANDiscriminator(config, shapes)
    discriminator.build([(*s, 1) for s in shapes], backend, rng)
    for model in (generator, discriminator):
        names = [p.name for p in model.parameters()]
        if len(set(names)) != len(names):
            raise AssertionError(f"{model.name}: parameter names are not unique")
    return generator, discriminator


class CaloGAN:
    """A generator and a discriminator with what it takes to use them: config, geometry, particle and the
    incident-energy range (GeV) the generator is conditioned on."""

    def __init__(self, config: CaloGANConfig, geometry, generator: CaloGANGenerator,
                 discriminator: CaloGANDiscriminator, particle: str = "unknown", energy_range=(1.0, 100.0)):
        self.config = config
        self.geometry = geometry
        self.generator = generator
        self.discriminator = discriminator
        self.particle = particle
        self.energy_range = (float(energy_range[0]), float(energy_range[1]))
        self.backend = generator.backend
        self.attrs: dict = {}
        self.sampler = None  # the folded inference generator, after freeze()

    @classmethod
    def build(cls, config: CaloGANConfig, geometry, backend, rng: np.random.Generator, particle: str = "unknown",
              energy_range=(1.0, 100.0)) -> CaloGAN:
        generator, discriminator = build_calogan(config, geometry.shapes, backend, rng)
        return cls(config, geometry, generator, discriminator, particle, energy_range)

    def freeze(self) -> CaloGAN:
        """Prepare for sampling only: later inference calls of :meth:`generate` run the folded generator
        (calosim.models.inference), built now from the current weights. Training the model afterwards would
        leave it stale, so only call this on a model that is done training."""
        from calosim.models.inference import FoldedGenerator

        self.sampler = FoldedGenerator(self.generator)
        return self

    def generate(self, z, energy, training: bool = False) -> list:
        """Layer images [(N, R_l, C_l)] in MeV (backend arrays) for z (N, Z) and E (N,) GeV (backend arrays).
        Inference (training=False) uses the BatchNorm moving statistics (folded, after :meth:`freeze`)."""
        if training or self.sampler is None:
            images = self.generator.forward([z, energy], training)
        else:
            images = self.sampler.forward(z, energy)
        scale = self.config.image_scale
        return [(x * scale).reshape(x.shape[:3]) for x in images]
