"""`calosim bench`: ms/shower of generation (and optionally a training step, or Geant4 beside it); with
--history, the saved `pytest --benchmark-only` runs as a table and a plot, and a regression gate."""

import json

import click

from calosim.backends import BACKEND_NAMES
from calosim.bench_history import DEFAULT_BASELINES, DEFAULT_STORAGE
from calosim.models.registry import MODEL_TYPE_NAMES


def _batch_sizes(ctx, param, value):
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of integers, e.g. 1,128,1024") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("batch sizes must be >= 1")
    return sizes


@click.command()
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default="numba", show_default=True)
@click.option("--model-type", type=click.Choice(MODEL_TYPE_NAMES), default="calogan", show_default=True,
              help="model type to time with fresh weights (timing does not depend on them)")
@click.option("--config", default=None,
              help="configuration of --model-type (default: the type's published one: calogan, fastcalogan, vae, "
                   "lagan)")
@click.option("--model", "model_path", default=None, metavar="MODEL",
              help="time this trained model (a model file, run directory or pretrained name, any type) instead of "
                   "a fresh --model-type / --config")
@click.option("--batch-sizes", default="1,128,1024", show_default=True, callback=_batch_sizes)
@click.option("--train-step", is_flag=True,
              help="also time one training step of the model type at batch 128 (CaloGAN: D real, D fake, G twice)")
@click.option("--vs-geant4", is_flag=True,
              help="also time Geant4 (the geant4 extra) for e+ at 1, 10, 50, 100 GeV and print the speed-up")
@click.option("--onnx", "onnx", is_flag=True,
              help="instead: time ONNX Runtime (CPU, the onnx extra) on the exported sampling path beside calosim "
                   "--backend on the same model and --batch-sizes, in one run (ms/shower and their ratio)")
@click.option("--geant4-showers", default=20, show_default=True, help="Geant4 showers per energy")
@click.option("--fastsim", "fastsim_model", default=None, metavar="MODEL",
              help="with --vs-geant4: also time Geant4 with this model (a file, run directory or pretrained name; "
                   "CaloGAN geometry) as its fast "
                   "simulation (see `calosim simulate --fastsim`) beside full Geant4, per event, same e+ energies "
                   "and seeds, in one run: ms/event and their ratio")
@click.option("--json", "as_json", is_flag=True, help="print JSON (fields per batch size: ms_per_shower, gflops, "
              "gemm_gflops, ratio_to_gemm, ...)")
@click.option("--history", "history", is_flag=False, flag_value=DEFAULT_STORAGE, default=None, metavar="[DIR]",
              help="instead of timing: table and PNG plot of the runs `pytest --benchmark-only` saved in DIR "
              "(default .benchmarks) and the committed baselines")
@click.option("--baselines", type=click.Path(), default=DEFAULT_BASELINES, show_default=True,
              help="with --history: folder of committed baseline runs, read when it exists")
@click.option("--fail-if-slower", "fail_if_slower", type=click.FloatRange(min=0), default=None, metavar="PCT",
              help="with --history: exit 1 when the newest run's normalised figure of a benchmark is more than PCT "
              "percent above the best of the --window runs before it")
@click.option("--window", type=click.IntRange(min=1), default=5, show_default=True,
              help="with --fail-if-slower: how many earlier runs the best is taken from")
@click.option("--plot", "plot_path", type=click.Path(), default=None, help="with --history: the PNG [DIR/history.png]")
def bench(backend, model_type, config, model_path, batch_sizes, train_step, vs_geant4, onnx, geant4_showers,
          fastsim_model, as_json, history, baselines, fail_if_slower, window, plot_path):
    """Generation speed: ms/shower, showers/s, achieved GFLOP/s and the machine's own float32 matrix-multiply
    throughput on the same shapes, measured in the same run (their ratio says how close to the limit it is)."""
    from calosim.benchmark import bench_report, format_report
    from calosim.cli.main import run_library_call

    if fastsim_model is not None and not vs_geant4:
        raise click.UsageError("--fastsim times Geant4 with the model: use it with --vs-geant4")
    if history is None and fail_if_slower is not None:
        raise click.UsageError("--fail-if-slower gates saved runs: use it with --history")
    if history is not None:
        from calosim.bench_history import history_report

        text, passed = run_library_call(history_report, history, baselines, fail_if_slower, window, plot_path)
        click.echo(text)
        if not passed:
            raise SystemExit(1)
        return

    if onnx:
        from calosim.onnx_bench import bench_onnx, format_onnx_report

        report = run_library_call(bench_onnx, config=config, model_type=model_type, model_path=model_path,
                                  backend_name=backend, batch_sizes=batch_sizes)
        click.echo(json.dumps(report, indent=2) if as_json else format_onnx_report(report))
        return
    report = run_library_call(bench_report, config=config, model_type=model_type, backend_name=backend,
                              batch_sizes=batch_sizes,
                              model_path=model_path, train_step=train_step, vs_geant4=vs_geant4,
                              geant4_showers=geant4_showers, fastsim_model=fastsim_model)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
