"""CLI commands of the loop layer: ``loop``, ``new`` and ``serve``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..text import echo

__all__ = ["register"]


@click.command()
@click.option("--params", "params_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="YAML parameter file; give several for a sweep (each in OUT/<file stem>).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: workbench-runs/loop-<time>).")
@click.option("--quick", is_flag=True, help="A small, fast configuration (tests, first contact); values a params file sets are kept.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Sweeps: parameter files run at once.")
@click.option("--notebooks", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Run the notebooks in this folder (a project made by `workbench new`) instead of Workbench's.")
def loop(params_files: tuple[Path, ...], out: Path | None, quick: bool, jobs: int, notebooks: Path | None) -> None:
    """Run annotate -> train -> evaluate headless on the built-in sample (or your parameters).

    Epochs, batch size, lr, schedule and image size that the params file (or --quick) leaves unset (or 0 / '')
    come from the defaults table by dataset type and training-set size, as for `workbench train`; the loop
    says where each came from, and the train step what it chose and why."""
    from .runner import run_loop, run_sweep

    out = out or Path("workbench-runs") / time.strftime("loop-%Y%m%d-%H%M%S")
    if len(params_files) > 1:
        results = run_sweep(list(params_files), out, quick=quick, jobs=jobs, notebooks=notebooks,
                            on_done=lambda p, s, r: echo(f"{p}: {s}: {r}"))
        failed = [r for r in results if r[1] != "ok"]
        echo(f"sweep: {len(results) - len(failed)} ok, {len(failed)} failed; outputs in {out}")
        if failed:
            raise SystemExit(1)
        return

    def say(step: str, what: str) -> None:
        echo(f"[{time.strftime('%H:%M:%S')}] {step}: {'running' if what == 'start' else 'done'}", err=True)

    def show(step: str, line: str) -> None:  # the running notebook's own lines, its progress included
        echo(f"  {step} | {line}", err=True)

    res = run_loop(out, params_file=params_files[0] if params_files else None, quick=quick, on_step=say,
                   notebooks=notebooks, on_output=show)
    if res.defaults.get("note"):
        echo(f"trained with {res.defaults['note']}")
    for k, v in res.metrics.get("summary", {}).items():
        echo(f"{k}: {v}")
    echo(f"report: {res.report}")


@click.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--type", "dtype", type=click.Choice(["classification", "detection", "segmentation", "anomaly"]),
              default="classification", show_default=True)
def new(project: Path, dtype: str) -> None:
    """Start a project: the loop's notebooks, a params file and a README for one dataset type."""
    from .templates import new_project

    files = new_project(project, dtype)
    echo(f"created {project} ({dtype}): {', '.join(f.name for f in files)}")
    echo(f"run it: cd {project} && workbench loop --notebooks . --params params.yaml")


@click.command()
@click.option("--port", type=int, default=8866, show_default=True)
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--allow-remote", is_flag=True, help="Allow an address other machines can reach (needs a token).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME[:PORT]",
              help="Also answer to this Host name (a DNS name of this machine, a proxy); repeatable.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the token (one line, chmod 600); or set WORKBENCH_TOKEN. Generated and shown "
                   "once when --allow-remote and none given.")
@click.option("--token", hidden=True, help="Refused: a token on the command line shows in `ps`.")
@click.option("--user", help="Author recorded for every edit made from the dashboards (default: login name).")
@click.option("--max-kernels", type=int, default=8, show_default=True,
              help="Dashboard pages open at once (each runs a kernel).")
@click.option("--idle-timeout", type=int, default=3600, show_default=True,
              help="Seconds without activity after which a page's kernel is stopped, even with the page open.")
@click.option("--certfile", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TLS certificate (PEM), with --keyfile.")
@click.option("--keyfile", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TLS private key (PEM), with --certfile.")
@click.pass_context
def serve(ctx: click.Context, port: int, ip: str, allow_remote: bool, allow_hosts: tuple[str, ...],
          token_file: Path | None, token: str | None, user: str | None, max_kernels: int, idle_timeout: int,
          certfile: Path | None, keyfile: Path | None) -> None:
    """Serve the annotate and review dashboards with Voilà (127.0.0.1 by default)."""
    from ..errors import ValidationError
    from .serve import serve as run_serve

    if token is not None:
        raise ValidationError("a token on the command line is visible to every user (ps); put it in "
                              "WORKBENCH_TOKEN or in a file given with --token-file", field="--token")
    raise SystemExit(run_serve(port=port, ip=ip, allow_remote=allow_remote, token_file=token_file,
                               allow_hosts=allow_hosts, user=user, max_kernels=max_kernels,
                               idle_timeout=idle_timeout, certfile=certfile, keyfile=keyfile,
                               home=ctx.find_root().obj.get("home")))


def register(cli: click.Group) -> None:
    cli.add_command(loop)
    cli.add_command(new)
    cli.add_command(serve)
