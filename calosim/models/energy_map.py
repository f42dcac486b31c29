"""Energy map: the shape model's own layer energies, mapped variable by variable onto the training showers'
distributions at the shower's incident energy (a calibration step of sampling, for any model type: after the
profile spread, in place of the energy model's draws, and before the low-tail map and the cell factors).

A shape model rescaled to layer energies drawn independently of it loses the link between a layer's energy and
its shape: a gamma that converts late leaves a layer 0 of a few sporadic hits and little energy, one that
converts early a broad layer 0 with much. Rescaled to draws, the Geant4 gamma showers themselves (each given the
layer energies of its neighbour in incident energy) are told from untouched ones with a low-level classifier AUC
of 0.69 (0.51 untouched, 5,000 showers each). The decoder's layer energies go with its shapes but are too broad
(the VAE's response spread is ten times Geant4's). So each shower keeps its rank and takes the data's value:

    v_0 = log(E_tot / E_inc)                           the response
    v_m = log(E_m) - log(E_{m+1} + ... + E_{L-1})      the share of layer m in what remains (m < L - 1), both
                                                       floored at FLOOR MeV (an empty layer sits at the floor)
    D_b,k, T_b,k   the model's and the data's quantiles of v at the levels LEVELS, weighted by the hat weights
                   w_b of centre b (calibration.hat_weights)
    v' = T_0(c) + sum_k (T_k+1(c) - T_k(c)) clip((v - D_k(c)) / (D_k+1(c) - D_k(c)), 0, 1)
                                                       D(c) = sum_b w_b(c) D_b (likewise T): piecewise linear
                                                       through the knots, held at the data's ends beyond them

so that every variable keeps the decoder's order among showers (learned with the shapes) and takes the data's
distribution at the shower's energy, the response included. Mapped one by one, the variables would keep the
decoder's correlations among them, which are not Geant4's (pi+: rank correlation of response and layer-2 share
0.05 against 0.53; the layer-0 energy's separation power went from 0.06 to 0.19-0.24). So between the two halves
of the map the variables are mixed in normal scores:

    z_l = the map of v_l onto SCORES (the standard normal quantiles of LEVELS) instead of T
    z' = M(c) z,  M_b = L^data_b (L^model_b)^-1       L_b the lower Cholesky factor of the correlation of the
                                                     scores at centre b
    v'_l = the map of z'_l from SCORES onto T_l(c)

which gives the scores the data's correlations (a Gaussian copula) and leaves the response's score as it is
(M is lower triangular), so that its distribution stays the data's: a symmetric M = C^data^(1/2) C^model^(-1/2)
mixed the shares into it and moved the pi+ mean response by -0.7% on the training showers.

That copula cannot hold every relation among the variables: a pion crossing layer 0 as a MIP leaves about 50
MeV there whatever its total, and with the copula the pi+ layer-0 energy's separation power stayed at 0.21-0.24.
So a model with an energy model (calosim.models.energy) takes only the response from the map and reads its shares
off the energy model's conditionals, whose autoregressive mixtures hold such relations, at the model's own ranks:

    z^w = W(c) z,  W_b = (L^model_b)^-1               the model's scores whitened: z^w_l is the rank of v_l given
                                                     the variables before it (W lower triangular, z^w_0 = z_0)
    t_0 = the energy model's variable of the mapped response
    t_l = F_l^-1(Phi(z^w_l) | c, t_<l)                the quantile of its conditional mixture, l >= 1 (bisection,
                                                     calosim.losses.gaussian_mixture_quantile)

On 700 validation pi+ the layer-0 energy's separation went back to 0.02-0.05 (0.03-0.06 with the energy model's
independent draws), and gamma's low-level AUC stayed as low as with the copula.

The layers are then rescaled to the layer energies (energy.rescale_layers: an empty layer stays empty). The map
draws nothing, so that sampling with it uses none of the energy model's draws. Stored as the fitted values
energy_map (L, 2, B, K), the knots D and targets T per variable, energy_map_mixing (B, L, L) and
energy_map_whitening (B, L, L); a model without them samples with its energy model's draws.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

KEY = "energy_map"
MIXING_KEY = "energy_map_mixing"
WHITENING_KEY = "energy_map_whitening"
KEYS = (KEY, MIXING_KEY, WHITENING_KEY)
CENTRES = 8  # hat functions over the conditioning range: B
LEVELS = np.concatenate([[0.0, 0.002, 0.01, 0.03, 0.06], np.linspace(0.1, 0.9, 17), [0.94, 0.97, 0.99, 0.998, 1.0]])
FLOOR = 1e-6  # MeV: the floor of a layer energy in the variables (an empty layer)
LIMIT = 60.0  # |v| of a share: exp(60) stays finite in float32
SCORES = np.array([NormalDist().inv_cdf(q) for q in np.clip(LEVELS, 5e-4, 1 - 5e-4)])  # normal scores of LEVELS
RANK_CLIP = 4.75  # |z| of the ranks read off the energy model's conditionals: Phi(-4.75) = 1e-6
STEP = 1e-4  # the least knot spacing, of the knots' range (at least 1): float32 resolves it


def variables(sums: list, energy_mev, xp) -> list:
    """[v_0 .. v_{L-1}], each (N, 1), of the layer sums [(N, 1)] MeV and incident energies (N, 1) MeV (module
    docstring); ``xp`` numpy, cupy or an ONNX graph."""
    floored = [xp.maximum(s, FLOOR) for s in sums]
    total = sums[0]
    for s in sums[1:]:
        total = total + s
    out = [xp.log(xp.maximum(total, FLOOR) / energy_mev)]
    rest = floored[-1]
    shares = []
    for m in range(len(sums) - 2, -1, -1):
        shares.append(xp.log(floored[m]) - xp.log(rest))
        rest = rest + floored[m]
    return out + shares[::-1]


def layer_energies(v: list, energy_mev, xp) -> list:
    """[E_l (N, 1)] MeV of the variables [v_0 .. v_{L-1}] (the inverse of :func:`variables` above the floor):
    E_m = E_tot sigmoid(v_m) prod_{j<m} sigmoid(-v_j), the last layer what remains."""
    remaining = xp.exp(v[0]) * energy_mev
    out = []
    for share in v[1:]:
        share = xp.minimum(xp.maximum(share, -LIMIT), LIMIT)
        out.append(remaining / (1.0 + xp.exp(-share)))
        remaining = remaining / (1.0 + xp.exp(share))  # not remaining - E_m: no cancellation when E_m takes nearly all
    return out + [remaining]


def weighted_quantiles(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, K) quantiles at LEVELS of values (N,) under each column of weights (N, B), strictly increasing in k."""
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    out = []
    for w in weights.T:
        keep = w > 0
        cumulative = np.cumsum(w[keep])
        position = (cumulative - 0.5 * w[keep]) / cumulative[-1]
        q = np.interp(LEVELS, position, values[keep])
        step = STEP * max(float(q[-1] - q[0]), 1.0)  # ties (an empty layer's floor) spread over a resolvable ramp
        out.append(q[0] + np.maximum.accumulate(q - q[0] - step * np.arange(len(q))) + step * np.arange(len(q)))
    return np.stack(out)


