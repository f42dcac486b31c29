"""`calosim export`: a trained model's sampling path as an ONNX file, optionally checked with ONNX Runtime."""

import click


@click.command()
@click.option("--model", "model", required=True, metavar="MODEL",
              help="a model file, a run directory (its best.h5, else last.h5) or the name of a shipped pretrained "
                   "model (calosim models list)")
@click.option("--format", "file_format", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="the file format (ONNX: ONNX Runtime, Geant4's Par04, FastCaloSim)")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="the file to write, e.g. generator.onnx")
@click.option("--check", is_flag=True,
              help="run ONNX Runtime and calosim (numpy, float32) on the same inputs at batch 1 and 1000 and print "
                   "the largest difference; exit 1 above the tolerance")
@click.option("--seed", default=0, show_default=True, help="seed of the --check inputs")
def export(model, file_format, output, check, seed):
    """Export a model of any type for other runtimes: one ONNX graph of its sampling path with the random numbers
    as inputs (latent vectors, the uniforms of any Bernoulli draw, the energy model's uniforms and normals of an
    --energy-model run), the incident energy in GeV (and the class of two-class models) as inputs and the cells
    of each layer in MeV as outputs. Needs the onnx extra."""
    from calosim.cli.main import run_library_call
    from calosim.export.onnx_model import export_model, format_export

    result = run_library_call(export_model, model, output, check=check, seed=seed)
    click.echo(format_export(result))
    if check and not result.passed:
        raise SystemExit(1)
