"""``calosim export --format onnx``: a model's sampling path as one ONNX graph, optionally checked with ONNX Runtime.

The graph (opset calosim.export.graph.OPSET, dynamic batch size N):
    inputs   z (N, Z) standard normal; energy (N,) incident energy in GeV; label (N,) int64 (two-class models);
             the uniform numbers u ~ U(0, 1) of any Bernoulli draw, e.g. occupancy_uniform (N, V) (the VAE keeps
             voxel v where u_v < sigmoid(logit_v)) or empty_layer_uniform (N, L) (the WGAN-GP's empty layers);
             energy-factorised models (--energy-model) also energy_uniform (N, L) in [0, 1) and energy_normal
             (N, L) standard normal, column l the draws of layer l's energy (its mixture component, and where
             in it), to which the graph then rescales layer l
    outputs  one per calorimeter layer, named as the layer: cells (N, R_l, C_l) in MeV
    metadata (metadata_props) model type, config, geometry (layer names, shapes, cell sizes in mm), particle,
             energy range (GeV), units, the inputs and outputs in words, calosim version, source file
Each model type builds its own path (ShowerModel.export_onnx) after ``freeze()``, so CaloGAN's folded sampler
is what is exported; ShowerModel.export_sampling_onnx adds the energy model, as ShowerModel.sample does. The
numbers are calosim's: ``check`` runs ONNX Runtime and calosim's sampling path (NumPy backend, float32) on the
same inputs (calosim.export.check).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from calosim._version import __version__
from calosim.atomic import atomic_bytes
from calosim.export import require
from calosim.export.check import Agreement, check_agreement

UNITS = ("inputs: energy = incident energy in GeV (N,), z standard normal (N, Z), uniforms in [0, 1), "
         "energy_normal standard normal; outputs: cell energies in MeV, one output (N, R, C) per calorimeter "
         "layer in depth order")


@dataclass
class ExportResult:
    path: Path
    size_bytes: int
    opset: int
    inputs: dict  # {name: description}
    outputs: list  # [(name, (R, C))]
    agreement: list[Agreement] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.agreement)


def onnx_graph(model):
    """The frozen model's sampling path as an onnx.ModelProto (calosim.export.graph)."""
    require("onnx")
    from calosim.export.graph import OPSET, Graph

    model = model.freeze()
    graph = Graph(f"calosim_{model.model_type.replace('-', '_')}_generator")
    model.export_sampling_onnx(graph)
    metadata = {
        "calosim_version": __version__,
        "model_type": model.model_type,
        "config": json.dumps(model.config.to_dict()),
        "geometry": json.dumps(model.geometry.to_dict()),
        "particle": model.particle,
        "energy_range_gev": json.dumps(list(model.energy_range)),
        "units": UNITS,
        "inputs": json.dumps(graph.input_docs),
        "outputs": json.dumps({layer.name: list(layer.shape) for layer in model.geometry.layers}),
        "opset": str(OPSET),
        "model_attributes": json.dumps(model.file_attributes()),
    }
    if model.draws_layer_energies:
        metadata["energy_model"] = json.dumps(model.energy_model.config.to_dict())
    metadata.update({f"source_{k}": str(v) for k, v in model.attrs.items() if k in ("epoch", "seed")})
    doc = (f"calosim {model.model_type} generator ({model.config.name}): showers of {model.particle} in the "
           f"{model.geometry.name} geometry; {UNITS}")
    return graph.model(metadata, doc)


def export_model(model, output, check: bool = False, batch_sizes=(1, 1000), seed: int = 0) -> ExportResult:
    """Export a model file or run directory (its best.h5, else last.h5) to ``output`` (.onnx); with ``check``,
    compare ONNX Runtime with calosim at each of ``batch_sizes``."""
    from calosim.backends import get_backend
    from calosim.models.files import load_model
    from calosim.training import resolve_model_path

    loaded = load_model(resolve_model_path(model), get_backend("numpy", "float32")).freeze()
    proto = onnx_graph(loaded)
    data = proto.SerializeToString()
    output = Path(output)
    atomic_bytes(output, data)
    result = ExportResult(output, len(data), int(proto.opset_import[0].version), json.loads(
        next(p.value for p in proto.metadata_props if p.key == "inputs")),
        [(layer.name, layer.shape) for layer in loaded.geometry.layers])
    if check:
        result.agreement = check_agreement(loaded, data, batch_sizes, seed)
    return result


def format_export(result: ExportResult) -> str:
    from calosim.export.check import format_agreement

    lines = [f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, ONNX opset {result.opset}, dynamic batch N)",
             "  inputs:  " + "; ".join(f"{name}: {doc}" for name, doc in result.inputs.items()),
             "  outputs: " + ", ".join(f"{name} (N, {r}, {c}) MeV" for name, (r, c) in result.outputs)]
    if result.agreement:
        lines.append(format_agreement(result.agreement))
    return "\n".join(lines)
