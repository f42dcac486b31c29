"""`calosim quickstart`: the main job on the bundled data, train -> generate -> evaluate."""

import click

from calosim.backends import BACKEND_NAMES


@click.command()
@click.option("--out", "out", default="runs/quickstart", show_default=True, type=click.Path(file_okay=False),
              help="directory for the run, the generated showers and the report (an existing run is resumed)")
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default="numba", show_default=True,
              help="where training and generation run")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="default: the medium config's")
@click.option("--seed", default=0, show_default=True)
def quickstart(out, backend, epochs, seed):
    """Train the shipped models' recipe (the medium VAE with the energy factorisation, --energy-model, mirrored
    sampling and the calibration) on the bundled 4000 Geant4 e+ showers, generate showers at the energies of 2000
    held-out Geant4 showers, and evaluate them (observables, separation power, FPD / KPD, classifier AUC, plots)."""
    from calosim.cli.main import run_library_call
    from calosim.cli.train_cmd import _reporter
    from calosim.evaluate.report import format_summary
    from calosim.quickstart import quickstart as run_quickstart

    result = run_library_call(run_quickstart, out, backend=backend, epochs=epochs, seed=seed, reporter=_reporter())
    click.echo(format_summary(result.metrics))
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    click.echo(f"\nrun: {result.run_dir}\ngenerated: {result.generated}\nreport: {result.report_dir}/report.md"
               f"\ntime: {timing}")
