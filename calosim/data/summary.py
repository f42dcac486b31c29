"""A short human-readable summary of a shower file (what `calosim data show` prints)."""

from __future__ import annotations

import numpy as np

from calosim.data.formats import open_showers

_SUMMARY_CHUNK = 20_000


def summarize(path, binning=None) -> dict:
    """Format, N, particle, geometry, incident energy range (GeV), per-layer mean energy fraction
    (mean over showers of E_l / E_tot, overflow excluded), mean E_tot / E_inc, attributes. Reads in chunks."""
    with open_showers(path, binning=binning) as f:
        n = len(f)
        frac_sum = np.zeros(f.geometry.n_layers)
        resp_sum = 0.0
        e_min, e_max = np.inf, -np.inf
        for start in range(0, n, _SUMMARY_CHUNK):
            s = f.read(start, min(n, start + _SUMMARY_CHUNK))
            le = s.layer_energies()
            tot = le.sum(axis=1)
            frac_sum += (le / np.where(tot > 0, tot, 1.0)[:, None]).sum(axis=0)
            resp_sum += float((tot / (1000.0 * s.energy.astype(np.float64))).sum())
            e_min, e_max = min(e_min, float(s.energy.min())), max(e_max, float(s.energy.max()))
        return {
            "path": str(path), "format": f.format, "n": n, "particle": f.particle,
            "geometry": f.geometry.name, "shapes": [list(s) for s in f.geometry.shapes],
            "energy_range_gev": [e_min, e_max] if n else [None, None],
            "layer_fractions": (frac_sum / max(n, 1)).tolist(),
            "response": resp_sum / max(n, 1), "attrs": dict(f.attrs),
        }


def format_summary(info: dict, max_attr_chars: int = 90) -> str:
    lines = [
        f"file:        {info['path']}",
        f"format:      {info['format']}",
        f"showers:     {info['n']}",
        f"particle:    {info['particle']}",
        f"geometry:    {info['geometry']} {' '.join('x'.join(map(str, s)) for s in info['shapes'])}",
    ]
    lo, hi = info["energy_range_gev"]
    if lo is not None:
        lines.append(f"energy:      {lo:.4g} - {hi:.4g} GeV (incident)")
        lines.append("fractions:   " + "  ".join(f"layer_{i} {f:.4f}" for i, f in enumerate(info["layer_fractions"]))
                     + "   (mean E_layer / E_tot)")
        lines.append(f"response:    {info['response']:.4f}   (mean E_tot / E_incident)")
    if info["attrs"]:
        lines.append("attributes:")
        for key, value in sorted(info["attrs"].items()):
            text = str(value)
            if len(text) > max_attr_chars:
                text = text[:max_attr_chars - 3] + "..."
            lines.append(f"  {key}: {text}")
    return "\n".join(lines)
