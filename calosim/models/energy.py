"""A conditional model of the layer energies given the incident energy: the first half of an energy
factorisation, in which shape models generate the layers and are rescaled to these energies at sampling.

The L layer energies are written as L variables that an unconstrained density can model:
    v_0 = log(r / (r_cap - r))               the response r = E_tot / E_inc (both MeV), below r_cap
    v_l = logit(s_{l-1}), l = 1 .. L-1        stick breaking: s_m = E_m / (E_m + ... + E_{L-1}), clipped to
                                              [delta, 1 - delta]; the last layer takes what remains
so the response, whose core Geant4 keeps within a few per mille for e+, is one variable of its own rather than
a sum of errors, and every layer energy is >= 0 with the sum exact. An empty layer is s at a clip bound, a point
the mixture covers with a narrow component; draws within 2 delta of a bound are snapped to it.
Condition c = log(E / E_min) / log(E_max / E_min) (calosim.models.units). p(v | c) = prod_l p(v_l | c, v_<l),
each factor a K-component Gaussian mixture (calosim.losses.gaussian_mixture_nll) of standardised v (mean and
std fitted to the training data) whose parameters a small network of calosim's layers computes:

    [c, v_<l] -> Dense(hidden) -> LeakyReLU -> Dense(hidden) -> LeakyReLU -> Dense(3 K)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calosim.layers import Dense, LeakyReLU, Sequential
from calosim.losses import (
    export_sample_gaussian_mixture,
    gaussian_mixture_nll,
    gaussian_mixture_quantile,
    sample_gaussian_mixture,
)
from calosim.models.base import check_finite
from calosim.models.config_groups import Group
from calosim.models.units import energy_condition
from calosim.optim import Adam

# the graph inputs of the draws of LayerEnergyModel.sample (LayerEnergyModel.export_onnx): column l is layer l's
ENERGY_UNIFORM = "energy_uniform"  # (N, L) uniforms: which mixture component
ENERGY_NORMAL = "energy_normal"  # (N, L) standard normals: where in it
UNBOUNDED = 50.0  # the bisection bracket of a standardised variable without a fitted range


@dataclass(frozen=True)
class LayerEnergyConfig(Group):
    """The layer-energy model's size and training."""

    label = "energy_model"
    hidden: int = 64
    components: int = 8
    delta: float = 1e-6  # the clip of the stick-breaking fractions
    response_cap: float = 1.02  # r < r_cap (a positron's annihilation photons add 1 MeV to its deposit)
    lr: float = 2e-3

    def __post_init__(self):
        self._require(self.hidden >= 1 and self.components >= 1 and 0 < self.delta < 0.01 and self.lr > 0
                      and self.response_cap > 1, "hidden >= 1, components >= 1, 0 < delta < 0.01, lr > 0, "
                      "response_cap > 1")


