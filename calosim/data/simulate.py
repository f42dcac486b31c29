"""A fast parametric shower simulator for the CaloGAN calorimeter (GFlash / Grindhammer-Peters style).

For quick experiments, tests and scaling studies: thousands of showers per second in vectorised NumPy, and
tuned so that e+ and gamma showers match the Geant4 files of ../shared/data/geant4 in the mean energy fraction
and the mean lateral width of each layer. It is NOT a substitute for Geant4: see tune notes at the bottom.

Detector (reference section 1): 80 x (2 mm Pb + 4 mm LAr), z in [0, 480) mm from the front face; layer
boundaries at 90 and 437 mm (5.8 / 22.3 / 2.8 X0); the readout counts every deposit, absorber and gap, so an
e+ / gamma shower deposits ~0.99 of its energy. Material constants of the mix (thickness fractions 1/3 Pb,
2/3 LAr; Pb X0 5.612 mm, R_M 16.02 mm, Ec 7.43 MeV, lambda_I 175.9 mm; LAr X0 140.7 mm, R_M 90.4 mm,
Ec 32.84 MeV, lambda_I 857 mm):
    X0 = 15.6 mm, R_M = 35.5 mm, Ec = 9.3 MeV, lambda_I = 373 mm, Z_eff = 69 (by mass), MIP dE/dz 0.566 MeV/mm.

e+ / gamma:
- longitudinal: dE/dt = E beta^alpha t^(alpha-1) exp(-beta t) / Gamma(alpha), t in X0, with the GFlash
  parametrisation of the depth of the maximum T and of alpha as functions of y = E / Ec, and correlated
  Gaussian fluctuations of (ln T, ln alpha) (GFlash sigma and correlation formulae). Photons start their
  shower after an exponentially distributed conversion depth (mean 9/7 X0). Integrated on a 1 mm grid.
- transverse: in each layer the energy is spread as discrete spots (fixed energy per spot with Gamma-
  distributed weights) drawn from a core + tail + halo radial profile, each of the form
  F(r) = 1 - (1 + (r/R)^2)^(-g) (g = 1 is GFlash's 2 r R^2 / (r^2 + R^2)^2); the halo stands for the wide-angle
  photons of the shower. Spots outside the +-240 mm cells go to overflow.
pi+ (tuned on rows 0-1999 of geant4/piplus_train.h5; see calosim.evaluate.simulator_check):
- the first nuclear interaction at depth ~ Exp(380 mm) (about a quarter pass without one, as in Geant4); before
  it a MIP track of 0.69 MeV/mm (median; Moyal-fluctuated per layer), on the axis with a tiny offset (it sits on
  a cell boundary) plus 25% in delta-ray spots of a few mm; after it an EM component (f_em = 1 - (E / 1 GeV)^
  (k - 1), k = 0.82, Gaussian fluctuation 0.33) with the EM profile, and a hadronic component with a Gamma
  profile in lambda units seen with a visible fraction ~0.55 (non-compensation); what lies beyond 480 mm
  leaks. The hadronic part has wide per-layer lateral profiles, and a backsplash of slow particles
  (~1% of the visible hadronic energy, falling off with the distance from layer 0) spread widely over layer 0.
  Known shortfalls: the response distribution has too long an upper tail, sparsity_1/2 and E_ratio_0 differ.

Notation: N showers; energies in MeV inside, incident energy in GeV at the interface.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from calosim.data.showers import Showers
from calosim.errors import ConfigError
from calosim.geometry import Geometry, calogan_geometry

# material constants of the Pb / LAr mix (mm, MeV)
X0_MM = 15.6
MOLIERE_MM = 35.5
EC_MEV = 9.3
LAMBDA_MM = 373.0
Z_EFF = 69.0
MIP_MEV_PER_MM = 0.566
DEPTH_MM = 480.0
LAYER_EDGES_MM = (0.0, 90.0, 437.0, 480.0)
HALF_WIDTH_MM = 240.0

PARTICLES = {"eplus": "e+", "e+": "e+", "gamma": "gamma", "piplus": "pi+", "pi+": "pi+"}


@dataclass(frozen=True)
class Radial:
    """Per-layer transverse profile: fractions and radii (mm) of core, tail and halo; halo power g_halo."""

    r_core: tuple[float, float, float]
    r_tail: tuple[float, float, float]
    p_tail: tuple[float, float, float]
    r_halo: tuple[float, float, float]
    p_halo: tuple[float, float, float]
    g_halo: float = 0.5


# Tuned against rows 0-1999 of geant4/{eplus,gamma}_train.h5 (mean f_l and sigma_l per layer within 10%).
EM_RADIAL = Radial(r_core=(2.86, 9.0, 39.0), r_tail=(11.7, 22.0, 80.0), p_tail=(0.18, 0.30, 0.346),
                   r_halo=(60.0, 34.6, 60.0), p_halo=(0.02, 0.04, 0.50), g_halo=0.5)
HAD_RADIAL = Radial(r_core=(22.0, 40.0, 11.8), r_tail=(114.3, 157.0, 31.8), p_tail=(0.77, 0.88, 0.315),
                    r_halo=(135.2, 219.7, 71.0), p_halo=(0.078, 0.08, 0.077), g_halo=0.6)

# spot energies (MeV) per layer: they set the granularity (sparsity, E_ratio) and the shower-to-shower
# fluctuations of the lateral widths
EM_SPOT_MEV = (32.5, 32.5, 25.0)
HAD_SPOT_MEV = (78.0, 71.0, 60.0)
SPOT_SHAPE = 1.54  # Gamma shape of the spot weights
MAX_SPOTS_PER_LAYER = 4000
HALO_SPOT_MEV = 0.8  # at 10 GeV incident; scales as (E / 10 GeV)^HALO_SPOT_POWER
HALO_SPOT_POWER = 0.0
EM_ALBEDO = np.array([0.0022, 0.0, 0.0])  # fraction of the shower energy added to each halo


def simulate(particle: str, energies_gev: np.ndarray, rng: np.random.Generator,
             geometry: Geometry | None = None, batch_size: int = 1000,
             progress: Callable[[int], None] | None = None) -> Showers:
    """Simulate one shower per incident energy (GeV, shape (N,)) of ``particle`` ("eplus", "gamma", "piplus").

    Returns float32 Showers in MeV with overflow (N, 3). ``progress(n_done)`` is called after each batch.
    Deterministic for a given Generator state (and batch_size).
    """
    key = PARTICLES.get(particle)
    if key is None:
        raise ConfigError(f"unknown particle {particle!r}; choose eplus, gamma or piplus")
    geometry = geometry or calogan_geometry()
    if geometry.shapes != calogan_geometry().shapes:
        raise ConfigError("the built-in simulator knows only the CaloGAN geometry")
    e = np.asarray(energies_gev, dtype=np.float64).reshape(-1)
    if e.size and (not np.all(np.isfinite(e)) or np.any(e <= 0)):
        raise ConfigError("incident energies must be finite and > 0 GeV")
    layers = [np.zeros((e.size,) + s, np.float32) for s in geometry.shapes]
    overflow = np.zeros((e.size, 3), np.float32)
    for b0 in range(0, e.size, batch_size):
        sl = slice(b0, min(b0 + batch_size, e.size))
        out, ovf = _simulate_batch(key, e[sl], rng, geometry)
        for dst, src in zip(layers, out):
            dst[sl] = src
        overflow[sl] = ovf
        if progress is not None:
            progress(sl.stop - sl.start)
    return Showers(layers, e.astype(np.float32), geometry, overflow, key,
                   {"producer": "calosim.data.simulate (parametric, GFlash-style)"})


def simulate_uniform(particle: str, n: int, energy_range=(1.0, 100.0), seed: int = 0, **kw) -> Showers:
    """``n`` showers with incident energies uniform in ``energy_range`` GeV, from default_rng(seed)."""
    lo, hi = float(energy_range[0]), float(energy_range[1])
    if not (0 < lo <= hi) or not math.isfinite(hi):
        raise ConfigError(f"energy range must satisfy 0 < low <= high, got {lo} {hi}")
    rng = np.random.default_rng(seed)
    energies = rng.uniform(lo, hi, size=n)
    showers = simulate(particle, energies, rng, **kw)
    showers.attrs.update(seed=seed, energy_range=[lo, hi])
    return showers


# ---------------------------------------------------------------------------------------------------------
# longitudinal profiles on a 1 mm grid: (N, 480) MeV per mm slice

_Z = np.arange(0.5, DEPTH_MM, 1.0)  # slice centres, mm
_LAYER_SLICES = [slice(int(a), int(b)) for a, b in zip(LAYER_EDGES_MM[:-1], LAYER_EDGES_MM[1:])]
_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def _gamma_profile(start_mm, scale_mm, alpha, beta, energy):
    """(N, 480): energy (N,) MeV distributed as Gamma(alpha, beta) in units of scale_mm from start_mm (N,)."""
    t = (_Z[None, :] - start_mm[:, None]) / scale_mm
    pos = t > 0
    tt = np.where(pos, t, 1.0)
    logd = (alpha[:, None] - 1) * np.log(tt) - beta[:, None] * tt + (alpha * np.log(beta) - _lgamma(alpha))[:, None]
    dens = np.where(pos, np.exp(logd), 0.0) / scale_mm  # per mm
    return dens * energy[:, None]


def _em_params(e_mev, rng, shift=0.0):
    """GFlash (homogeneous) T and alpha with correlated fluctuations; T in X0."""
    lny = np.log(np.maximum(e_mev / EC_MEV, 2.0))
    mu_t = np.log(np.maximum(lny - 0.858 + shift, 0.3))
    mu_a = np.log(0.21 + (0.492 + 2.38 / Z_EFF) * lny)
    s_t = 1.0 / (-1.4 + 1.26 * lny).clip(1.0)
    s_a = 1.0 / (-0.58 + 0.86 * lny).clip(1.0)
    rho = (0.705 - 0.023 * lny).clip(-0.9, 0.9)
    z1, z2 = rng.standard_normal((2, e_mev.size))
    ln_t = mu_t + s_t * z1
    ln_a = mu_a + s_a * (rho * z1 + np.sqrt(1 - rho ** 2) * z2)
    t_max = np.exp(ln_t)
    alpha = np.maximum(np.exp(ln_a), 1.05)
    beta = (alpha - 1) / t_max
    return alpha, beta


EM_T_SHIFT = {"e+": 0.1, "gamma": -0.17}  # X0, added to GFlash T (tuned)
EM_RESPONSE = 1.002  # effective: also makes up for the halo spots lost beyond +-240 mm (tuned)
EM_RESPONSE_SIGMA = 0.002


def _em_profile(key, e_mev, rng, start_mm=None):
    alpha, beta = _em_params(e_mev, rng, EM_T_SHIFT.get(key, 0.0))
    if start_mm is None:
        start_mm = np.zeros_like(e_mev)
        if key == "gamma":
            start_mm = rng.exponential(9.0 / 7.0 * X0_MM, e_mev.size)
    resp = EM_RESPONSE * (1 + EM_RESPONSE_SIGMA * rng.standard_normal(e_mev.size))
    return _gamma_profile(start_mm, X0_MM, alpha, beta, e_mev * resp)


def _layer_sums(profile):
    return np.stack([profile[:, s].sum(axis=1) for s in _LAYER_SLICES], axis=1)


# ---------------------------------------------------------------------------------------------------------
# transverse: spots drawn from core + tail + halo, binned into the cells

def _radius(rng, n, radial: Radial, layer: int, halo: bool = False):
    """Radii (mm) from F(r) = 1 - (1 + (r/R)^2)^(-g): the halo, or core / tail (p_tail of the non-halo part)."""
    u = rng.random(n)
    if halo:
        return radial.r_halo[layer] * np.sqrt(np.power(1.0 - u, -1.0 / radial.g_halo) - 1.0)
    r_scale = np.where(rng.random(n) < radial.p_tail[layer], radial.r_tail[layer], radial.r_core[layer])
    return r_scale * np.sqrt(u / (1.0 - u))


def _deposit(layer_e, radial: Radial, spot_mev, rng, geometry, out, overflow, centre=None, albedo=None,
             halo_spot=None):
    """Add spots to ``out`` (list of (N, R, C) float64) for layer energies ``layer_e`` (N, 3) MeV, of which
    ``albedo`` (N, 3) MeV (if given) more is added to the halos. ``spot_mev``: per-layer spot energy (3,);
    ``halo_spot``: (N,) halo spot energy (default HALO_SPOT_MEV)."""
    n = layer_e.shape[0]
    if halo_spot is None:
        halo_spot = np.full(n, HALO_SPOT_MEV)
    for li, lg in enumerate(geometry.layers):
        # core + tail as spots of ~spot_mev; the halo as many small spots
        for part, frac, e_spot in (("main", 1.0 - radial.p_halo[li], spot_mev[li]),
                                   ("halo", radial.p_halo[li], halo_spot)):
            e_l = layer_e[:, li] * frac
            if part == "halo" and albedo is not None:
                e_l = e_l + albedo[:, li]
            counts = np.where(e_l > 0, np.clip(np.ceil(e_l / e_spot), 1, MAX_SPOTS_PER_LAYER), 0).astype(np.int64)
            total = int(counts.sum())
            if total == 0:
                continue
            owner = np.repeat(np.arange(n), counts)
            w = rng.gamma(SPOT_SHAPE, 1.0, total)
            wsum = np.bincount(owner, weights=w, minlength=n)
            energy = w * (e_l / np.where(wsum > 0, wsum, 1.0))[owner]
            r = _radius(rng, total, radial, li, halo=part == "halo")
            _bin(r, owner, energy, centre, lg, li, rng, out, overflow)


def _bin(r, owner, energy, centre, lg, li, rng, out, overflow):
    """Scatter spots at radius r (mm), uniform azimuth, into layer li's cells (or its overflow)."""
    n = out[li].shape[0]
    total = r.size
    phi = rng.uniform(0, 2 * np.pi, total)
    x = r * np.cos(phi)
    y = r * np.sin(phi)
    if centre is not None:
        x += centre[owner, 0]
        y += centre[owner, 1]
    rows, cols = lg.shape
    ix = np.floor((x + HALF_WIDTH_MM) / lg.cell_size[0]).astype(np.int64)
    iy = np.floor((y + HALF_WIDTH_MM) / lg.cell_size[1]).astype(np.int64)
    inside = (ix >= 0) & (ix < rows) & (iy >= 0) & (iy < cols)
    overflow[:, li] += np.bincount(owner[~inside], weights=energy[~inside], minlength=n)
    flat = owner[inside] * (rows * cols) + ix[inside] * cols + iy[inside]
    out[li] += np.bincount(flat, weights=energy[inside], minlength=n * rows * cols).reshape(n, rows, cols)


