"""The model contract: what every model type implements, and all that the training loop, the model files, the
sampler and the benchmarks may assume of a model. Nothing outside calosim.models names a model type.

A model type is a subclass of :class:`ShowerModel` with
    model_type          its name (``calosim train --model-type``), stored in model files
    config_class        a frozen dataclass with :class:`ConfigMixin`; ``configs`` {name: config}, ``default_config``
    trainer_class       a :class:`Trainer` subclass: the type's training step
    build(config, geometry, backend, rng, particle, energy_range, fitted)   networks with weights drawn from rng
    networks()          {"generator": Layer, ...}: the type's networks, in order
    generate(z, E, labels, training)   the networks' pass: [(N, R_l, C_l)] MeV backend arrays
and inherits
    sample(E, rng, labels)             the one sampling path (latent draws, class draws, inference pass, with
                                       fitted cell calibration the cells scaled (calosim.models.calibration),
                                       with an energy model the layers rescaled to its energies, and with
                                       sampling_mirror_axes each shower reflected at random)
    attach_energy_model(config, rng)   energy factorisation for any type (calosim.models.energy)
    all_networks()                     the type's networks and the energy model's: what a model file stores
    fit(config, data_path, rows)       values fitted from the training data (model state, stored with the model)
    freeze()                           prepare for sampling only (exact inference folds where the type has any)
    export_sampling_onnx(graph)        sample's path as one ONNX graph: export_onnx, the cell calibration, then
                                       (with an energy model) its draws as inputs and the rescaling to its layer
                                       energies, then the reflections (their draws an input)
and may implement
    export_onnx(graph)                 generate's path on an ONNX graph (calosim.export)

Units: incident energies E in GeV (N,); generated cells in MeV; ``energy_range`` (GeV) the conditioning range.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import ClassVar

import numpy as np

from calosim.errors import ConfigError, ExportError, TrainingError
from calosim.models.units import CONDITIONING, energy_condition

MIRROR_UNIFORM = "mirror_uniform"  # the graph input of apply_mirror's draws (export_mirror)


class ConfigMixin:
    """to_dict / from_dict / replace for frozen dataclass configs; tuple fields travel as JSON lists and
    unknown fields are an error (a typo never passes silently)."""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"bad config: {exc}") from None

    def replace(self, **changes):
        return type(self).from_dict({**self.to_dict(), **changes})


def load_config_file(path) -> dict:
    """Overrides from a .json or .toml file: a flat table, or one under a top-level ``model`` key."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise ConfigError(f"{path}: TOML config files need Python >= 3.11; use JSON") from None
            data = tomllib.loads(text.decode("utf-8"))
        else:
            data = json.loads(text.decode("utf-8"))
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse error is one clear line
        raise ConfigError(f"{path}: cannot parse as {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of config fields")
    if set(data) == {"model"} and isinstance(data["model"], dict):
        data = data["model"]
    return data


class LossNotFinite(TrainingError):
    """A NaN or infinite loss: the trainer stops before the bad step is applied."""


def check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise LossNotFinite(f"the {what} loss is {value}")


def check_unique_names(networks: dict) -> None:
    for net in networks.values():
        names = [p.name for p in net.parameters()]
        if len(set(names)) != len(names):
            raise AssertionError(f"{net.name}: parameter names are not unique")


class Trainer:
    """A model type's training step. The loop (calosim.training) calls, per epoch, ``start_epoch``, then
    ``train_step`` once per batch, then ``end_epoch``; it checkpoints ``optimizers`` and ``state()``.

    loss_names   every loss ``train_step`` may report, in display order (a step may report a subset)
    optimizers   {name: calosim.optim.Adam}, one per parameter group
    rng          the noise stream (latent vectors, fake energies, ...): the loop checkpoints its state
    """

    loss_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model, rng: np.random.Generator):
        self.model = model
        self.backend = model.backend
        self.rng = rng
        self.optimizers: dict = {}

    def train_step(self, layers_mev, energy_gev, labels=None) -> dict[str, float]:
        """One step on a real batch: per-layer (B, R_l, C_l) MeV and E (B,) GeV (NumPy), labels (B,) for
        two-class models; returns {loss name: value} before the update."""
        raise NotImplementedError

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Before epoch ``epoch`` (1-based) of ``epochs``."""

    def end_epoch(self) -> None:
        """After the epoch's steps, before validation."""

    def step_products(self, batch: int) -> list[tuple[int, int, int, int]]:
        """The matrix products (count, M, K, N) of one ``train_step`` at ``batch`` (for ``calosim bench``'s
        GEMM reference); empty where the type does not count them."""
        return []

    def state(self) -> dict:
        """JSON-able counters the checkpoint keeps (every RNG is checkpointed by the loop)."""
        return {}

    def load_state(self, state: dict) -> None:
        """Restore what :meth:`state` returned."""