class LayerEnergyModel:
    """p(E_0 .. E_{L-1} | E_inc) (see the module docstring); ``networks()`` are what a model file stores."""

    def __init__(self, config: LayerEnergyConfig, n_layers: int, backend, energy_range, t_mean=None, t_std=None,
                 t_low=None, t_high=None):
        self.config, self.n_layers, self.backend = config, int(n_layers), backend
        self.energy_range = (float(energy_range[0]), float(energy_range[1]))
        # the networks see standardised targets (t - mean) / std: fitted from the training data, see fit_scales
        self.t_mean = np.zeros(n_layers) if t_mean is None else np.asarray(t_mean, np.float64)
        self.t_std = np.ones(n_layers) if t_std is None else np.asarray(t_std, np.float64)
        # the range of the standardised targets in the training data: sampled variables are clipped to it, so a
        # mixture's far tail never gives a shower the data never had (an e+ with almost no energy); None: no clip
        self.t_low = None if t_low is None else np.asarray(t_low, np.float64)
        self.t_high = None if t_high is None else np.asarray(t_high, np.float64)
        self.nets: list[Sequential] = []

    def fit_scales(self, layer_sums_mev, energy_gev) -> None:
        """Set the standardisation of the targets from (a sample of) the training showers."""
        t = self.targets(layer_sums_mev, energy_gev, standardised=False)
        self.t_mean, self.t_std = t.mean(axis=0), np.maximum(t.std(axis=0), 1e-3)
        self.fit_bounds(layer_sums_mev, energy_gev)

    def fit_bounds(self, layer_sums_mev, energy_gev) -> None:
        """Set the range the sampled variables are clipped to: that of the training showers' targets."""
        t = self.targets(layer_sums_mev, energy_gev)
        self.t_low, self.t_high = t.min(axis=0), t.max(axis=0)

    @classmethod
    def build(cls, config: LayerEnergyConfig, n_layers: int, backend, rng: np.random.Generator,
              energy_range=(1.0, 100.0), t_mean=None, t_std=None, t_low=None, t_high=None) -> LayerEnergyModel:
        model = cls(config, n_layers, backend, energy_range, t_mean, t_std, t_low, t_high)
        h = config.hidden
        for layer in range(model.n_layers):
            net = Sequential([Dense(h, kernel_init="he_uniform"), LeakyReLU(0.2), Dense(h, kernel_init="he_uniform"),
                              LeakyReLU(0.2), Dense(3 * config.components)], name=f"energy{layer}")
            net.build((1 + layer,), backend, rng)
            net.layers[0].input_grad = False  # its input is data: no gradient needed
            model.nets.append(net)
        return model

    def networks(self) -> dict:
        return {net.name: net for net in self.nets}

    def parameters(self):
        return [p for net in self.nets for p in net.parameters()]

    # ------------------------------------------------------------------ units
    def targets(self, layer_sums_mev, energy_gev, standardised: bool = True) -> np.ndarray:
        """v (N, L) float64 from the layer sums (N, L) MeV and E (N,) GeV (standardised: as the networks see
        them)."""
        sums = np.maximum(np.asarray(layer_sums_mev, np.float64), 0.0)
        cfg = self.config
        r = np.clip(sums.sum(axis=1) / (1000.0 * np.asarray(energy_gev, np.float64)), 1e-6, cfg.response_cap - 1e-6)
        v = [np.log(r / (cfg.response_cap - r))]
        remaining = sums[:, ::-1].cumsum(axis=1)[:, ::-1]  # E_m + ... + E_{L-1}
        for m in range(self.n_layers - 1):
            share = np.where(remaining[:, m] > 0, sums[:, m] / np.maximum(remaining[:, m], 1e-30), 0.0)
            share = np.clip(share, cfg.delta, 1.0 - cfg.delta)
            v.append(np.log(share / (1.0 - share)))
        v = np.stack(v, axis=1)
        return (v - self.t_mean) / self.t_std if standardised else v

    def layer_energies(self, v_standardised, energy_gev) -> np.ndarray:
        """E_l (N, L) MeV of standardised variables v (the inverse of :meth:`targets`)."""
        cfg = self.config
        v = np.asarray(v_standardised, np.float64) * self.t_std + self.t_mean
        remaining = cfg.response_cap / (1.0 + np.exp(-v[:, 0])) * 1000.0 * np.asarray(energy_gev, np.float64)
        out = np.zeros((len(v), self.n_layers))
        for m in range(self.n_layers - 1):
            share = 1.0 / (1.0 + np.exp(-v[:, m + 1]))
            share = np.where(share < 2 * cfg.delta, 0.0, np.where(share > 1.0 - 2 * cfg.delta, 1.0, share))
            out[:, m] = remaining * share
            remaining = remaining - out[:, m]
        out[:, -1] = remaining
        return out

    def _inputs(self, c, t, layer: int):
        return c if layer == 0 else self.backend.xp.concatenate([c, t[:, :layer]], axis=1)

    # ------------------------------------------------------------------ training and sampling
    def loss_and_backward(self, t, energy_gev) -> list[float]:
        """Per-layer NLLs (batch means) of targets t (N, L) at E (N,) GeV; every network's gradients are set."""
        be = self.backend
        t = be.asarray(np.asarray(t, np.float64))
        c = energy_condition(be.asarray(np.asarray(energy_gev, np.float64)), self.energy_range, be.xp)
        losses = []
        for layer, net in enumerate(self.nets):
            out = net.forward(self._inputs(c, t, layer), True)
            loss, d_out = gaussian_mixture_nll(out, t[:, layer], be.xp)
            net.backward(d_out)
            losses.append(loss)
        return losses

    def sample(self, energy_gev, rng: np.random.Generator) -> np.ndarray:
        """Layer energies (N, L) MeV (NumPy) at incident energies (N,) GeV; per layer one uniform and one normal
        draw per shower from ``rng``."""
        be = self.backend
        energy = np.asarray(energy_gev, np.float64)
        n = len(energy)
        c = energy_condition(be.asarray(energy), self.energy_range, be.xp)
        t = be.xp.zeros((n, self.n_layers), dtype=c.dtype)
        for layer, net in enumerate(self.nets):
            out = net.forward(self._inputs(c, t, layer), False)
            u, eps = be.asarray(rng.random(n)), be.asarray(rng.standard_normal(n))
            t[:, layer] = sample_gaussian_mixture(out, u, eps, be.xp)
            if self.t_low is not None:
                t[:, layer] = be.xp.clip(t[:, layer], float(self.t_low[layer]), float(self.t_high[layer]))
        return self.layer_energies(be.to_numpy(t), energy)

    def ranked_variables(self, response, scores: list, c, xp, forward) -> list:
        """Standardised variables [t_0 .. t_{L-1}], each (N, 1), whose response is given and whose shares are
        the quantiles of this model's conditionals p(t_l | c, t_<l) at Phi of ``scores`` [z_1 .. z_{L-1}] (N, 1)
        (calosim.models.energy_map: the shape model's own ranks as normal scores): the response r = E_tot / E_inc
        (N, 1), c the condition (N, 1); ``forward(net, x)`` a network's inference pass in ``xp`` (numpy, cupy or an ONNX
        graph). Every variable is held to the training showers' range, as :meth:`sample` holds its draws; the
        layer energies of these variables are rescaled to the given response by the caller."""
        cap = self.config.response_cap
        low = self.t_low if self.t_low is not None else np.full(self.n_layers, -UNBOUNDED)
        high = self.t_high if self.t_high is not None else np.full(self.n_layers, UNBOUNDED)
        # the response held to the training range in r, and at least 1e-3 of the cap below it: near the cap
        # log(r / (cap - r)) would turn float32's rounding of r into a different t_0, and so different shares
        r_low, r_high = (cap / (1.0 + np.exp(-(float(b) * self.t_std[0] + self.t_mean[0]))) for b in (low[0], high[0]))
        r = xp.minimum(xp.maximum(response, float(r_low)), float(min(r_high, cap * (1.0 - 1e-3))))
        t = [(xp.log(r / (cap - r)) - float(self.t_mean[0])) / float(self.t_std[0])]
        for layer in range(1, self.n_layers):
            out = forward(self.nets[layer], xp.concatenate([c, *t], axis=1))
            t.append(gaussian_mixture_quantile(out, scores[layer - 1], float(low[layer]), float(high[layer]), xp))
        return t

    # ------------------------------------------------------------------ ONNX export
    def export_onnx(self, graph, energy) -> list:
        """:meth:`sample` on an ONNX graph (calosim.export.graph.Graph) for the graph's incident energies (N, 1)
        GeV: the layer energies [E_l (N, 1) MeV], float32. Per layer the draws :meth:`sample` takes from its
        ``rng`` are column l of the inputs energy_uniform (N, L) and energy_normal (N, L)."""
        u = graph.uniforms(ENERGY_UNIFORM, self.n_layers, "column l picks layer l's mixture component of the "
                           "energy model (the first whose cumulative weight exceeds u)")
        eps = graph.normals(ENERGY_NORMAL, self.n_layers, "column l places layer l's energy variable within "
                            "its mixture component (mean + exp(log width) * eps)")
        c = energy_condition(energy, self.energy_range, graph)
        t = []
        for layer, net in enumerate(self.nets):
            out = graph.layer(net, graph.concatenate([c, *t], axis=1) if t else c)
            t.append(export_sample_gaussian_mixture(out, u[:, layer:layer + 1], eps[:, layer:layer + 1], graph))
            if self.t_low is not None:
                t[-1] = graph.minimum(graph.maximum(t[-1], float(self.t_low[layer])), float(self.t_high[layer]))
        return self.export_layer_energies(t, energy, graph)

    def export_layer_energies(self, t_standardised: list, energy, graph) -> list:
        """:meth:`layer_energies` on an ONNX graph, in float32: [E_l (N, 1) MeV] of the variables [t_l (N, 1)].
        Two changes keep float32 near calosim's float64: what remains after a layer is remaining * sigmoid(-v)
        rather than remaining - remaining * sigmoid(v) (no cancellation when a layer takes nearly all), and the
        snap of a share to 0 or 1 compares v with logit(2 delta) rather than the share with 2 delta (float32
        resolves a share near 1 to 6e-8, a few percent of the 2e-6 window; v it resolves to 1e-6)."""
        cfg = self.config
        v = [t * float(std) + float(mean) for t, std, mean in zip(t_standardised, self.t_std, self.t_mean)]
        remaining = cfg.response_cap / (1.0 + graph.exp(-v[0])) * 1000.0 * energy
        snap = float(np.log(2 * cfg.delta / (1.0 - 2 * cfg.delta)))  # share < 2 delta  <=>  v < snap
        out = []
        for v_m in v[1:]:
            empty, full = v_m < snap, v_m > -snap
            share = graph.where(empty, 0.0, graph.where(full, 1.0, 1.0 / (1.0 + graph.exp(-v_m))))
            rest = graph.where(empty, 1.0, graph.where(full, 0.0, 1.0 / (1.0 + graph.exp(v_m))))
            out.append(remaining * share)
            remaining = remaining * rest
        return [*out, remaining]


