"""`calosim calibrate`: fit a model's calibration (calosim.models.spread, calosim.models.calibration) to Geant4
showers."""

import click


@click.command()
@click.option("--model", "model", required=True, type=click.Path(exists=True),
              help="a model file, or a run directory (its best.h5 and last.h5, fitted to the run's training showers "
                   "unless --data says otherwise)")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="the showers to fit to: the model's training showers (CaloGAN or CaloChallenge file); "
                   "default for a run directory: its training file and rows")
@click.option("--rows", nargs=2, type=click.IntRange(min=0), default=None, metavar="START STOP",
              help="the rows of --data to use (default: all of it, or the run's training rows)")
@click.option("--max-showers", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="use at most this many showers (the first of the rows)")
@click.option("--seed", default=0, show_default=True, help="seed of the model's own samples the fit compares with")
@click.option("--backend", type=click.Choice(["numpy", "numba", "cupy"]), default="numba", show_default=True,
              help="where the model samples")
def calibrate(model, data, rows, max_showers, seed, backend):
    """Fit the calibration of a model to the given showers and store it in the model file. Four parts, applied
    in this order when the model samples:

    \b
    - profile spread: per layer, how much the slope of each shower's log-profile and its cell-by-cell residuals
      are scaled, chosen so that the layer's E_ratio, widths and cell spectrum come nearest the showers';
    - energy map: each shower's own response and layer shares keep their rank among showers of its energy; the
      response takes the showers' distribution, the shares the energy model's conditionals at those ranks (the
      showers' distributions without an energy model); the layers are rescaled to them, nothing is drawn;
    - low-tail map: per layer, the lowest 10% of the non-zero cells take the showers' distribution of that tail;
    - cell factors: per cell and incident energy, bring the model's mean shower shape onto the showers'.

    Apart from the energy map, every layer keeps its sum; empty cells stay empty. `calosim train` does this when a
    run ends; use this command for models trained before, or to fit to other showers."""
    import json
    from pathlib import Path

    from calosim.cli.main import run_library_call
    from calosim.training.calibrate import calibrate_file, run_model_files

    path = Path(model)
    targets = [path]
    if path.is_dir():
        run_json = path / "run.json"
        if not run_json.is_file():
            raise click.UsageError(f"{path}: not a run directory (no run.json)")
        try:
            run = json.loads(run_json.read_text())
            run_data, run_rows = run["data"], tuple(run["train_rows"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.UsageError(f"{run_json}: cannot read the run's data and training rows ({exc})") from None
        if data is None:
            data = run_data
            rows = rows or run_rows
        targets = run_model_files(path)
        if not targets:
            raise click.UsageError(f"{path}: the run has no best.h5 or last.h5 yet")
    elif data is None:
        raise click.UsageError("--data is needed for a model file (the showers to fit to)")
    row_range = range(*rows) if rows else None
    if row_range is not None and len(row_range) == 0:
        raise click.UsageError(f"--rows {rows[0]} {rows[1]}: no rows")
    for target in targets:
        values = run_library_call(calibrate_file, target, data, row_range, max_showers=max_showers, seed=seed,
                                  backend=backend)
        factors = values["cell_calibration"]
        layers = " ".join(f"({a:g}, {b:g})" for a, b in values["spread_factors"])
        click.echo(f"{target}: calibration fitted to {data}: profile spread (slope, residual) per layer {layers}; "
                   f"cell factors at {factors.shape[0]} energies x {factors.shape[1]} cells, "
                   f"{factors.min():.2f} .. {factors.max():.2f}")
