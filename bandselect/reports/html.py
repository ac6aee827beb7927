"""A single self-contained HTML page from headings, paragraphs, tables and PNG images.

The CLI's ``bandselect report RUN_ID`` fetches a run's artifacts and calls :func:`write_html_report`;
this module knows nothing of MLflow. All text is escaped with :func:`html.escape`; images are
embedded as base64 data URIs (default) or linked relative to the page.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bandselect.errors import FileFormatError, InputError
from bandselect.render import atomic_path

__all__ = [
    "ReportImage",
    "ReportSection",
    "ReportTable",
    "render_html_report",
    "table_html",
    "write_html_report",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { border-bottom: 2px solid #0072B2; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; color: #0b4f7c; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .9rem; color: #555; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
.table-wrap { overflow-x: auto; }  /* a wide leaderboard scrolls in its box, not the whole page */
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f4f8; }
"""


@dataclass(frozen=True)
class ReportImage:
    """A PNG file shown in a section.

    Parameters
    ----------
    path
        The PNG file.
    caption
        Text under the image.
    embed
        ``True``: inline as a base64 data URI (the page stands alone). ``False``: link the file by a
        path relative to the page (the page and the PNG must travel together).
    """

    path: str | os.PathLike[str]
    caption: str = ""
    embed: bool = True


@dataclass(frozen=True)
class ReportTable:
    """A table: column names and rows of cells (floats are shown with 4 significant digits)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""


@dataclass(frozen=True)
class ReportSection:
    """One section of the page: a heading, then paragraphs, tables and images in that order."""

    heading: str
    paragraphs: Sequence[str] = field(default_factory=tuple)
    tables: Sequence[ReportTable] = field(default_factory=tuple)
    images: Sequence[ReportImage] = field(default_factory=tuple)


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{_escape('' if value is None else value)}</td>"
    if isinstance(value, int):
        return f'<td class="number">{value}</td>'
    if isinstance(value, float):
        text = f"{value:.4g}" if math.isfinite(value) else str(value)
        return f'<td class="number">{_escape(text)}</td>'
    return f"<td>{_escape(value)}</td>"


def table_html(table: ReportTable) -> str:
    """``table`` as HTML, in a box that scrolls when it is wider than the page (cells escaped)."""
    columns = list(table.columns)
    parts = ['<div class="table-wrap"><table>']
    if table.caption:
        parts.append(f"<caption>{_escape(table.caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{_escape(name)}</th>" for name in columns) + "</tr></thead>")
    parts.append("<tbody>")
    for number, row in enumerate(table.rows):
        cells = list(row)
        if len(cells) != len(columns):
            raise InputError(
                f"report table row {number}",
                expected=f"{len(columns)} cells (one per column {columns})",
                found=f"{len(cells)} cells",
                fix="give every row one value per column",
            )
        parts.append("<tr>" + "".join(_cell(value) for value in cells) + "</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _image(image: ReportImage, page_folder: Path) -> str:
    source = Path(image.path)
    if not source.is_file():
        raise FileFormatError(
            f"report image {source}",
            expected="an existing PNG file",
            found="no such file",
            fix="write the figure first (bandselect.reports.save_figure) or drop it from the section",
        )
    if image.embed:
        data = source.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            raise FileFormatError(
                f"report image {source}",
                expected="a PNG file",
                found="a file without the PNG signature",
                fix="save figures as PNG",
            )
        url = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    else:
        url = Path(os.path.relpath(source.resolve(), page_folder.resolve())).as_posix()
    alt = image.caption or source.stem
    caption = f"<figcaption>{_escape(image.caption)}</figcaption>" if image.caption else ""
    return f'<figure><img src="{_escape(url)}" alt="{_escape(alt)}">{caption}</figure>'


def render_html_report(
    title: str, sections: Sequence[ReportSection], *, page_folder: str | os.PathLike[str] = "."
) -> str:
    """Build the page as a string (see :func:`write_html_report`).

    Parameters
    ----------
    title
        Page title and top heading.
    sections
        The sections, in order.
    page_folder
        Folder the page will live in; linked (non-embedded) images are made relative to it.

    Returns
    -------
    str
        A complete HTML5 document.
    """
    folder = Path(page_folder)
    body = [f"<h1>{_escape(title)}</h1>"]
    for section in sections:
        if not isinstance(section, ReportSection):
            raise InputError(
                "report section",
                expected="a bandselect.reports.ReportSection",
                found=type(section).__name__,
                fix="wrap content as ReportSection(heading=..., paragraphs=..., tables=..., images=...)",
            )
        body.append("<section>")
        body.append(f"<h2>{_escape(section.heading)}</h2>")
        body.extend(f"<p>{_escape(paragraph)}</p>" for paragraph in section.paragraphs)
        body.extend(table_html(table) for table in section.tables)
        body.extend(_image(image, folder) for image in section.images)
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_html_report(path: str | os.PathLike[str], title: str, sections: Sequence[ReportSection]) -> Path:
    """Write a self-contained HTML report, atomically (temporary file, then :func:`os.replace`).

    Parameters
    ----------
    path
        Destination ``.html``; parent folders are created.
    title
        Page title and top heading.
    sections
        :class:`ReportSection` objects, each with paragraphs, :class:`ReportTable` and
        :class:`ReportImage` entries.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    FileFormatError
        An image is missing or not a PNG.
    InputError
        A malformed section or table.
    """
    destination = Path(path)
    page = render_html_report(title, sections, page_folder=destination.parent)
    with atomic_path(destination) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return destination
