"""``workbench serve``: loopback by default, only the dashboards, remote only with a flag and a token."""

from __future__ import annotations

import pytest

from workbench.errors import ValidationError
from workbench.loop.serve import dashboards_dir, serve_command


def test_default_is_loopback_and_dashboards_only():
    cmd, token = serve_command()
    assert "--Voila.ip=127.0.0.1" in cmd and token is None
    assert f"--Voila.root_dir={dashboards_dir()}" in cmd
    assert sorted(p.name for p in dashboards_dir().glob("*.ipynb")) == ["annotate.ipynb", "review.ipynb"]


@pytest.mark.parametrize("ip", ["0.0.0.0", "192.168.1.5", "::"])
def test_remote_needs_flag(ip):
    with pytest.raises(ValidationError, match="allow-remote"):
        serve_command(ip=ip)
    cmd, token = serve_command(ip=ip, allow_remote=True)
    assert token and f"--token={token}" in cmd


def test_remote_keeps_given_token_and_bad_input_refused():
    cmd, token = serve_command(ip="0.0.0.0", allow_remote=True, token="s3cret")
    assert token == "s3cret" and "--token=s3cret" in cmd
    with pytest.raises(ValidationError):
        serve_command(ip="not-an-ip")
    with pytest.raises(ValidationError):
        serve_command(port=0)