class ShowerModel:
    """The model contract (see the module docstring).

    Instances hold config, geometry (calosim.geometry.Geometry), backend, particle, energy_range (GeV),
    fitted ({name: NumPy array} of values fitted from the training data) and attrs (a loaded file's
    attributes)."""

    model_type: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    config_class: ClassVar[type] = ConfigMixin
    configs: ClassVar[dict] = {}
    default_config: ClassVar[str] = "small"  # what ``calosim train`` uses without --config
    reference_config: ClassVar[str] = "small"  # the published configuration (``calosim bench``'s default)
    trainer_class: ClassVar[type] = Trainer
    sampling_network: ClassVar[str] = "generator"  # the network ``sample`` runs (FLOP counts of the benchmark)

    def __init__(self, config, geometry, backend, particle: str = "unknown", energy_range=(1.0, 100.0),
                 fitted: dict | None = None):
        self.config = config
        self.geometry = geometry
        self.backend = backend
        self.particle = particle
        self.energy_range = (float(energy_range[0]), float(energy_range[1]))
        self.fitted = {k: np.asarray(v, np.float64) for k, v in (fitted or {}).items()}
        self.attrs: dict = {}
        self.energy_model = None  # a LayerEnergyModel after attach_energy_model
        # the axes (0 rows, 1 columns) every sampled shower is reflected along with probability 1/2: where the
        # geometry is mirror symmetric, so is Geant4's distribution, and the symmetrised one is nearer to it
        self.sampling_mirror_axes: tuple[int, ...] = ()

    # ------------------------------------------------------------------ configurations
    @classmethod
    def get_config(cls, name: str | None = None, config_file=None, **overrides):
        """The named configuration (default: the type's ``default_config``), then ``config_file``'s fields,
        then ``overrides`` (None = keep)."""
        name = name or cls.default_config
        if name not in cls.configs:
            raise ConfigError(f"unknown config {name!r} of model type {cls.model_type!r}; choose one of "
                              f"{', '.join(cls.configs)}")
        config = cls.configs[name]
        changes = load_config_file(config_file) if config_file is not None else {}
        changes.update({k: v for k, v in overrides.items() if v is not None})
        return config.replace(**changes) if changes else config

    @classmethod
    def config_from_dict(cls, d: dict):
        return cls.config_class.from_dict(d)

    @classmethod
    def split_stored_config(cls, d: dict) -> tuple[dict, dict]:
        """(config dict, fitted values) of a config as a model file stores it; types whose older files kept
        fitted values among the config fields move them out here."""
        return d, {}

    @classmethod
    def fit(cls, config, data_path, rows: range) -> dict:
        """{name: array} fitted from the training rows of ``data_path`` before the first step (none by
        default); ``build`` receives them as ``fitted`` and model files keep them."""
        return {}

    @classmethod
    def default_geometry(cls):
        """The geometry a fresh model of the type is built in when no data says otherwise (CaloGAN's)."""
        from calosim.geometry import calogan_geometry

        return calogan_geometry()

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, config, geometry, backend, rng: np.random.Generator, particle: str = "unknown",
              energy_range=(1.0, 100.0), fitted: dict | None = None):
        raise NotImplementedError

    def networks(self) -> dict:
        raise NotImplementedError

    def all_networks(self) -> dict:
        """The type's networks, then the energy model's (when attached): what a model file stores."""
        nets = dict(self.networks())
        if self.energy_model is not None:
            nets.update(self.energy_model.networks())
        return nets

    def parameters(self):
        return [p for net in self.all_networks().values() for p in net.parameters()]

    def walk(self):
        return [layer for net in self.all_networks().values() for layer in net.walk()]

    def attach_energy_model(self, config, rng: np.random.Generator) -> None:
        """Energy factorisation: a conditional model of the layer energies (calosim.models.energy, weights drawn
        from ``rng``) to which every sampled layer is rescaled; its target standardisation comes from
        ``fitted`` (energy_v_mean, energy_v_std, and the clip range energy_v_low, energy_v_high) when present,
        else from ``fit_energy_scales``."""
        from calosim.models.energy import LayerEnergyModel

        self.energy_model = LayerEnergyModel.build(config, self.geometry.n_layers, self.backend, rng,
                                                   self.energy_range, self.fitted.get("energy_v_mean"),
                                                   self.fitted.get("energy_v_std"), self.fitted.get("energy_v_low"),
                                                   self.fitted.get("energy_v_high"))

    def fit_energy_scales(self, layer_sums_mev, energy_gev) -> None:
        """The energy model's target standardisation from training showers, kept with the fitted values."""
        self.energy_model.fit_scales(layer_sums_mev, energy_gev)
        self.fitted["energy_v_mean"] = self.energy_model.t_mean
        self.fitted["energy_v_std"] = self.energy_model.t_std
        self.fitted["energy_v_low"] = self.energy_model.t_low
        self.fitted["energy_v_high"] = self.energy_model.t_high

    @property
    def batch_order(self) -> str:
        """How the loop orders an epoch's batches: "shuffled" (the dataset's shuffled chunks) or
        "energy_points" (calosim.data.dataset.energy_point_batches: point by point, where the data has a few
        discrete energies)."""
        return "shuffled"

    def file_attributes(self) -> dict:
        """Model-file attributes saying how the networks read their inputs (calosim.models.files)."""
        return {"conditioning": CONDITIONING}

    def trainer(self, rng: np.random.Generator) -> Trainer:
        return self.trainer_class(self, rng)

    # ------------------------------------------------------------------ sampling
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def n_classes(self) -> int:
        """How many classes the model is conditioned on (1: none; two-class models override)."""
        return 1

    def condition(self, energy_gev):
        """(N, 1) conditioning input for incident energies (N,) GeV (backend arrays)."""
        return energy_condition(energy_gev, self.energy_range, self.backend.xp)

    def sample_latent(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Latent vectors (n, Z) (standard normal)."""
        return rng.standard_normal((n, self.latent_dim))

    def sample_labels(self, rng: np.random.Generator, n: int):
        """Class labels (n,) drawn uniformly over the classes; None for one-class models (no draw)."""
        return rng.integers(0, self.n_classes, size=n) if self.n_classes > 1 else None

    def sample(self, energy_gev, rng: np.random.Generator, labels=None) -> list:
        """The sampling path every caller uses: showers [(N, R_l, C_l)] MeV (backend arrays) at incident
        energies (N,) GeV, inference mode. Draws z (N, Z) from ``rng``, then (two-class models, no ``labels``
        given) the labels, then (with an energy model) the layer energies each layer is rescaled to, then (with
        ``sampling_mirror_axes``) the reflections; the calibration steps, where fitted, draw nothing."""
        energy = np.asarray(energy_gev, np.float64)
        z = self.sample_latent(rng, len(energy))
        if labels is None:
            labels = self.sample_labels(rng, len(energy))
        be = self.backend
        layers = self.generate(be.asarray(z), be.asarray(energy), labels=labels, training=False)
        layers = self.apply_energy_model(self.apply_profile_spread(layers, energy), energy, rng)
        return self.apply_mirror(self.apply_cell_calibration(layers, energy), rng)

    def apply_profile_spread(self, layers: list, energy_gev) -> list:
        """The step of :meth:`sample` after :meth:`generate`: with fitted profile-spread values
        (calosim.models.spread), each layer's profile slope and residuals rescaled; without them, the layers as
        they are. Draws nothing."""
        from calosim.models import spread
        from calosim.models.calibration import hat_weights

        if spread.CENTRE_KEY not in self.fitted:
            return layers
        be = self.backend
        condition = self.condition(be.asarray(np.asarray(energy_gev, np.float64)))
        weights = hat_weights(condition, self.fitted[spread.CENTRE_KEY].shape[0], be.xp)
        return [x.astype(layer.dtype) for x, layer in
                zip(spread.apply_spread(layers, self.fitted, weights, self.geometry, be.xp), layers)]

    def apply_cell_calibration(self, layers: list, energy_gev) -> list:
        """The step of :meth:`sample` after the energy model (the cells in the MeV they are sampled in): with
        fitted values, the low-tail map of the cell spectrum (calosim.models.spectrum_tail), then every cell
        times its factor at the shower's energy and each layer scaled back to its sum
        (calosim.models.calibration); without them, the layers as they are. Draws nothing."""
        from calosim.models import spectrum_tail
        from calosim.models.calibration import FITTED_KEY, apply_factors

        be = self.backend
        if spectrum_tail.KEY in self.fitted:
            layers = spectrum_tail.apply_tail(layers, self.fitted[spectrum_tail.KEY], self.geometry, be.xp)
        if FITTED_KEY not in self.fitted:
            return layers
        condition = self.condition(be.asarray(np.asarray(energy_gev, np.float64)))
        return apply_factors(layers, be.asarray(self.fitted[FITTED_KEY]), condition, self.geometry, be.xp)

    @property
    def draws_layer_energies(self) -> bool:
        """Whether :meth:`apply_energy_model` draws (an energy model and no fitted energy map)."""
        from calosim.models import energy_map

        return self.energy_model is not None and energy_map.KEY not in self.fitted

    @property
    def ranks_energy_model(self) -> bool:
        """Whether the energy map reads the shares off the energy model's conditionals (an energy model and a map
        fitted with its whitening; a map without one, as fitted before, mixes the shares in normal scores)."""
        from calosim.models import energy_map

        return self.energy_model is not None and energy_map.WHITENING_KEY in self.fitted

    def apply_energy_model(self, layers: list, energy_gev, rng: np.random.Generator) -> list:
        """The step of :meth:`sample` after the profile spread: with a fitted energy map
        (calosim.models.energy_map), the layers [(N, R_l, C_l)] MeV rescaled to :meth:`mapped_layer_energies`
        (no draws); else with an energy model, rescaled to the layer energies it draws from
        ``rng`` at incident energies (N,) GeV (per layer one ``rng.random(N)`` and one ``rng.standard_normal(N)``);
        without either, the layers as they are."""
        from calosim.models import energy_map
        from calosim.models.energy import rescale_layers

        energy = np.asarray(energy_gev, np.float64)
        xp = self.backend.xp
        if energy_map.KEY in self.fitted:
            return rescale_layers(layers, self.mapped_layer_energies(layers, energy), xp)
        if self.energy_model is None:
            return layers
        from calosim.models.calibration import RESPONSE_KEY, response_factors

        energies = self.energy_model.sample(energy, rng)
        if RESPONSE_KEY in self.fitted:
            condition = energy_condition(energy, self.energy_range, np)
            energies = energies * response_factors(self.fitted[RESPONSE_KEY], condition, np)
        return rescale_layers(layers, energies, xp)

    def mapped_layer_energies(self, layers: list, energy_gev) -> np.ndarray:
        """(N, L) MeV float64: the energy map's layer energies for layers [(N, R_l, C_l)] MeV at incident energies
        (N,) GeV (calosim.models.energy_map): with an energy model (:attr:`ranks_energy_model`), the response
        mapped onto the training showers' and the shares read off its conditionals at the layers' own ranks;
        without one, every variable mapped onto the training showers' and mixed to their correlations."""
        from calosim.models import energy_map

        be = self.backend
        energy = np.asarray(energy_gev, np.float64)
        sums = [np.asarray(be.to_numpy(s), np.float64) for s in energy_map.layer_sums(layers, self.geometry)]

        def forward(net, x):
            return np.asarray(be.to_numpy(net.forward(be.asarray(x), False)), np.float64)

        def energies_of(t):
            return energy_map.columns(self.energy_model.layer_energies(np.concatenate(t, axis=1), energy))

        return np.concatenate(self.energy_map_energies(sums, energy.reshape(-1, 1), energy_condition(
            energy, self.energy_range, np), np, np.matmul, forward, energies_of), axis=1)

    def energy_map_energies(self, sums: list, energy, condition, xp, matmul, forward, energies_of) -> list:
        """[E_l (N, 1)] MeV of the energy map (:meth:`mapped_layer_energies`) for the layer sums [(N, 1)] MeV,
        incident energies (N, 1) GeV and their conditions (N, 1), in ``xp`` (numpy or an ONNX graph) with
        ``matmul``; with an energy model ``forward(net, x)`` runs its networks and ``energies_of(t)`` turns its
        variables into layer energies [(N, 1)], which are then rescaled to the mapped response."""
        from calosim.models import energy_map
        from calosim.models.calibration import hat_weights

        weights = hat_weights(condition, self.fitted[energy_map.KEY].shape[2], xp)
        energy_mev = energy * 1000.0
        if not self.ranks_energy_model:
            return energy_map.mapped_energies(sums, self.fitted, weights, energy_mev, xp, matmul)
        response, scores = energy_map.ranked_inputs(sums, self.fitted, weights, energy_mev, xp, matmul)
        energies = energies_of(self.energy_model.ranked_variables(response, scores, condition, xp, forward))
        total = xp.concatenate(energies, axis=1).sum(axis=1, keepdims=True)
        return [x * (response * energy_mev / xp.maximum(total, 1e-30)) for x in energies]

    def set_sampling_mirror_axes(self, axes) -> None:
        """Reflect sampled showers along ``axes`` (0 rows, 1 columns); ModelError unless the geometry is mirror
        symmetric under each."""
        axes = tuple(sorted({int(a) for a in axes}))
        symmetric = self.geometry.mirror_axes()
        if any(a not in symmetric for a in axes):
            raise ConfigError(f"sampling mirror axes {list(axes)}: the geometry {self.geometry.name!r} is mirror "
                              f"symmetric under {list(symmetric)} only")
        self.sampling_mirror_axes = axes

    def apply_mirror(self, layers: list, rng: np.random.Generator) -> list:
        """The last step of :meth:`sample`: each shower [(N, R_l, C_l)] reflected along each of
        ``sampling_mirror_axes`` with probability 1/2, the same reflection in every layer (per axis one
        ``rng.random(N)``, reflected where below 1/2); without axes, the layers as they are."""
        if not self.sampling_mirror_axes:
            return layers
        xp = self.backend.xp
        for axis in self.sampling_mirror_axes:
            flip = self.backend.asarray(rng.random(len(layers[0])) < 0.5).reshape(-1, 1, 1)
            layers = [xp.where(flip, xp.flip(x, axis=axis + 1), x) for x in layers]
        return layers

    def generate(self, z, energy, labels=None, training: bool = False) -> list:
        raise NotImplementedError

    def freeze(self):
        """Prepare for sampling only (no more training); returns the model."""
        return self

    def export_onnx(self, graph) -> None:
        """Build :meth:`generate`'s inference path on ``graph`` (calosim.export.graph.Graph, which stands in for
        the array module): inputs z (N, Z) and energy (N,) GeV (``graph.latent``, ``graph.energy``), class labels
        for two-class models, and the uniform numbers of any Bernoulli draw (``graph.uniforms``; :meth:`generate`
        then takes an ``rng`` and draws them as one ``rng.random(shape, dtype)`` per such input, in order);
        outputs the cells per layer in MeV (``graph.showers``). Called after :meth:`freeze`."""
        raise ExportError(f"model type {self.model_type!r} has no ONNX export")

    def export_sampling_onnx(self, graph) -> None:
        """:meth:`sample` after its latent and class draws, on an ONNX graph: :meth:`export_onnx`, and with an
        energy model its draws as inputs (energy_uniform, energy_normal (N, L)) and every layer rescaled to
        the layer energies, as :meth:`apply_energy_model` does. Called after :meth:`freeze`."""
        from calosim.models import energy_map, spectrum_tail, spread
        from calosim.models.calibration import FITTED_KEY, export_factors, hat_weights

        calibrated = any(key in self.fitted for key in (FITTED_KEY, spread.CENTRE_KEY, spectrum_tail.KEY,
                                                        energy_map.KEY))
        if self.energy_model is None and not self.sampling_mirror_axes and not calibrated:
            self.export_onnx(graph)
            return
        with graph.held_showers() as layers:
            self.export_onnx(graph)
        if spread.CENTRE_KEY in self.fitted:
            c = energy_condition(graph.energy(), self.energy_range, graph)
            weights = hat_weights(c, self.fitted[spread.CENTRE_KEY].shape[0], graph)
            layers = spread.apply_spread(layers, self.fitted, weights, self.geometry, graph,
                                         matmul=lambda w, table: graph.matmul(w, np.asarray(table, np.float32)))
        if energy_map.KEY in self.fitted:
            from calosim.models.energy import export_rescale_layers

            energies = self.energy_map_energies(
                energy_map.layer_sums(layers, self.geometry), graph.energy(),
                energy_condition(graph.energy(), self.energy_range, graph), graph, graph.matmul, graph.layer,
                lambda t: self.energy_model.export_layer_energies(t, graph.energy(), graph))
            layers = export_rescale_layers(layers, energies, graph)
        elif self.energy_model is not None:
            from calosim.models.calibration import RESPONSE_KEY, response_factors
            from calosim.models.energy import export_rescale_layers

            energies = self.energy_model.export_onnx(graph, graph.energy())
            if RESPONSE_KEY in self.fitted:
                g = response_factors(self.fitted[RESPONSE_KEY], energy_condition(graph.energy(), self.energy_range,
                                                                                  graph), graph)
                energies = [e * g for e in energies]
            layers = export_rescale_layers(layers, energies, graph)
        if spectrum_tail.KEY in self.fitted:
            layers = spectrum_tail.apply_tail(layers, self.fitted[spectrum_tail.KEY], self.geometry, graph)
        if FITTED_KEY in self.fitted:
            layers = export_factors(layers, self.fitted[FITTED_KEY], graph.energy(), self.energy_range, self.geometry,
                                    graph)
        if self.sampling_mirror_axes:
            layers = self.export_mirror(layers, graph)
        graph.showers(self.geometry, layers)

    def export_mirror(self, layers: list, graph) -> list:
        """:meth:`apply_mirror` on an ONNX graph: input mirror_uniform (N, A), column k the draws of the k-th of
        ``sampling_mirror_axes``."""
        axes = self.sampling_mirror_axes
        u = graph.uniforms(MIRROR_UNIFORM, len(axes), "shower n is reflected along sampling mirror axis k (0 "
                           "rows, 1 columns) where u_nk < 0.5")
        out = []
        for value, layer in zip(layers, self.geometry.layers):
            flat = value.reshape(-1, layer.shape[0] * layer.shape[1])
            for k, axis in enumerate(axes):
                order = np.flip(np.arange(flat.size).reshape(layer.shape), axis=axis).reshape(-1)
                flat = graph.where(u[:, k:k + 1] < 0.5, graph.gather(flat, order), flat)
            out.append(flat.reshape(-1, *layer.shape))
        return out

    def sampling_flops(self, batch: int) -> int:
        """FLOPs of the products one :meth:`sample` call of ``batch`` showers executes."""
        return self.networks()[self.sampling_network].flops(batch)

    def sampling_gemm_shapes(self, batch: int) -> list:
        """Those products as (count, M, K, N)."""
        return self.networks()[self.sampling_network].gemm_shapes(batch)

    def nominal_sampling_flops(self, batch: int) -> int:
        """The model's nominal FLOPs per ``batch`` showers (its layers unfolded)."""
        return self.sampling_flops(batch)
