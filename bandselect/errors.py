"""One exception hierarchy for bandselect.

Every message says what was expected, what was found and the one-line fix. Errors caused by the
caller's input are also ``ValueError`` so generic handlers keep working.
"""

from __future__ import annotations

import copy

#: The longest ``expected``/``found`` text a message carries: a message never echoes unbounded input.
MAX_PART = 600


def bounded(text: object, limit: int = MAX_PART) -> str:
    """``str(text)``, cut to ``limit`` characters with the cut said (``... [12345 characters]``)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... [{len(text)} characters]"


def format_message(what: str, *, expected: object, found: object, fix: str) -> str:
    """Build the house error message: ``what: expected ..., found .... Fix: ...``."""
    return f"{bounded(what)}: expected {bounded(expected)}, found {bounded(found)}. Fix: {fix}"


class BandSelectError(Exception):
    """Base class of every error raised by bandselect."""

    def __init__(
        self,
        what: str,
        *,
        expected: object | None = None,
        found: object | None = None,
        fix: str | None = None,
    ) -> None:
        if expected is not None or found is not None or fix is not None:
            message = format_message(what, expected=expected, found=found, fix=fix or "see the documentation")
        else:
            message = what
        super().__init__(message)
        self.expected = expected
        self.found = found
        self.fix = fix


def with_context(error: BandSelectError, context: str) -> BandSelectError:
    """The same error (same type and fields) with its message prefixed by ``context``.

    For layers that know what the raiser did not: which pipeline node, which file, which acquisition.
    """
    located = copy.copy(error)
    located.args = (f"{context}: {error}",)
    return located


class InputError(BandSelectError, ValueError):
    """The caller's input is at fault (data, arguments, files)."""


class ResourceError(BandSelectError, RuntimeError):
    """The environment is at fault, not the input: a server unreachable, the disk full, no GPU.

    The command line ends with exit code 1 for these (2 for every other bandselect error).
    """


class ShapeError(InputError):
    """An array has the wrong rank, shape or channel count."""


class DTypeError(InputError, TypeError):
    """An array or file has a dtype bandselect cannot use."""


class NonFiniteError(InputError):
    """NaN or Inf values where finite values are required."""


class WavelengthError(InputError):
    """Wavelengths are missing, mismatched, non-monotonic, or a target lies outside the sensor range."""


class ConfigError(InputError):
    """A configuration (constructor arguments, YAML, pydantic model) is invalid."""


class FileFormatError(InputError):
    """A file is missing, unreadable, truncated, or of an unknown type."""


class GeoreferenceError(InputError):
    """A CRS or transform is unreadable, or acquisitions of different CRSs meet in one campaign."""


class StoreError(BandSelectError):
    """A campaign store is missing, not a campaign store, or inconsistent."""


class LabelError(InputError):
    """A label mask is missing, of the wrong shape, or has a class absent."""


class NotFittedError(BandSelectError, RuntimeError):
    """A node or estimator was used before its statistical initialisation."""


class PipelineError(BandSelectError):
    """A pipeline is inconsistent: unknown node/port, cycle, incompatible connection."""


class TrainingError(BandSelectError, RuntimeError):
    """Training cannot proceed (no trainable parameters, NaN loss, missing loss nodes)."""