def _halo_spot(e_gev):
    return HALO_SPOT_MEV * np.power(np.maximum(e_gev, 0.1) / 10.0, HALO_SPOT_POWER)


def _simulate_batch(key, e_gev, rng, geometry):
    n = e_gev.size
    e_mev = e_gev * 1000.0
    out = [np.zeros((n,) + s) for s in geometry.shapes]
    overflow = np.zeros((n, 3))
    if key in ("e+", "gamma"):
        layer_e = _layer_sums(_em_profile(key, e_mev, rng))
        # wide-angle photons (and albedo) of the whole shower reach layer 0's and layer 2's outskirts
        albedo = EM_ALBEDO[None, :] * layer_e.sum(axis=1, keepdims=True)
        layer_e[:, 1] -= albedo.sum(axis=1)
        _deposit(layer_e, EM_RADIAL, EM_SPOT_MEV, rng, geometry, out, overflow, albedo=albedo,
                 halo_spot=_halo_spot(e_gev))
    else:
        _pion(e_mev, rng, geometry, out, overflow)
    return [o.astype(np.float32) for o in out], overflow.astype(np.float32)


# pions ----------------------------------------------------------------------------------------------------
PION = {
    "lambda_mm": 380.0,   # pion interaction length in the mix (fraction without interaction: exp(-480/lambda))
    "mip_mev_mm": 0.69,   # median MIP loss per mm (all deposits counted: delta rays, relativistic rise)
    "mip_width": 0.075,   # Landau width (relative, for the 347 mm of layer 1; scales as thickness^-0.2)
    "mip_delta": 0.25,    # fraction of the MIP loss in delta-ray spots around the track
    "k": 0.82,            # f_em = 1 - (E / 1 GeV)^(k - 1)
    "f_em_sigma": 0.33,   # Gaussian fluctuation of f_em
    "visible": 0.546,     # visible fraction of the hadronic component (e/h > 1)
    "vis_sigma": 0.25,    # lognormal fluctuation of the visible energy
    "had_alpha": 2.08,    # hadronic Gamma profile (lambda units)
    "had_beta": 0.77,
    "backsplash": 0.0118,  # fraction of the visible hadronic energy thrown back into layer 0 ...
    "backsplash_mm": 130.0,  # ... falling off exponentially with the distance of the interaction from it
    "bs_sigma": 0.88,     # lognormal fluctuation of the backsplash
    "bs_spot_mev": 0.3,
    "centre_mm": 4.4,     # the hadronic shower's centre wanders off axis a little
}
HAD_SPOT_MEV_HALO = 0.38
BACKSPLASH_RADIAL = Radial((40.0,) * 3, (120.0,) * 3, (0.5,) * 3, (150.0,) * 3, (0.0,) * 3, 1.0)


