"""YAML documents that must be a mapping, with house errors (used by pipeline and flow configs).

Bottom layer (like ``errors.py``): imports nothing of bandselect but :mod:`bandselect.errors`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bandselect.errors import ConfigError, FileFormatError, InputError


def parse_yaml_mapping(
    text: str,
    what: str,
    *,
    expected: str,
    fix: str,
    yaml_fix: str,
    yaml_what: str | None = None,
    yaml_error: type[InputError] = ConfigError,
    describe: Callable[[yaml.YAMLError], str] = str,
) -> dict[str, Any]:
    """``yaml.safe_load(text)``, which must give a mapping.

    Parameters
    ----------
    text
        The YAML text.
    what
        The document, as named in the :class:`ConfigError` raised when it is not a mapping.
    expected, fix
        That error's ``expected`` and ``fix``.
    yaml_fix
        ``fix`` of the error raised when the text is not YAML.
    yaml_what, yaml_error, describe
        That error's ``what`` (default ``what``), class (default :class:`ConfigError`) and how the
        parser's exception is shown as ``found`` (default ``str``).
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise yaml_error(
            what if yaml_what is None else yaml_what,
            expected="valid YAML",
            found=describe(error),
            fix=yaml_fix,
        ) from error
    if not isinstance(document, dict):
        raise ConfigError(what, expected=expected, found=type(document).__name__, fix=fix)
    return document


def read_yaml_source(
    source: str | os.PathLike[str], what: str, *, error: type[InputError] = FileFormatError, fix: str
) -> tuple[str, str]:
    """The text of a YAML file or YAML text itself, and how to name it in errors (the path, or "YAML text").

    ``source`` is a path when it is a ``PathLike``, or a one-line string that ends in ``.yaml``/``.yml``
    or names an existing file; anything else is the YAML text.

    Raises
    ------
    InputError
        (``error``) The path names no file.
    """
    text = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    is_path = isinstance(source, os.PathLike) or (
        "\n" not in text
        and not text.lstrip().startswith("{")
        and (text.endswith((".yaml", ".yml")) or Path(text).is_file())
    )
    if not is_path:
        return text, "YAML text"
    path = Path(text)
    if not path.is_file():
        raise error(
            f"cannot read {what} {str(path)!r}",
            expected="an existing YAML file",
            found="no such file",
            fix=fix,
        )
    return path.read_text(encoding="utf-8"), str(path)
