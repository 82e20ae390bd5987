"""Text that came from data, made safe where it is shown: HTML, terminals, and names checked on creation.

Names, file names, run ids, authors and error messages are data. Every place that builds HTML (the widgets,
the loop's report) passes them through :func:`escape_html` (:func:`escape_plotly` for plotly's titles, tick
labels and hover templates); every place the CLI prints stored text goes through :func:`echo`
(:func:`terminal_safe`); every name a user creates (dataset, class, directory) goes through
:func:`check_name`. This module sits next to :mod:`workbench.errors`, below every layer, and imports nothing
heavy.
"""

from __future__ import annotations

import html
import unicodedata

from .errors import ValidationError

__all__ = [
    "BIDI_CONTROLS",
    "is_surrogate",
    "MAX_NAME_CHARS",
    "MAX_TEXT_CHARS",
    "check_author",
    "check_name",
    "check_text",
    "echo",
    "escape_html",
    "escape_plotly",
    "name_problem",
    "terminal_safe",
]

MAX_NAME_CHARS = 200  # dataset, class, directory names
MAX_TEXT_CHARS = 2000  # snapshot messages and other free text

# Explicit embeddings, overrides and isolates (U+202A-202E, U+2066-2069): they make shown text read in an
# order other than the stored one ("Trojan Source"); marks (U+200E/F, U+061C) are in the same family.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def escape_html(value: object) -> str:
    """``value`` as text inside HTML (element content or a quoted attribute): ``& < > " '`` escaped.

    The one helper every widget and report uses for anything that came from data (names, ids, file names,
    error messages).
    """
    return html.escape("" if value is None else str(value), quote=True)


def escape_plotly(value: object) -> str:
    """``value`` as literal text in a plotly title, legend entry or hover template: :func:`escape_html`, with
    the entities plotly decodes (numeric for quotes) and ``%`` as ``&#37;`` so no ``%{...}`` in a name is
    taken for a template field."""
    return escape_html(value).replace("&quot;", "&#34;").replace("%", "&#37;")


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


def is_surrogate(ch: str) -> bool:
    """A lone surrogate (U+D800-U+DFFF): no file name and no UTF-8 file can hold it (YAML reads JSON's
    escape of one astral character, two ``\\u`` escapes, as two of them)."""
    return "\ud800" <= ch <= "\udfff"


def name_problem(value: object, *, max_chars: int = MAX_NAME_CHARS) -> str | None:
    """Why ``value`` cannot be a name (None when it can): a non-empty string without surrounding spaces,
    control characters (NUL, ESC, line breaks, tabs...), bidi controls or lone surrogates, at most ``max_chars``
    long."""
    if not isinstance(value, str) or not value.strip():
        return f"must be a non-empty string, got {value!r}"[:300]
    if len(value) > max_chars:
        return f"is {len(value)} characters long; at most {max_chars}"
    if value != value.strip():
        return f"{value!r} has surrounding spaces"
    for ch in value:
        if _is_control(ch):
            return f"{_shown(value)} holds the control character U+{ord(ch):04X}"
        if ch in BIDI_CONTROLS:
            return f"{_shown(value)} holds the bidi control U+{ord(ch):04X} (it reorders how text is shown)"
        if is_surrogate(ch):
            return f"{_shown(value)} holds U+{ord(ch):04X}, a lone surrogate (not text)"
    return None


def check_name(value: object, *, what: str, field: str = "name", max_chars: int = MAX_NAME_CHARS) -> str:
    """``value`` when it is a valid name (see :func:`name_problem`); else a ValidationError naming ``field``."""
    problem = name_problem(value, max_chars=max_chars)
    if problem is not None:
        raise ValidationError(f"{what} name {problem}", field=field)
    return value  # type: ignore[return-value]


def check_author(value: object, *, field: str = "author") -> str:
    """An author (a person's name, ``import``, ``run:<id>``): empty for "not said", else a name as
    :func:`check_name` wants it once surrounding spaces are set aside (imported files may pad names), so no
    control or bidi character and at most 200 characters; a ValidationError naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise ValidationError(f"author must be a string, got {type(value).__name__}", field=field)
    if value and value.strip():
        problem = name_problem(value.strip())
        if problem is not None:
            raise ValidationError(f"author name {problem}", field=field)
    elif value:
        raise ValidationError(f"author name {value!r} is only spaces", field=field)
    return value


def check_text(value: object, *, what: str, field: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Free text (a snapshot message, an author): a string of at most ``max_chars`` characters without
    control characters other than line breaks and tabs, and without bidi controls."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}", field=field)
    if len(value) > max_chars:
        raise ValidationError(f"{what} is {len(value)} characters long; at most {max_chars}", field=field)
    for ch in value:
        if (_is_control(ch) and ch not in "\n\t") or ch in BIDI_CONTROLS:
            raise ValidationError(f"{what} {_shown(value)} holds the character U+{ord(ch):04X}", field=field)
        if is_surrogate(ch):
            raise ValidationError(f"{what} {_shown(value)} holds U+{ord(ch):04X}, a lone surrogate (not text)",
                                  field=field)
    return value


def terminal_safe(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` fit to print on a terminal: every control character (ESC, so no escape sequence can act;
    NUL, BEL, CR, C1 controls...) and bidi control shown as ``\\xNN`` / ``\\uNNNN``, so the stored text stays
    visible and inert. Line breaks are kept only when ``keep_newlines``."""
    out = []
    for ch in "" if text is None else str(text):
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif _is_control(ch) or ch in BIDI_CONTROLS:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _shown(value: str) -> str:
    """A name quoted for an error message: control characters visible, cut to a readable length."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of :func:`terminal_safe` text (line breaks kept): what the CLI prints stored text with."""
    import click

    click.echo(terminal_safe(message, keep_newlines=True), err=err, nl=nl)
