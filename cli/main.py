"""The ``calosim`` command: parse arguments, call one library function, print."""

import json
import sys

import click

from calosim import __version__
from calosim.backends import BACKEND_NAMES, BackendUnavailable
from calosim.errors import CalosimError

BACKEND_OPTION = click.option("--backend", type=click.Choice(BACKEND_NAMES), default="numba", show_default=True,
                              help="where the computation runs: numpy (reference), numba (CPU), cupy (NVIDIA GPU)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="calosim")
@click.option("--debug", is_flag=True, help="show the Python traceback of an error instead of its one line")
@click.pass_context
def main(ctx, debug):
    """calosim: train and sample GAN fast simulations of calorimeter showers (CaloGAN and relatives).

    Every layer has a hand-written forward and backward pass, run by a NumPy reference backend, Numba CPU
    kernels or CuPy CUDA kernels. Start with `calosim info` and `calosim selftest`.
    """


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
@click.option("--model-type", default=None,
              help="print the parameter counts per network of this model type (calogan, wgan-gp, vae, lagan) "
                   "instead, in its default geometry")
@click.option("--config", "model_config", default=None,
              help="with --model-type: the configuration (default: the type's published one, e.g. calogan's "
                   "'calogan')")
def info(as_json, model_type, model_config):
    """Versions, available backends (and why not), threads and GPU devices."""
    from calosim.info import format_info, machine_info

    if model_type is not None or model_config is not None:
        from calosim.models.registry import describe, format_description, get_model_type

        kind = run_library_call(get_model_type, model_type or "calogan")
        desc = run_library_call(describe, kind.model_type, model_config or kind.reference_config)
        click.echo(json.dumps(desc, indent=2) if as_json else format_description(desc))
        return
    details = machine_info()
    click.echo(json.dumps(details, indent=2) if as_json else format_info(details))


@main.command()
@BACKEND_OPTION
@click.option("--seed", default=0, show_default=True, help="seed of the random inputs and directions")
def selftest(backend, seed):
    """Audit a backend: every layer's and loss's gradient against float64 finite differences, and (for
    numba and cupy) every layer against the NumPy reference in float32. Exits 1 if anything fails."""
    from calosim.selftest import format_rows, run_selftest

    try:
        rows = run_selftest(backend, seed)
    except BackendUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_rows(rows))
    sys.exit(0 if all(r.passed for r in rows) else 1)


def run_library_call(fn, *args, reraise: tuple = (), **kwargs):
    """Call library code, turning what it raises into one line without a traceback (exit 1; ``calosim --debug``
    re-raises instead). SIGTERM and Ctrl-C end the call with exit 143 / 130 once temporaries are removed.
    Exceptions of the types in ``reraise`` are re-raised as they are, for the caller to report."""
    from calosim.atomic import Terminated, install_sigterm_cleanup

    install_sigterm_cleanup()
    ctx = click.get_current_context(silent=True)
    debug = bool(ctx and ctx.find_root().params.get("debug"))
    try:
        return fn(*args, **kwargs)
    except (Terminated, KeyboardInterrupt) as exc:
        if debug:
            raise
        click.echo(f"Error: {exc or 'interrupted'}; temporary files removed, earlier outputs left as they were",
                   err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except click.ClickException:
        raise
    except reraise:
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: every error is one line
        if debug:
            raise
        raise click.ClickException(one_line(exc)) from None


def one_line(exc: BaseException) -> str:
    """The message of an error as one line: the library's own errors as they are, system errors with their
    cause, anything unexpected with its type and a pointer to --debug."""
    if isinstance(exc, (CalosimError, BackendUnavailable)):
        text = str(exc)
    elif isinstance(exc, OSError):
        from calosim.atomic import os_error_text

        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{os_error_text(exc)}"
    elif isinstance(exc, MemoryError):
        text = "out of memory (try a smaller --batch-size)"
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (calosim --debug ... shows the traceback)"
    return " ".join(text.split())


FORCE_OPTION = click.option("--force", is_flag=True, help="replace the output file if it exists")


def refuse_existing(path, force: bool) -> None:
    """An existing output is replaced only with --force (README: "Existing outputs")."""
    from pathlib import Path

    if Path(path).exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to replace it")


# Commands defined in their own modules are registered below.

from calosim.cli.data_cmd import data  # noqa: E402
from calosim.cli.simulate_cmd import simulate  # noqa: E402

main.add_command(data)
main.add_command(simulate)

from calosim.cli.evaluate_cmd import evaluate  # noqa: E402

main.add_command(evaluate)

from calosim.cli.generate_cmd import generate  # noqa: E402
from calosim.cli.train_cmd import train  # noqa: E402

main.add_command(train)
main.add_command(generate)

from calosim.cli.quickstart_cmd import quickstart  # noqa: E402

main.add_command(quickstart)

from calosim.cli.bench_cmd import bench  # noqa: E402

main.add_command(bench)

from calosim.cli.calibrate_cmd import calibrate  # noqa: E402
from calosim.cli.export_cmd import export  # noqa: E402
from calosim.cli.models_cmd import models  # noqa: E402

main.add_command(calibrate)
main.add_command(export)
main.add_command(models)
