"""The base of every settings model a user fills in: flow configs, training, comparison, export.

Prefect's run form, ``bandselect run --help``-style listings and the JSON schema of a deployment show
each model's description and each field's description. Those come from the docstrings the code
already has, made plain: the summary of the class docstring (no numpy sections), and for each field
the text of its entry in the docstring's ``Attributes`` section unless the field has its own
``description``. Sphinx roles (``:func:`x```) and literals (````x````) become their plain text, so
the form never shows reST markup.

Examples
--------
>>> class Window(SettingsModel):
...     '''A window of the spectrum (see :func:`bandselect.spectral.validate_wavelengths`).
...
...     Attributes
...     ----------
...     start_nm
...         First wavelength, ``None`` for the sensor's first.
...     '''
...     start_nm: float | None = None
>>> schema = Window.model_json_schema()
>>> schema["description"]
'A window of the spectrum (see bandselect.spectral.validate_wavelengths).'
>>> schema["properties"]["start_nm"]["description"]
"First wavelength, None for the sensor's first."
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["SettingsModel", "docstring_fields", "plain_text"]

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(~?)([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]*)``")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def plain_text(text: str) -> str:
    """``text`` without reST markup, its lines joined (paragraphs kept apart by a blank line)."""

    def role(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        return target.rsplit(".", 1)[-1] if match.group(1) else target

    text = _LITERAL.sub(r"\1", _ROLE.sub(role, text))
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def _sections(doc: str) -> tuple[str, dict[str, list[str]]]:
    """The summary (text before the first numpy section) and each section's lines."""
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = summary
    index = 0
    while index < len(lines):
        if index + 1 < len(lines) and lines[index].strip() and _UNDERLINE.match(lines[index + 1]):
            current = sections.setdefault(lines[index].strip(), [])
            index += 2
            continue
        current.append(lines[index])
        index += 1
    return "\n".join(summary), sections


def docstring_fields(doc: str | None) -> tuple[str, dict[str, str]]:
    """The plain summary of a numpy-style docstring and its ``Attributes`` entries by name."""
    if not doc:
        return "", {}
    summary, sections = _sections(doc)
    entries: dict[str, list[str]] = {}
    names: list[str] = []
    for line in sections.get("Attributes", []):
        if line and not line[0].isspace():
            # ``a, b : type`` documents several fields with one text (numpydoc's grouped entries).
            names = [part.strip() for part in line.split(":", 1)[0].split(",") if part.strip()]
            for name in names:
                entries[name] = []
        else:
            for name in names:
                entries[name].append(line)
    return plain_text(summary), {key: plain_text("\n".join(text)) for key, text in entries.items()}


def _form_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    summary, fields = docstring_fields(model.__doc__)
    for base in model.__mro__[1:]:  # a subclass documents what it changes; its bases the rest
        if issubclass(base, SettingsModel) and base is not SettingsModel:
            fields = {**docstring_fields(base.__doc__)[1], **fields}
    if summary:
        schema["description"] = summary
    else:
        schema.pop("description", None)
    for name, prop in schema.get("properties", {}).items():
        if "description" in prop:
            prop["description"] = plain_text(prop["description"])
        elif fields.get(name):
            prop["description"] = fields[name]


class SettingsModel(BaseModel):
    """Settings a user fills in: unknown keys refused, plain-text descriptions in the JSON schema."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_form_schema)
