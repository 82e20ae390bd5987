"""``workbench serve``: loopback by default, only the dashboards, remote only with a flag and a token; the
Host allowlist and token rules as pure functions (tests/loop/test_serve_security.py runs real servers)."""

from __future__ import annotations

import socket

import pytest

from workbench.errors import ValidationError
from workbench.loop.serve import check_user, dashboards_dir, serve_command
from workbench.loop.serve_guard import HostAllowlist, RedactingFilter, check_token, read_token, redact


def test_default_is_loopback_and_dashboards_only():
    cmd = serve_command()
    assert cmd[1:3] == ["-m", "workbench.loop.serve_app"]
    assert "--Voila.ip=127.0.0.1" in cmd and not any("token" in a.lower() for a in cmd)
    assert f"--Voila.root_dir={dashboards_dir()}" in cmd
    assert not any("preheat" in a for a in cmd)  # a preheated page shows a stale store
    assert sorted(p.name for p in dashboards_dir().glob("*.ipynb")) == ["annotate.ipynb", "review.ipynb"]


@pytest.mark.parametrize("ip", ["0.0.0.0", "192.168.1.5", "::"])
def test_remote_needs_flag(ip):
    with pytest.raises(ValidationError, match="allow-remote"):
        serve_command(ip=ip)
    cmd = serve_command(ip=ip, allow_remote=True)
    assert f"--Voila.ip={ip}" in cmd


def test_bad_input_refused_with_its_flag():
    for kwargs, flag in (({"ip": "not-an-ip"}, "--ip"), ({"port": 0}, "--port"), ({"max_kernels": 0}, "--max-kernels"),
                         ({"idle_timeout": 1}, "--idle-timeout"), ({"certfile": "c.pem"}, "--keyfile"),
                         ({"allow_hosts": ["a b"]}, "--allow-host"), ({"allow_hosts": ["*"]}, "--allow-host")):
        with pytest.raises(ValidationError, match=flag):
            serve_command(**kwargs)


@pytest.mark.parametrize(
    ("ip", "extra", "allowed", "refused"),
    [
        ("127.0.0.1", (), ["127.0.0.1:8866", "localhost:8866", "LOCALHOST:8866", "[::1]:8866", "localhost",
                           "localhost.:8866"],
         ["evil.example:8866", "evil.example", "127.0.0.1:8867", "localhost:80", "localhost.evil.example:8866",
          "127.0.0.1.nip.io:8866", "", None, "[::1", "localhost:", "localhost:99999", "0x7f000001:8866"]),
        ("::1", (), ["[::1]:8866", "localhost:8866", "127.0.0.1:8866"], ["[::2]:8866", "evil.example:8866"]),
        ("192.168.1.5", ("wb.lab.example", "proxy.example:443"),
         ["192.168.1.5:8866", "wb.lab.example:8866", "wb.lab.example", "proxy.example:443"],
         ["192.168.1.6:8866", "proxy.example:8866", "wb.lab.example:443", "evil.example:8866"]),
        ("0.0.0.0", (), ["10.1.2.3:8866", "[fe80::1]:8866", "localhost:8866", f"{socket.gethostname()}:8866"],
         ["evil.example:8866", "10.1.2.3:9999"]),
    ],
)
def test_host_allowlist(ip, extra, allowed, refused):
    allow = HostAllowlist(ip, 8866, extra)
    for host in allowed:
        assert allow.allows_host(host), host
    for host in refused:
        assert not allow.allows_host(host), host


def test_origin_allowlist():
    allow = HostAllowlist("127.0.0.1", 8866)
    assert allow.allows_origin(None)  # not a browser
    assert allow.allows_origin("http://127.0.0.1:8866") and allow.allows_origin("https://localhost:8866")
    for origin in ("http://evil.example:8866", "null", "file://", "http://127.0.0.1:8867", "ws://127.0.0.1:8866",
                   "http://user@127.0.0.1:8866", "http://127.0.0.1:8866@evil.example", ""):
        assert not allow.allows_origin(origin), origin


def test_token_rules(tmp_path):
    assert check_token("x" * 16, source="WORKBENCH_TOKEN") == "x" * 16
    for bad in ("a", "x" * 15, "with space " * 3, "x" * 513, "tab\there-and-long-enough"):
        with pytest.raises(ValidationError):
            check_token(bad, source="WORKBENCH_TOKEN")
    assert read_token(None, {}) is None
    assert read_token(None, {"WORKBENCH_TOKEN": "y" * 20}) == "y" * 20
    f = tmp_path / "t"
    f.write_text("z" * 20 + "\n")
    f.chmod(0o600)
    assert read_token(f, {}) == "z" * 20
    with pytest.raises(ValidationError, match="not both"):
        read_token(f, {"WORKBENCH_TOKEN": "y" * 20})
    f.write_text("z" * 20 + "\nsecond line\n")
    with pytest.raises(ValidationError, match="one line"):
        read_token(f, {})
    with pytest.raises(ValidationError, match="--token-file"):
        read_token(tmp_path / "missing", {})


def test_redaction():
    secret = "s3cret-s3cret-s3cret"
    line = f"403 GET /voila/api/contents?a=1&token={secret}&b=2 (1.2.3.4); Token={secret[:5]} {secret}"
    hidden = redact(line, secret)
    assert secret not in hidden and secret[:5] not in hidden and "a=1" in hidden and "b=2" in hidden
    import logging

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "url %s", (f"/x?token={secret}",), None)
    RedactingFilter(secret).filter(record)
    assert secret not in record.getMessage()


def test_user_names():
    assert check_user("  Ada Lovelace ") == "Ada Lovelace"
    assert check_user("李雷") == "李雷"
    for bad in ("", "x" * 65, "evil\u202eresu", "a\nb", "a\x1b[31mb", "a\u200bb"):
        with pytest.raises(ValidationError, match="--user"):
            check_user(bad)
