"""Stand-in Geant4 data tables for ``--approximate-data`` (no Geant4 data sets needed, nothing downloaded).

Geant4's EM and hadronic constructors read a few low-energy tables at initialisation. Where the real data sets
are not installed, calosim writes stand-ins in Geant4's own file formats (the recipe that made
../shared/data/geant4, see ../shared/tools/geant4/README.md):

- G4EMLOW/brem_SB/br<Z>: the Seltzer-Berger scaled bremsstrahlung cross section chi(Z, T, kappa) =
  beta^2 / Z^2 k dsigma/dk [mb] computed from the relativistic formula of G4eBremsstrahlungRelModel (Tsai
  screening + Coulomb correction, no LPM) instead of the tabulated Seltzer-Berger values: probably 10-30 % low
  below ~10 MeV (raising them by 40 % moved 10 GeV e+ totals by 2 %).
- G4EMLOW/epics2017/phot/pe-*-<Z>.dat: one-shell photo-effect files that reproduce the Sandia-parametrised
  cross section (the one of G4PEEffectFluoModel); no fluorescence shell structure.
- G4PARTICLEXS/neutron/{inel,el,cap}<Z>: crude geometric neutron cross sections below 20 MeV (Geant4 scales its
  built-in Glauber-Gribov cross sections to them above); pi+ showers are the most affected.
- G4ENSDFSTATE/ENSDFSTATE.dat: empty (no isomers); PhotonEvaporation and the other data sets: empty folders
  (no photon-evaporation level data: de-excitation gammas of nuclear fragments are approximate).

Run as ``python -m calosim.geant4.standin OUTDIR`` with GEANT4_DATA_DIR and the G4*DATA variables pointing
into OUTDIR (the Sandia coefficients come from Geant4 itself, so geant4_pybind is imported here).
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

ALPHA = 1 / 137.035999084
RE_CM = 2.8179403262e-13  # classical electron radius, cm
ME_MEV = 0.51099895
BREM_FACTOR_MB = 16.0 * ALPHA * RE_CM**2 / 3.0 / 1e-27  # gBremFactor of Geant4, in mb
_FEL_LOW = (0.0, 5.3104, 4.7935, 4.7402, 4.7112)
_FINEL_LOW = (0.0, 5.9173, 5.6125, 5.5377, 5.4728)
KAPPA = np.array([1e-12, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65,
                  0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.97, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995,
                  0.99999, 1.0])
LOG_T = np.log(10.0 ** (-3 + np.arange(57) / 8.0))  # electron kinetic energy 1 keV .. 10 GeV, ln(MeV)
Z_MAX = 99


def _fcoul(z: int) -> float:
    az2 = (ALPHA * z) ** 2
    az4 = az2 * az2
    return (0.0083 * az4 + 0.20206 + 1.0 / (1.0 + az2)) * az2 - (0.0020 * az4 + 0.0369) * az4


def brem_dxsec(z: int, t_mev: float, k_mev: np.ndarray) -> np.ndarray:
    """G4eBremsstrahlungRelModel::ComputeDXSectionPerAtom without LPM / dielectric suppression: the
    dimensionless differential cross section of an electron of kinetic energy t_mev emitting photons k_mev."""
    e = t_mev + ME_MEV
    y = k_mev / e
    onemy = 1.0 - y
    dum0 = onemy + 0.75 * y * y
    fc = _fcoul(z)
    log_z = math.log(z)
    if z < 5:
        zf1 = (_FEL_LOW[z] - fc) + _FINEL_LOW[z] / z
        zf2 = (1.0 + 1.0 / z) / 12.0
        return np.maximum(dum0 * zf1 + onemy * zf2, 0.0)
    fz = log_z / 3.0 + fc
    z13 = z ** (1.0 / 3.0)
    dum1 = y / np.maximum(e - k_mev, 1e-30)
    gam = dum1 * 100.0 * ME_MEV / z13
    eps = dum1 * 100.0 * ME_MEV / (z13 * z13)
    gam2, eps2 = gam * gam, eps * eps
    phi1 = 16.863 - 2.0 * np.log(1.0 + 0.311877 * gam2) + 2.4 * np.exp(-0.9 * gam) + 1.6 * np.exp(-1.5 * gam)
    phi1m2 = 2.0 / (3.0 + 19.5 * gam + 18.0 * gam2)
    psi1 = 24.34 - 2.0 * np.log(1.0 + 13.111641 * eps2) + 2.8 * np.exp(-8.0 * eps) + 1.2 * np.exp(-29.2 * eps)
    psi1m2 = 2.0 / (3.0 + 120.0 * eps + 1200.0 * eps2)
    d = (dum0 * ((0.25 * phi1 - fz) + (0.25 * psi1 - 2.0 * log_z / 3.0) / z)
         + 0.125 * onemy * (phi1m2 + psi1m2 / z))
    return np.maximum(d, 0.0)


def write_brem(emlow: str, z: int) -> None:
    """G4EMLOW/brem_SB/br<z> in the Seltzer-Berger table format (kappa grid, ln T grid, chi rows in mb)."""
    lines = [f"0 {len(KAPPA)} {len(LOG_T)}", " ".join(f"{x:.8g}" for x in KAPPA),
             " ".join(f"{y:.8g}" for y in LOG_T)]
    for lt in LOG_T:
        t = math.exp(lt)
        beta2 = t * (t + 2 * ME_MEV) / (t + ME_MEV) ** 2
        row = beta2 * BREM_FACTOR_MB * brem_dxsec(z, t, KAPPA * t)
        lines.append(" ".join(f"{v:.6e}" for v in row))
    with open(os.path.join(emlow, "brem_SB", f"br{z}"), "w") as f:
        f.write("\n".join(lines) + "\n")


def write_photo(emlow: str, z: int, sandia_barn, ebind_mev: float = 1e-3, emax_mev: float = 1e8) -> None:
    """One-shell G4EMLOW/epics2017/phot files whose cross section is ``sandia_barn(z, E)`` (barn, E in MeV)."""
    d = os.path.join(emlow, "epics2017", "phot")
    e = np.unique(np.concatenate([np.logspace(-3, 0, 1501), np.logspace(0, 8, 401)]))
    v = np.array([sandia_barn(z, x) * x**3 for x in e])  # sigma * E^3, barn MeV^3
    with open(os.path.join(d, f"pe-cs-{z}.dat"), "w") as f:
        f.write(f"{e[0]:.8g} {e[-1]:.8g} {len(e)}\n{len(e)}\n")
        f.writelines(f"{a:.8g} {b:.8g}\n" for a, b in zip(e, v))
    a1 = sandia_barn(z, emax_mev) * emax_mev
    for tag in ("high", "low"):
        with open(os.path.join(d, f"pe-{tag}-{z}.dat"), "w") as f:
            f.write(f"1 1 {emax_mev:.8g}\n{ebind_mev:.8g} {a1:.8g} 0 0 0 0 0\n")


def _mass_number(z: int) -> float:
    known = {1: 1, 2: 4, 6: 12, 7: 14, 8: 16, 18: 40, 26: 56, 29: 63.5, 74: 184, 82: 207}
    return known.get(z, max(1.0, 2.0 * z + 0.006 * z * z))


def write_neutron_xs(particlexs: str) -> None:
    """Crude G4PARTICLEXS/neutron/{inel,el,cap}<Z> for 1e-5 eV .. 20 MeV (Geant4 units: mm^2)."""
    d = os.path.join(particlexs, "neutron")
    os.makedirs(d, exist_ok=True)
    barn_mm2 = 1e-22
    e = np.logspace(-11, math.log10(20.0), 200)  # MeV

    def write(path, values):
        with open(path, "w") as f:
            f.write(f"{e[0]:.8g} {e[-1]:.8g} {len(e)}\n{len(e)}\n")
            f.writelines(f"{a:.8g} {b:.8g}\n" for a, b in zip(e, values))

    for z in range(1, 93):
        a = _mass_number(z)
        radius = 1.2 * a ** (1 / 3.0)  # fm
        lam = 4.55 / np.sqrt(e)  # reduced de Broglie wavelength, fm
        geo = math.pi * (radius + np.minimum(lam, radius)) ** 2 * 0.01  # barn
        ramp = (np.clip((np.log(e) - math.log(0.5)) / (math.log(5.0) - math.log(0.5)), 0, 1) if z > 1
                else 0 * e)
        inel = np.maximum(ramp * math.pi * radius * radius * 0.01 * 1.2, 1e-6)
        el = np.maximum(geo, 1e-3)
        cap = np.minimum(0.1 * np.sqrt(2.53e-8 / e) * (a / 50.0) ** 0.5, 50.0)
        write(os.path.join(d, f"inel{z}"), inel * barn_mm2)
        write(os.path.join(d, f"el{z}"), el * barn_mm2)
        write(os.path.join(d, f"cap{z}"), cap * barn_mm2)


def build(outdir: str) -> None:
    """Write every stand-in table under ``outdir`` (one folder per data set, named as the data set)."""
    from calosim.geant4.datasets import DATASETS

    for name in DATASETS:
        os.makedirs(os.path.join(outdir, name), exist_ok=True)
    emlow = os.path.join(outdir, "G4EMLOW")
    os.makedirs(os.path.join(emlow, "brem_SB"), exist_ok=True)
    os.makedirs(os.path.join(emlow, "epics2017", "phot"), exist_ok=True)
    open(os.path.join(outdir, "G4ENSDFSTATE", "ENSDFSTATE.dat"), "w").close()
    write_neutron_xs(os.path.join(outdir, "G4PARTICLEXS"))

    if "GEANT4_DATA_DIR" not in os.environ:  # importing geant4_pybind without it starts a download
        raise RuntimeError("GEANT4_DATA_DIR must be set before geant4_pybind is imported")
    from geant4_pybind import G4doubleVector, G4NistManager, MeV, barn

    sandia = G4NistManager.Instance().FindOrBuildMaterial("G4_Pb").GetSandiaTable()
    coef = G4doubleVector([0.0] * 4)

    def sandia_barn(z, e_mev):
        sandia.GetSandiaCofPerAtom(z, e_mev * MeV, coef)
        c = list(coef)
        e = e_mev * MeV
        return (c[0] / e + c[1] / e**2 + c[2] / e**3 + c[3] / e**4) / barn

    for z in range(1, Z_MAX + 1):
        write_brem(emlow, z)
        write_photo(emlow, z, sandia_barn)


if __name__ == "__main__":
    build(sys.argv[1])
