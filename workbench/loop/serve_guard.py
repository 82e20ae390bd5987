"""What ``workbench serve`` lets in: the Host and Origin allowlist, the token's rules, the log's redaction.

Pure functions and small records, no Voilà or tornado import: ``serve_app`` applies them to every request.

- **Host** (DNS rebinding): a page on ``evil.example`` whose name the attacker re-points to 127.0.0.1 reaches a
  loopback server with ``Host: evil.example:PORT``. Only the address the server listens on (any IP literal
  when it listens on every interface: a rebinding page always has a name, never an address), ``localhost`` /
  ``127.0.0.1`` / ``[::1]`` when it listens on loopback, the machine's own names when it listens on every
  interface, and the names given with ``--allow-host`` pass; the port, when the Host names one, must be the
  one the server listens on (``--allow-host name:port`` names another, for a proxy or a port mapping).
- **Origin** (websockets): a browser always sends one; its host part must pass the same allowlist.
- **Token**: at least ``MIN_TOKEN_CHARS`` characters, printable ASCII, read from ``WORKBENCH_TOKEN`` or a file,
  never from the command line (``ps`` shows every user the arguments of every process).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ValidationError

__all__ = [
    "MIN_TOKEN_CHARS",
    "TOKEN_ENV",
    "HostAllowlist",
    "RedactingFilter",
    "check_token",
    "is_loopback",
    "read_token",
    "redact",
]

TOKEN_ENV = "WORKBENCH_TOKEN"
MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 512
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("", "0.0.0.0", "::")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def is_loopback(ip: str) -> bool:
    """Whether listening on ``ip`` keeps the server to this machine (``localhost`` counts)."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        raise ValidationError(f"not an IP address: {ip!r}", field="--ip") from None


def _split_host(host: str) -> tuple[str, int | None] | None:
    """``name[:port]`` / ``[v6][:port]`` as (lower-case name without brackets, port); None if malformed."""
    host = host.strip().lower()
    if not host or len(host) > 300:
        return None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[1:end], host[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif host.count(":") == 1:
        name, port_text = host.split(":")
    elif ":" in host:  # a bare IPv6 address has no room for a port
        name, port_text = host, None
    else:
        name, port_text = host, None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        return name.rstrip("."), int(port_text)
    return name.rstrip("."), None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _canonical(name: str) -> str:
    return str(ipaddress.ip_address(name)) if _is_ip(name) else name


@dataclass(frozen=True)
class HostAllowlist:
    """The Host names (and ports) a server listening on ``ip:port`` answers; see the module notes."""

    ip: str
    port: int
    extra: tuple[str, ...] = ()
    names: frozenset[str] = field(init=False)
    named_ports: frozenset[tuple[str, int]] = field(init=False)
    any_ip: bool = field(init=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        named_ports: set[tuple[str, int]] = set()
        wildcard = self.ip in _WILDCARDS
        if not wildcard:
            names.add(_canonical(self.ip.lower()))
        if wildcard or is_loopback(self.ip):
            names.update(_LOOPBACK_NAMES)
        if wildcard:
            for own in {socket.gethostname(), socket.getfqdn()}:
                if own:
                    names.add(own.lower().rstrip("."))
        for entry in self.extra:
            parsed = _split_host(entry)
            if parsed is None or not (_is_ip(parsed[0]) or _NAME.match(parsed[0])):
                raise ValidationError(f"not a host name or address: {entry!r}", field="--allow-host")
            name, port = _canonical(parsed[0]), parsed[1]
            if port is None:
                names.add(name)
            else:
                named_ports.add((name, port))
        object.__setattr__(self, "names", frozenset(names))
        object.__setattr__(self, "named_ports", frozenset(named_ports))
        object.__setattr__(self, "any_ip", wildcard)

    def allows_host(self, host: str | None) -> bool:
        """Whether a request's ``Host`` header names this server."""
        if not host:
            return False
        parsed = _split_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if _is_ip(name):
            name = _canonical(name)
        if port is not None and (name, port) in self.named_ports:
            return True
        if port is not None and port != self.port:
            return False
        return name in self.names or (self.any_ip and _is_ip(name))

    def allows_origin(self, origin: str | None) -> bool:
        """Whether a websocket's ``Origin`` is a page of this server (no Origin: not a browser, allowed)."""
        if origin is None:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
            return False
        return self.allows_host(parts.netloc)


def check_token(token: str, *, source: str) -> str:
    """``token`` if it is long enough and printable ASCII, else a ValidationError naming ``source``."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValidationError(
            f"the token is {len(token)} characters; at least {MIN_TOKEN_CHARS} are needed "
            "(python -c 'import secrets; print(secrets.token_urlsafe(24))' makes one)", field=source)
    if len(token) > MAX_TOKEN_CHARS or not all(33 <= ord(c) < 127 for c in token):
        raise ValidationError(
            f"the token must be at most {MAX_TOKEN_CHARS} printable ASCII characters without spaces",
            field=source)
    return token


def read_token(token_file: str | Path | None, environ: dict[str, str] | None = None) -> str | None:
    """The token from ``--token-file`` (one line; the file must not be readable by others) or from
    ``WORKBENCH_TOKEN``; None when neither is given. Both given is an error (which one would win?)."""
    env = os.environ if environ is None else environ
    from_env = env.get(TOKEN_ENV)
    if token_file is not None:
        if from_env:
            raise ValidationError(f"give the token with --token-file or {TOKEN_ENV}, not both",
                                  field="--token-file")
        path = Path(token_file)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValidationError(f"cannot read the token: {e}", file=str(path), field="--token-file") from None
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValidationError("the token file is readable by other users; chmod 600 it",
                                  file=str(path), field="--token-file")
        lines = text.splitlines()
        if len(lines) != 1:
            raise ValidationError(f"the token file must hold one line, it holds {len(lines)}",
                                  file=str(path), field="--token-file")
        return check_token(lines[0].strip(), source="--token-file")
    if from_env is not None:
        return check_token(from_env, source=TOKEN_ENV)
    return None


_TOKEN_PARAM = re.compile(r"(?i)(token=)[^&\s\"']*")


def redact(text: str, token: str | None) -> str:
    """``text`` with every ``token=...`` query value and every occurrence of ``token`` itself hidden."""
    text = _TOKEN_PARAM.sub(r"\1[hidden]", text)
    if token:
        text = text.replace(token, "[hidden]")
    return text


class RedactingFilter(logging.Filter):
    """A log filter (put it on the handlers) that hides the token and ``token=`` values in every record."""

    def __init__(self, token: str | None) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact(message, self.token)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True
