"""Typed exceptions. Every error says what was wrong, where (file, record id, field) and what to do.

Library code raises these; the CLI turns them into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "NotFoundError",
    "AlreadyExistsError",
    "ValidationError",
    "ImportFormatError",
    "ImageError",
    "UnsafePathError",
    "TooFewExamplesError",
    "ConflictError",
    "EditConflictError",
    "LimitError",
    "UnknownNameError",
    "MissingExtraError",
    "EXTRAS",
    "missing_extra",
]


# A hostile input can put megabytes, or line breaks, into a value the message quotes (a file name, a folder
# name, a nested YAML list): every part of a ValidationError's message is kept on one line and cut to these
# lengths, so the message stays one short line.
MAX_PART_CHARS = 500
MAX_DETAIL_CHARS = 800


def _bounded(text: str, limit: int) -> str:
    """``text`` on one line (line breaks shown escaped) and at most about ``limit`` characters."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... [{len(text)} characters in all]"


class WorkbenchError(Exception):
    """Base class of every error Workbench raises on purpose."""


class NotFoundError(WorkbenchError, LookupError):
    """A dataset, example, annotation, directory, snapshot or run does not exist."""


class AlreadyExistsError(WorkbenchError):
    """Something with that name already exists."""


class ValidationError(WorkbenchError, ValueError):
    """A record failed validation. Carries the place: file, record id and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: object | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.record = record
        self.field = field
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(_bounded(str(self.file), MAX_PART_CHARS))
        if self.record is not None:
            where.append(f"record {_bounded(str(self.record), MAX_PART_CHARS)}")
        if self.field is not None:
            where.append(f"field '{_bounded(str(self.field), MAX_PART_CHARS)}'")
        detail = _bounded(self.detail, MAX_DETAIL_CHARS)
        return f"{': '.join(where)}: {detail}" if where else detail

    def located(self, *, file: str | None = None, record: object | None = None,
                field: str | None = None) -> ValidationError:
        """A copy of this error with missing location parts filled in."""
        err = type(self)(
            self.detail,
            file=self.file if self.file is not None else file,
            record=self.record if self.record is not None else record,
            field=self.field if self.field is not None else field,
        )
        return err


class ImportFormatError(ValidationError):
    """An import source is malformed (bad JSON/XML/TXT, missing fields, unknown ids...)."""


class ImageError(ValidationError):
    """An image file is corrupt, truncated, not an image, or a decompression bomb."""


class UnsafePathError(ValidationError):
    """A path escapes the folder it must stay in (`..`, absolute path, symlink out)."""


class TooFewExamplesError(WorkbenchError):
    """Not enough examples to hand out a training set."""


class ConflictError(WorkbenchError):
    """Two writers changed the same thing; the message says which and what to do."""


class EditConflictError(ConflictError):
    """An edit or delete was made from a stale view of an annotation: someone changed or deleted it since
    the version the editor read. Nothing was written; reload the annotation and redo the edit on it."""

    def __init__(self, annotation_id: int, *, expected: int | None, current: int | None, by: str = "",
                 dataset: str = "") -> None:
        self.annotation_id = annotation_id
        self.expected = expected
        self.current = current
        self.by = by
        where = f"dataset '{_bounded(dataset, MAX_PART_CHARS)}': " if dataset else ""
        if current is None:
            what = "was deleted"
        elif expected is None:
            who = f" by {_bounded(by, MAX_PART_CHARS)}" if by else ""
            what = f"was added{who} (version {current})"
        else:
            who = f" by {_bounded(by, MAX_PART_CHARS)}" if by else ""
            what = f"was changed{who} (now version {current}, you edited version {expected})"
        super().__init__(f"{where}annotation {annotation_id} {what} since you loaded it; nothing was "
                         "overwritten: reload it and redo your change if it still applies")


class LimitError(ValidationError):
    """A size limit would be passed (classes per dataset, shapes per image...); nothing was written."""


class UnknownNameError(WorkbenchError, KeyError):
    """A name looked up in a registry (format, model, preset...) does not exist; lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {kind} '{name}'; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


# The optional libraries and the extra (pyproject.toml) that installs each.
EXTRAS = {
    **dict.fromkeys(("torch", "torchvision", "albumentations", "onnx", "onnxruntime", "mlxtend"), "train"),
    **dict.fromkeys(("ipywidgets", "ipycanvas", "plotly", "anywidget", "ipykernel", "IPython"), "widgets"),
    **dict.fromkeys(("papermill", "nbconvert", "nbformat", "voila", "jupyterlab", "jupyter_server"), "notebooks"),
}


class MissingExtraError(WorkbenchError, ImportError):
    """An optional library is not installed; says which extra installs it."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(f"{module} is not installed: pip install 'workbench[{extra}]'")


def missing_extra(exc: ModuleNotFoundError) -> MissingExtraError | None:
    """The :class:`MissingExtraError` for ``exc`` when the missing module belongs to an extra, else None."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    return MissingExtraError(top, extra) if extra else None
