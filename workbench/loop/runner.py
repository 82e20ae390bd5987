"""``workbench loop``: the annotate -> train -> evaluate notebooks chained with papermill.

Each step's executed notebook, ``loop.json`` (the run record of the loop), ``metrics.json`` and
``report.html`` (nbconvert, static figures) land in the output folder. A failing step stops the loop,
names the failing cell, and keeps what ran.
"""

from __future__ import annotations

import json
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WorkbenchError
from ..fsutil import atomic_write_text
from ..text import escape_html
from .params import (
    STEPS,
    describe_settings,
    inject_parameters,
    load_params,
    notebooks_dir,
    resolve_run,
    resolve_weights,
)

__all__ = ["LoopResult", "StepFailed", "run_loop", "run_sweep", "notebook_parameters"]


class StepFailed(WorkbenchError):
    """A notebook of the loop raised; names the step, the cell and the error."""

    def __init__(self, step: str, cell: int | None, ename: str, evalue: str, out: Path) -> None:
        self.step, self.cell, self.ename, self.evalue, self.out = step, cell, ename, evalue, out
        where = f" at cell In [{cell}]" if cell is not None else ""
        super().__init__(f"step {step} failed{where}: {ename}: {' '.join(evalue.split())[:300]} "
                         f"(executed notebook kept in {out / (step + '.ipynb')})")


@dataclass
class LoopResult:
    out: Path
    params: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # parameter -> default / dataset type / --quick / ...
    defaults: dict[str, Any] = field(default_factory=dict)  # the train step's choice from the defaults table

    @property
    def report(self) -> Path:
        return self.out / "report.html"


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The parameters a notebook's ``parameters`` cell declares (papermill reads the cell; nothing runs)."""
    import nbformat
    import papermill

    return dict(papermill.inspect_notebook(nbformat.read(str(path), as_version=4)))