class LayerEnergyTrainer:
    """One Adam step of every network of a LayerEnergyModel per batch; reports the summed NLL as e_nll."""

    loss_names = ("e_nll",)

    def __init__(self, model: LayerEnergyModel):
        self.model = model
        self.optimizer = Adam(model.parameters(), model.config.lr, backend=model.backend)

    def train_step(self, layer_sums_mev, energy_gev) -> dict[str, float]:
        t = self.model.targets(layer_sums_mev, energy_gev)
        loss = float(sum(self.model.loss_and_backward(t, energy_gev)))
        check_finite(loss, "layer-energy")
        self.optimizer.step()
        return {"e_nll": loss}


def rescale_layers(layers, layer_energies_mev, xp) -> list:
    """Each layer (N, R, C) of a shape model scaled to sum to E_l (N, L) MeV. A layer the shape model left
    empty stays empty, and its energy goes to the shower's other layers in proportion to theirs, so that the
    response is the energy model's (a shower the shape model left entirely empty stays empty)."""
    n = layers[0].shape[0]
    totals = xp.stack([x.reshape(n, -1).sum(axis=1) for x in layers], axis=1)
    target = xp.asarray(layer_energies_mev, dtype=totals.dtype)
    occupied = totals > 0
    placed = (target * occupied).sum(axis=1, keepdims=True)
    share = xp.where(placed > 0, target.sum(axis=1, keepdims=True) / xp.maximum(placed, 1e-30), 0.0)
    # an empty layer's scale is discarded: dividing it by 1, not 1e-30, keeps it finite (no overflow warning)
    divisor = xp.where(occupied, xp.maximum(totals, 1e-30), 1.0)
    scale = xp.where(occupied, target * share / divisor, 0.0).astype(layers[0].dtype)
    return [x * scale[:, index].reshape(n, 1, 1) for index, x in enumerate(layers)]


def export_rescale_layers(layers: list, layer_energies_mev: list, graph) -> list:
    """:func:`rescale_layers` on an ONNX graph (calosim.export.graph.Graph): the layers [(N, R, C)] of a shape
    model scaled to the energies [E_l (N, 1)] MeV, with the same treatment of empty layers and showers."""
    totals = [x.reshape(-1, x.size).sum(axis=1, keepdims=True) for x in layers]
    occupied = [total > 0.0 for total in totals]
    placed = graph.concatenate([graph.where(o, e, 0.0) for o, e in zip(occupied, layer_energies_mev)], axis=1)
    placed = placed.sum(axis=1, keepdims=True)
    wanted = graph.concatenate(layer_energies_mev, axis=1).sum(axis=1, keepdims=True)
    share = graph.where(placed > 0.0, wanted / graph.maximum(placed, 1e-30), 0.0)
    return [x * graph.where(o, e * share / graph.where(o, graph.maximum(total, 1e-30), 1.0), 0.0)
            for x, o, e, total in zip(layers, occupied, layer_energies_mev, totals)]
