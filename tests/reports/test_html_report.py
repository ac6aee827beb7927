"""HTML report: sections, tables, embedded and linked images, escaping, atomic write."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from bandselect.errors import FileFormatError, InputError
from bandselect.render import save_png
from bandselect.reports import ReportImage, ReportSection, ReportTable, write_html_report


@pytest.fixture
def png(tmp_path):
    return save_png(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), tmp_path / "figures" / "chart.png")


def test_report_holds_sections_tables_and_embedded_images(tmp_path, png) -> None:
    sections = [
        ReportSection(
            heading="Leaderboard",
            paragraphs=["Separability wins on 3 bands."],
            tables=[
                ReportTable(
                    columns=["selector", "AUROC", "k"],
                    rows=[["separability", 0.99512345, 3], ["mrmr", 0.981, 3]],
                    caption="held-out AUROC",
                )
            ],
            images=[ReportImage(png, caption="AUROC per selector")],
        ),
        ReportSection(heading="Stability", paragraphs=["stable"], images=[ReportImage(png, embed=False)]),
    ]
    path = write_html_report(tmp_path / "out" / "report.html", "Run abc", sections)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Run abc</title>" in page and "<h1>Run abc</h1>" in page
    assert page.index("<h2>Leaderboard</h2>") < page.index("<h2>Stability</h2>")
    assert "<th>AUROC</th>" in page and "<td>separability</td>" in page
    assert '<td class="number">0.9951</td>' in page and '<td class="number">3</td>' in page
    # A wide table scrolls in its own box, not the page.
    assert '<div class="table-wrap"><table>' in page and ".table-wrap { overflow-x: auto; }" in page
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert embedded is not None
    assert base64.b64decode(embedded.group(1)) == png.read_bytes()
    assert 'src="../figures/chart.png"' in page  # linked relative to the page
    assert "<figcaption>AUROC per selector</figcaption>" in page
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_report_escapes_all_text(tmp_path, png) -> None:
    evil = '<script>alert("x")</script>'
    sections = [
        ReportSection(
            heading=evil,
            paragraphs=[evil],
            tables=[ReportTable(columns=[evil], rows=[[evil]], caption=evil)],
            images=[ReportImage(png, caption=evil)],
        )
    ]
    page = write_html_report(tmp_path / "r.html", evil, sections).read_text(encoding="utf-8")
    assert "<script" not in page
    # title, h1, h2, paragraph, th, td, table caption, img alt, figcaption
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") == 9


def test_report_rejects_missing_or_non_png_images_and_ragged_tables(tmp_path) -> None:
    with pytest.raises(FileFormatError, match="no such file"):
        write_html_report(
            tmp_path / "r.html", "t", [ReportSection("s", images=[ReportImage(tmp_path / "x.png")])]
        )
    fake = tmp_path / "fake.png"
    fake.write_text("not a png")
    with pytest.raises(FileFormatError, match="PNG signature"):
        write_html_report(tmp_path / "r.html", "t", [ReportSection("s", images=[ReportImage(fake)])])
    with pytest.raises(InputError, match="2 cells"):
        write_html_report(
            tmp_path / "r.html", "t", [ReportSection("s", tables=[ReportTable(["a"], [[1, 2]])])]
        )
    assert not (tmp_path / "r.html").exists()