def _moyal(rng, n):
    """Moyal-distributed (Landau approximation) variates: mode 0, X = -ln(Z^2), Z ~ N(0, 1)."""
    z = rng.standard_normal(n)
    return -np.log(np.maximum(z * z, 1e-12))


def _mip(z_int, e_gev, rng, geometry, out, overflow):
    """The pion's ionisation track up to the interaction point (or through): a Landau-fluctuated loss per
    layer, most of it on the track (which sits on a cell boundary: a tiny offset decides the side) and a
    fraction as delta-ray spots of a few mm around it."""
    p = PION
    n = z_int.size
    offset = rng.normal(0.0, 0.3, (n, 2))
    slope = rng.normal(0.0, 1.0, (n, 2)) * (5e-3 / np.maximum(e_gev, 1.0))[:, None]
    all_idx = np.arange(n)
    for li, lg in enumerate(geometry.layers):
        a, b = LAYER_EDGES_MM[li], LAYER_EDGES_MM[li + 1]
        path = np.clip(z_int, a, b) - a
        width = p["mip_width"] * (347.0 / max(b - a, 1.0)) ** 0.2
        de = p["mip_mev_mm"] * path * np.maximum(1 + width * (_moyal(rng, n) - 0.787), 0.5) * (path > 0)
        zc = 0.5 * (a + np.minimum(np.maximum(z_int, a), b))
        pos = offset + slope * zc[:, None]
        hit = de > 0
        if not hit.any():
            continue
        idx = all_idx[hit]
        _bin(np.zeros(idx.size), idx, de[hit] * (1 - p["mip_delta"]), pos, lg, li, rng, out, overflow)
        # delta rays: ~4 MeV spots, exponential weights, radii with F(r) = r^2 / (r^2 + 1.5^2)
        e_d = de[hit] * p["mip_delta"]
        counts = np.clip(np.ceil(e_d / 4.0), 1, 200).astype(np.int64)
        owner = np.repeat(idx, counts)
        w = rng.exponential(1.0, owner.size)
        wsum = np.bincount(owner, weights=w, minlength=n)
        energy = w * (de * p["mip_delta"] / np.where(wsum > 0, wsum, 1.0))[owner]
        u = rng.random(owner.size)
        _bin(1.5 * np.sqrt(u / (1 - u)), owner, energy, pos, lg, li, rng, out, overflow)