def fit_map(data_sums: np.ndarray, model_sums: np.ndarray, energy_gev, weights: np.ndarray) -> dict:
    """The fitted values {KEY: (L, 2, B, K) knots and targets, MIXING_KEY and WHITENING_KEY: (B, L, L)} from the
    layer sums (N, L) MeV of the training showers and of the model's samples at the same incident energies (N,)
    GeV, and the hat weights (N, B) of those energies."""
    energy_mev = 1000.0 * np.asarray(energy_gev, np.float64)[:, None]
    data = variables(columns(data_sums), energy_mev, np)
    model = variables(columns(model_sums), energy_mev, np)
    table = np.stack([np.stack([weighted_quantiles(m[:, 0], weights), weighted_quantiles(d[:, 0], weights)])
                      for d, m in zip(data, model)])
    scores = score_table(weights.shape[1])

    def correlations(values, side):
        z = np.concatenate([mapped(v, table[i, side], scores, weights, np, np.matmul)
                            for i, v in enumerate(values)], axis=1)
        return np.stack([weighted_correlation(z, w) for w in weights.T])

    whitening = np.stack([np.linalg.inv(cholesky(m)) for m in correlations(model, 0)])
    mixing = np.stack([cholesky(t) @ w for t, w in zip(correlations(data, 1), whitening)])
    return {KEY: table, MIXING_KEY: mixing, WHITENING_KEY: whitening}


