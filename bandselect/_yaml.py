"""YAML documents that must be a mapping, with house errors (used by pipeline and flow configs).

Every config YAML goes through :func:`load_yaml_text`: ``yaml.safe_load`` semantics with limits, because
configs come from users and deployments. A document is at most :data:`MAX_YAML_BYTES` long and expands
to at most :data:`MAX_YAML_NODES` nodes once aliases are followed (a 1 KB "billion laughs" document of
nested aliases would otherwise expand to gigabytes), and recursive aliases are refused. Syntax errors
name the file, line and column.

Bottom layer (like ``errors.py``): imports nothing of bandselect but :mod:`bandselect.errors`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from bandselect.errors import ConfigError, FileFormatError, InputError

#: The longest config document accepted (configs are small; a larger one is a mistake or an attack).
MAX_YAML_BYTES = 1 << 20
#: The most nodes a document may expand to with its aliases followed.
MAX_YAML_NODES = 200_000


def _expanded_size(root: yaml.Node, where: str, yaml_error: type[InputError]) -> int:
    """Nodes of the document with every alias expanded, counted without expanding (memoised per node)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            mark = node.start_mark
            raise yaml_error(
                f"{where}: line {mark.line + 1}, column {mark.column + 1}",
                expected="YAML without recursive aliases",
                found="an alias that refers to a node containing itself",
                fix="write the value out instead of referring to its own anchor",
            )
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        on_path.discard(key)
        sizes[key] = total
        if total > MAX_YAML_NODES:
            raise yaml_error(
                where,
                expected=f"a config of at most {MAX_YAML_NODES:,} values once aliases are expanded",
                found=f"more than {MAX_YAML_NODES:,} (anchors and aliases nested inside each other)",
                fix="write the config out without nested aliases",
            )
        return total

    return size(root)


def _syntax_error(
    error: yaml.YAMLError, where: str, yaml_error: type[InputError], fix: str, text: str
) -> InputError:
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML forbids, by offset
        before = text[: error.position]
        line, column = before.count("\n"), error.position - (before.rfind("\n") + 1)
        found = f"the character {error.character!r}, which YAML does not allow"
        return yaml_error(
            f"{where}: line {line + 1}, column {column + 1}", expected="valid YAML", found=found, fix=fix
        )
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    position = "" if mark is None else f": line {mark.line + 1}, column {mark.column + 1}"
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    found = f"{problem} ({context})" if context else str(problem)
    return yaml_error(f"{where}{position}", expected="valid YAML", found=found, fix=fix)


def load_yaml_text(
    text: str, where: str, *, yaml_error: type[InputError] = ConfigError, fix: str = "fix the YAML"
) -> Any:
    r"""``yaml.safe_load(text)`` within :data:`MAX_YAML_BYTES` and :data:`MAX_YAML_NODES`.

    Parameters
    ----------
    text
        The YAML text.
    where
        The document as errors name it (a path, or "YAML text").
    yaml_error, fix
        The class and ``fix`` of the errors raised.

    Raises
    ------
    InputError
        (``yaml_error``) Too long, too many values with aliases expanded, recursive aliases, a
        syntax error (with line and column) or a tag ``safe_load`` does not know.

    Examples
    --------
    >>> load_yaml_text("a: &x [1, 2]\nb: *x", "YAML text")
    {'a': [1, 2], 'b': [1, 2]}
    >>> bomb = "a: &a [x, x]\n" + "".join(f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}]\n" for p, n in
    ...     zip("abcdefghijk", "bcdefghijkl"))
    >>> try:
    ...     load_yaml_text(bomb, "bomb.yaml")
    ... except ConfigError as error:
    ...     print(str(error)[:80])
    bomb.yaml: expected a config of at most 200,000 values once aliases are expanded
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_YAML_BYTES:
        raise yaml_error(
            where,
            expected=f"a YAML config of at most {MAX_YAML_BYTES:,} bytes",
            found=f"{size:,} bytes",
            fix="configs are small: pass data (wavelength lists, masks) as files, not inline",
        )
    try:
        loader = yaml.SafeLoader(text)  # checks the characters first (ReaderError)
    except yaml.reader.ReaderError as error:
        raise _syntax_error(error, where, yaml_error, fix, text) from error
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _expanded_size(root, where, yaml_error)
        return loader.construct_document(root)
    except yaml.YAMLError as error:
        raise _syntax_error(error, where, yaml_error, fix, text) from error
    finally:
        loader.dispose()


def parse_yaml_mapping(
    text: str,
    what: str,
    *,
    expected: str,
    fix: str,
    yaml_fix: str,
    yaml_what: str | None = None,
    yaml_error: type[InputError] = ConfigError,
) -> dict[str, Any]:
    """:func:`load_yaml_text`, which must give a mapping.

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
    yaml_what, yaml_error
        That error's ``what`` (default ``what``; line and column are added) and class (default
        :class:`ConfigError`).
    """
    document = load_yaml_text(
        text, what if yaml_what is None else yaml_what, yaml_error=yaml_error, fix=yaml_fix
    )
    if not isinstance(document, dict):
        raise ConfigError(what, expected=expected, found=type(document).__name__, fix=fix)
    return document


def is_yaml_path(source: str | os.PathLike[str]) -> bool:
    """Whether :func:`read_yaml_source` takes ``source`` as a file's path (else as YAML text itself)."""
    if isinstance(source, os.PathLike):
        return True
    text = str(source)
    return (
        "\n" not in text
        and not text.lstrip().startswith("{")
        and (text.endswith((".yaml", ".yml")) or Path(text).is_file())
    )


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
    if not is_yaml_path(source):
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