def _pion(e_mev, rng, geometry, out, overflow):
    n = e_mev.size
    p = PION
    e_gev = e_mev / 1000.0
    z_int = rng.exponential(p["lambda_mm"], n)
    _mip(z_int, e_gev, rng, geometry, out, overflow)
    interacts = z_int < DEPTH_MM
    if not interacts.any():
        return
    idx = np.nonzero(interacts)[0]
    m = idx.size
    zi = z_int[idx]
    e_avail = np.maximum(e_mev[idx] - p["mip_mev_mm"] * zi, 0.1 * e_mev[idx])
    f_em_mean = 1.0 - np.power(np.maximum(e_avail / 1000.0, 1.0), p["k"] - 1.0)
    f_em = np.clip(f_em_mean + p["f_em_sigma"] * rng.standard_normal(m), 0.0, 0.95)
    vis = np.exp(p["vis_sigma"] * rng.standard_normal(m) - 0.5 * p["vis_sigma"] ** 2)
    e_em = e_avail * f_em
    e_had = e_avail * (1 - f_em) * p["visible"] * vis
    em_prof = _em_profile("e+", np.maximum(e_em, 1.0), rng, start_mm=zi) * (e_em > 1.0)[:, None]
    alpha = np.full(m, p["had_alpha"]) * np.exp(0.2 * rng.standard_normal(m))
    beta = np.full(m, p["had_beta"])
    had_prof = _gamma_profile(zi, p["lambda_mm"], alpha, beta, e_had)
    centre = rng.normal(0.0, p["centre_mm"], (m, 2))
    sub_out = [np.zeros((m,) + s) for s in geometry.shapes]
    sub_ovf = np.zeros((m, 3))
    _deposit(_layer_sums(em_prof), EM_RADIAL, EM_SPOT_MEV, rng, geometry, sub_out, sub_ovf, centre,
             halo_spot=_halo_spot(e_gev[idx]))
    _deposit(_layer_sums(had_prof), HAD_RADIAL, HAD_SPOT_MEV, rng, geometry, sub_out, sub_ovf, centre,
             halo_spot=np.full(m, HAD_SPOT_MEV_HALO))
    # backsplash: slow neutrons and photons from the interaction reach layer 0, spread wide
    bs = np.zeros((m, 3))
    bs[:, 0] = (p["backsplash"] * e_had * np.exp(-np.maximum(zi - LAYER_EDGES_MM[1], 0.0) / p["backsplash_mm"])
                * np.exp(p["bs_sigma"] * rng.standard_normal(m) - 0.5 * p["bs_sigma"] ** 2))
    bs_spot = (p["bs_spot_mev"],) * 3
    _deposit(bs, BACKSPLASH_RADIAL, bs_spot, rng, geometry, sub_out, sub_ovf, centre)
    for dst, src in zip(out, sub_out):
        dst[idx] += src
    overflow[idx] += sub_ovf
