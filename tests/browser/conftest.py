"""Fixtures of the dashboard and Lab tests: one Chromium and one server per module, and the timings report.

A test module defines a module-scoped ``workbench_home`` fixture (the store the dashboards open); the
``dashboards`` fixture serves ``dashboards/`` over it with ``workbench serve``'s Voilà command line.
"""

from __future__ import annotations

import pytest

from tests.browser import (
    TIMINGS,
    Server,
    artifacts_dir,
    chromium,
    dashboards_command,
    free_port,
    missing,
    serve,
    server_env,
)


@pytest.fixture(scope="module")
def browser():
    reason = missing()
    if reason:
        pytest.skip(reason)
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def dashboards(browser, workbench_home, tmp_path_factory, request) -> Server:
    """Voilà serving the dashboards over ``workbench_home``; stopped (by PID) after the module. A module's
    ``DASHBOARD_ENV`` dict adds to the server's environment."""
    reason = missing("voila")
    if reason:
        pytest.skip(reason)
    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with serve(
        dashboards_command(port),
        port=port,
        log=log,
        env=server_env(WORKBENCH_HOME=str(workbench_home), **getattr(request.module, "DASHBOARD_ENV", {})),
        timeout_s=90,
    ) as server:
        yield server
    (artifacts_dir() / f"voila-{workbench_home.name}.log").write_text(log.read_text(errors="replace"))


def pytest_sessionfinish(session, exitstatus):
    if TIMINGS.rows:
        TIMINGS.write(artifacts_dir() / "timings.json")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if TIMINGS.rows:
        terminalreporter.section("browser timings (seconds)")
        for line in TIMINGS.table():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"written to {artifacts_dir() / 'timings.json'}")
