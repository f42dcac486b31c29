"""Export of a model's sampling path to other runtimes: ONNX (calosim.export.onnx_model), built with the onnx
package from calosim's own layers (calosim.export.graph, calosim.export.layers) and checked against calosim with
ONNX Runtime (calosim.export.check). Needs the ``onnx`` extra: ``pip install 'calosim[onnx]'``."""

from calosim.errors import ExportError

ONNX_EXTRA = "pip install 'calosim[onnx]' (the onnx and onnxruntime packages)"


def require(module: str):
    """Import ``onnx`` or ``onnxruntime``, or say how to install them."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"the ONNX export needs the {module} package: {ONNX_EXTRA}") from None