def _literal_path(path: Path) -> str:
    """``path`` as papermill takes it: papermill formats output paths with the parameters
    (``str.format``), so braces are doubled to mean themselves."""
    return str(path).replace("{", "{{").replace("}", "}}")


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("workbench", "torch", "torchvision", "albumentations", "papermill", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def run_loop(out: str | Path, *, params_file: str | Path | None = None, quick: bool = False,
             overrides: dict[str, Any] | None = None, notebooks: str | Path | None = None,
             steps: Sequence[str] = STEPS, on_step: Callable[[str, str], None] | None = None,
             html: bool = True, on_output: Callable[[str, str], None] | None = None) -> LoopResult:
    """Run the loop's notebooks in order into ``out``. Raises StepFailed when a step fails.

    ``on_output(step, line)`` hears each line the running notebook writes (stdout and stderr, its
    progress lines included) as it comes, not when the step ends, and first (as step ``loop``) where the
    training settings come from. ``loop.json`` records each parameter's origin and, after the train step,
    what it took from the defaults table and why."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb_dir = Path(notebooks) if notebooks is not None else notebooks_dir()
    paths = {s: nb_dir / f"{s}.ipynb" for s in steps}
    for p in paths.values():
        if not p.is_file():
            raise WorkbenchError(f"notebook {p} not found (the loop runs the notebooks in {nb_dir})")
    declared = {s: notebook_parameters(p) for s, p in paths.items()}
    valid = set().union(*(set(d) for d in declared.values())) - {"out_dir", "workspace"}
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    origins: dict[str, str] = {}
    params = load_params(params_file, quick=quick, overrides=overrides, valid=valid, origins=origins)
    params.setdefault("workspace", str(out / "workspace"))
    params["out_dir"] = str(out)
    if "run" in params:  # a run folder, inside the output folder or the workspace
        params["run"] = resolve_run(params["run"], out=out, workspace=Path(params["workspace"]),
                                    file=str(params_file) if params_file is not None else None)
    if params.get("weights"):  # a local weights file, inside the output folder or the workspace
        params["weights"] = resolve_weights(params["weights"], out=out, workspace=Path(params["workspace"]),
                                            file=str(params_file) if params_file is not None else None)
    result = LoopResult(out=out, params=params, origins={k: origins.get(k, "runner") for k in params})
    record: dict[str, Any] = {"params": params, "origins": result.origins, "versions": _versions(),
                              "steps": result.steps, "status": "running"}
    if on_output and any("epochs" in d for d in declared.values()):  # a step that trains
        on_output("loop", describe_settings(params, result.origins))
    _write_json(out / "loop.json", record)
    try:
        for s in steps:
            given = {k: v for k, v in params.items() if k in declared[s]}
            if on_step:
                on_step(s, "start")
            t0, since = time.perf_counter(), time.time()
            step: dict[str, Any] = {"step": s, "notebook": str(out / f"{s}.ipynb"), "parameters": given}
            # The parameters cell is written here, from repr of the checked values (params.parameters_cell),
            # into the output notebook; papermill executes that notebook in place and parameterizes nothing.
            target = out / f"{s}.ipynb"
            nb = inject_parameters(nbformat.read(str(paths[s]), as_version=4), given)
            nb.metadata["workbench"] = {"notebook": str(paths[s].resolve())}
            nbformat.write(nb, str(target))
            lines = _LineStream(s, on_output) if on_output else None
            try:
                papermill.execute_notebook(
                    _literal_path(target), _literal_path(target), parameters=None, kernel_name="python3",
                    progress_bar=False, cwd=str(out), log_output=False, stdout_file=lines, stderr_file=lines)
            except PapermillExecutionError as e:
                step.update(status="failed", seconds=round(time.perf_counter() - t0, 2), cell=e.exec_count,
                            error=f"{e.ename}: {e.evalue}")
                result.steps.append(step)
                raise StepFailed(s, e.exec_count, e.ename, e.evalue, out) from None
            finally:
                if lines is not None:
                    lines.flush_rest()
            _drop_widget_state(out / f"{s}.ipynb")
            _plotly_offline(out / f"{s}.ipynb")
            chosen = _train_defaults(out, since) if "epochs" in given else None
            if chosen:
                step["defaults"] = result.defaults = record["defaults"] = chosen
            step.update(status="ok", seconds=round(time.perf_counter() - t0, 2))
            result.steps.append(step)
            _write_json(out / "loop.json", record)
            if on_step:
                on_step(s, "done")
        metrics_path = out / "metrics.json"
        if metrics_path.is_file():
            result.metrics = json.loads(metrics_path.read_text())
        record["status"] = "ok"
        record["metrics"] = result.metrics
    except BaseException:
        record["status"] = "failed"
        raise
    finally:
        _write_json(out / "loop.json", record)
        if html:
            _html_report(out, [st["step"] for st in result.steps], ok=record["status"] == "ok")
    return result


def _train_defaults(out: Path, since: float) -> dict[str, Any] | None:
    """What the train step took from the defaults table and why (``train.json``'s ``defaults``), if it says
    (a ``train.json`` older than the step is an earlier loop's)."""
    path = out / "train.json"
    try:
        if path.stat().st_mtime < since - 1:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    chosen = data.get("defaults") if isinstance(data, dict) else None
    return chosen if isinstance(chosen, dict) else None


class _LineStream:
    """What papermill writes a kernel's stream output to (``stdout_file`` / ``stderr_file``): whole lines go
    to ``on_output(step, line)`` as they arrive. A carriage return (a progress bar redrawn) ends a line."""

    def __init__(self, step: str, on_output: Callable[[str, str], None]) -> None:
        self.step, self.on_output, self._rest = step, on_output, ""

    def write(self, text: str) -> int:
        parts = (self._rest + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._rest = parts.pop()
        for line in parts:
            if line.strip():
                self.on_output(self.step, line)
        return len(text)

    def flush(self) -> None:
        pass

    def flush_rest(self) -> None:
        if self._rest.strip():
            self.on_output(self.step, self._rest)
        self._rest = ""


def _drop_widget_state(path: Path) -> None:
    """Remove the saved widget models (plotly's 5 MB bundle per FigureWidget): the static pictures that
    every Workbench widget leaves in its output are what a headless run keeps."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    if nb.metadata.pop("widgets", None) is not None:
        nbformat.write(nb, str(path))


def _html_report(out: Path, steps: list[str], *, ok: bool) -> None:
    """One HTML page with every executed step (code hidden, outputs and static figures kept)."""
    import nbformat
    from nbconvert import HTMLExporter

    merged = nbformat.v4.new_notebook()
    title = "Workbench loop report" + ("" if ok else " (a step failed)")
    merged.cells.append(nbformat.v4.new_markdown_cell(f"# {title}\n\nOutput folder: <code>{_md_text(out)}</code>"))
    for s in steps:
        p = out / f"{s}.ipynb"
        if not p.is_file():
            continue
        nb = nbformat.read(str(p), as_version=4)
        merged.cells.append(nbformat.v4.new_markdown_cell(f"---\n## Step {s}"))
        for c in nb.cells:
            if "parameters" not in c.get("metadata", {}).get("tags", []):
                c["id"] = f"{s}-{c.get('id', len(merged.cells))}"  # unique across the merged steps
                merged.cells.append(c)
        merged.metadata.setdefault("kernelspec", nb.metadata.get("kernelspec", {}))
        merged.metadata.setdefault("language_info", nb.metadata.get("language_info", {}))
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(merged)
    (out / "report.html").write_text(_with_plotly(_no_remote_scripts(body)), encoding="utf-8")


def _md_text(value: object) -> str:
    """Text for a markdown cell: HTML-escaped (nbconvert passes HTML in markdown through) and markdown's
    punctuation backslash-escaped."""
    return escape_html("".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|~" else ch for ch in str(value)))


# A script loaded from another host (plotly.js from cdn.plot.ly in each figure's HTML; require.js and MathJax
# in nbconvert's page): offline it never loads, so nothing may depend on one.
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>", re.IGNORECASE)
# The one plotly.js an executed notebook carries inline (see _plotly_offline); it contains no "</script>".
_INLINE_PLOTLYJS = re.compile(r"<script data-workbench-plotlyjs(?:=\"\")?>.*?</script>", re.DOTALL)


def _plotlyjs_script() -> str:
    from plotly.offline import get_plotlyjs

    return "<script data-workbench-plotlyjs>" + get_plotlyjs().replace("</script>", "<\\/script>") + "</script>"


def _no_remote_scripts(html: str) -> str:
    """``html`` without remote script tags and without the notebooks' inline plotly.js (the report embeds
    its own once, in its head)."""
    return _INLINE_PLOTLYJS.sub("", _REMOTE_SCRIPT.sub("", html))


def _plotly_offline(path: Path) -> None:
    """Make an executed notebook's figures draw offline: the first HTML output that loads plotly.js from a
    CDN gets plotly.js inline instead (once per notebook, ~5 MB), the others lose their remote tag (they
    find ``Plotly`` defined by the first, earlier on the page)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    changed = inlined = False
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if html is None:
                continue
            text = "".join(html) if isinstance(html, list) else str(html)
            first = _REMOTE_SCRIPT.search(text)
            if first is None:
                continue
            head = "" if inlined else _plotlyjs_script()
            inlined = True
            output["data"]["text/html"] = text[:first.start()] + head + _REMOTE_SCRIPT.sub("", text[first.end():])
            changed = True
    if changed:
        nbformat.write(nb, str(path))


def _with_plotly(html: str) -> str:
    """Embed plotly.js once, so the report's figures draw without a network (the figures' own script tags
    point at the CDN, which a closed machine or an archived report cannot reach)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return html
    if "<head>" not in html:
        return html
    script = "<script>" + get_plotlyjs().replace("</script>", "<\\/script>") + "</script>"
    return html.replace("<head>", "<head>\n" + script, 1)


def _run_one(args: tuple[str, str, bool, str | None]) -> tuple[str, str, str]:
    params_file, out, quick, notebooks = args
    try:
        res = run_loop(out, params_file=params_file, quick=quick, notebooks=notebooks)
        return params_file, "ok", str(res.report)
    except WorkbenchError as e:
        return params_file, "failed", str(e)


def run_sweep(params_files: Sequence[str | Path], out: str | Path, *, quick: bool = False, jobs: int = 1,
              notebooks: str | Path | None = None,
              on_done: Callable[[str, str, str], None] | None = None) -> list[tuple[str, str, str]]:
    """Several parameter files, each in its own output folder ``out/<file stem>``; ``jobs`` at a time."""
    from concurrent.futures import ProcessPoolExecutor

    out = Path(out)
    stems = [Path(p).stem for p in params_files]
    if len(set(stems)) != len(stems):
        raise WorkbenchError(f"parameter files need distinct names (their output folders): {', '.join(stems)}")
    nb = str(notebooks) if notebooks is not None else None
    tasks = [(str(p), str(out / Path(p).stem), quick, nb) for p in params_files]
    results = []
    if jobs <= 1:
        for t in tasks:
            r = _run_one(t)
            results.append(r)
            if on_done:
                on_done(*r)
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for r in pool.map(_run_one, tasks):
            results.append(r)
            if on_done:
                on_done(*r)
    return results