def weighted_correlation(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(F, F) correlation of the columns of z (N, F) under weights w (N,)."""
    centred = z - (w @ z) / w.sum()
    covariance = (centred * w[:, None]).T @ centred / w.sum()
    scale = np.sqrt(np.maximum(np.diag(covariance), 1e-12))
    return covariance / np.outer(scale, scale)


def cholesky(correlation: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of a correlation matrix, its eigenvalues floored at 1e-6 (a constant variable)."""
    values, vectors = np.linalg.eigh(correlation)
    return np.linalg.cholesky((vectors * np.maximum(values, 1e-6)) @ vectors.T)


def columns(sums) -> list:
    """[(N, 1)] float64: the columns of layer sums (N, L)."""
    sums = np.asarray(sums, np.float64)
    return [sums[:, [layer]] for layer in range(sums.shape[1])]


def mapped(v, knots: np.ndarray, targets: np.ndarray, weights, xp, matmul):
    """v' (N, 1) of a variable v (N, 1) through the piecewise-linear map of knots (B, K) onto targets (B, K) at
    hat weights (N, B); ``matmul(w, M)`` the product of the weights with a constant (B, J) matrix."""
    knots, targets = np.asarray(knots, np.float64), np.asarray(targets, np.float64)
    lower = matmul(weights, knots[:, :-1])
    width = matmul(weights, np.diff(knots, axis=1))
    steps = matmul(weights, np.diff(targets, axis=1))
    start = matmul(weights, targets[:, :1])
    ramps = xp.minimum(xp.maximum((v - lower) / width, 0.0), 1.0)
    return start + (ramps * steps).sum(axis=1, keepdims=True)


def layer_sums(layers: list, geometry) -> list:
    """[(N, 1)] the sum of each layer [(N, R_l, C_l)]."""
    return [x.reshape(-1, layer.n_cells).sum(axis=1, keepdims=True) for x, layer in zip(layers, geometry.layers)]


def score_table(n_centres: int) -> np.ndarray:
    """(B, K) SCORES at every centre: the one side of a map onto (or from) normal scores."""
    return np.tile(SCORES, (n_centres, 1))


def normal_scores(sums: list, fitted: dict, weights, energy_mev, xp, matmul) -> list:
    """[z_l (N, 1)]: the variables of the layer sums [(N, 1)] MeV mapped onto SCORES (module docstring)."""
    table = fitted[KEY]
    scores = score_table(table.shape[2])
    return [mapped(v, table[i, 0], scores, weights, xp, matmul) for i, v in enumerate(variables(sums, energy_mev, xp))]


def mixed(z: list, matrices: np.ndarray, weights, matmul) -> list:
    """[z'_l (N, 1)]: z' = M(c) z, M(c) = sum_b w_b(c) M_b of the matrices (B, L, L)."""
    out = []
    for row in range(len(z)):
        total = None
        for col, value in enumerate(z):
            if np.all(matrices[:, row, col] == 0.0):
                continue  # above the diagonal of a lower-triangular M
            term = matmul(weights, matrices[:, row, col:col + 1]) * value
            total = term if total is None else total + term
        out.append(total)
    return out


def mapped_energies(sums: list, fitted: dict, weights, energy_mev, xp, matmul) -> list:
    """[E_l (N, 1)] MeV: the layer sums [(N, 1)] MeV through the map (module docstring)."""
    table = fitted[KEY]
    scores = score_table(table.shape[2])
    z = mixed(normal_scores(sums, fitted, weights, energy_mev, xp, matmul), fitted[MIXING_KEY], weights, matmul)
    return layer_energies([mapped(x, scores, table[i, 1], weights, xp, matmul) for i, x in enumerate(z)],
                          energy_mev, xp)


def ranked_inputs(sums: list, fitted: dict, weights, energy_mev, xp, matmul):
    """With an energy model: the response r (N, 1) mapped onto the training showers' and the normal scores
    [z_1 .. z_{L-1}] (N, 1) of the shares: the model's own ranks, each given the variables before it (its scores
    whitened, lower triangular), at which the energy model's conditionals are read
    (energy.LayerEnergyModel.ranked_variables)."""
    table = fitted[KEY]
    scores = score_table(table.shape[2])
    z = mixed(normal_scores(sums, fitted, weights, energy_mev, xp, matmul), fitted[WHITENING_KEY], weights, matmul)
    response = xp.exp(mapped(z[0], scores, table[0, 1], weights, xp, matmul))
    return response, [xp.minimum(xp.maximum(x, -RANK_CLIP), RANK_CLIP) for x in z[1:]]
