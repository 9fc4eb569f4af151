"""Invoices and credit notes as Factur-X PDFs: a PDF/A-3B page drawn with fpdf2 from the
document's ``domain.billing.layout`` (fonts embedded, the sRGB output intent fpdf2 adds for
PDF/A), then the CII XML (``adapters.cii``) embedded by the ``factur-x`` library as
``factur-x.xml`` with its XMP metadata. Private buyers get the same PDF.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from facturx import generate_from_binary
from fontTools.ttLib import TTFont
from fpdf import FPDF

from ..domain.billing import Layout, layout, pdf_text
from .cii import cii_xml

FONTS = Path(__file__).with_name("fonts")
REGULAR = FONTS / "DejaVuSans.ttf"
logging.getLogger("factur-x").setLevel(logging.WARNING)  # it logs each step at INFO
logging.getLogger("fpdf").setLevel(logging.ERROR)


@lru_cache(maxsize=1)
def _known_characters() -> frozenset[str]:
    """The characters the font draws."""
    return frozenset(chr(c) for c in TTFont(REGULAR)["cmap"].getBestCmap())


def render_pdf(data: dict) -> bytes:
    """The document's page as a PDF/A-3B (without its XML)."""
    return _draw(layout(data), data["number"])


def render_facturx(data: dict) -> tuple[bytes, bytes]:
    """(the Factur-X PDF, its CII XML). The XML is checked against the EN 16931 XSD by the tests
    (``facturx.xml_check_xsd``), not on each invoice: it is made from one template."""
    xml = cii_xml(data)
    pdf = generate_from_binary(
        _draw(layout(data), data["number"]),
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=False,
        pdf_metadata={
            "author": data["seller"]["name"],
            "keywords": "Factur-X, facture",
            "title": f"{data['seller']['name']} : {data['number']}",
            "subject": f"{data['number']} du {data['issue_date']}",
        },
        lang="fr-FR",
    )
    return pdf, xml


def facturx_pdf(data: dict) -> bytes:
    """The Factur-X PDF alone: what a rendering process of the ``invoices`` loop's pool returns
    (a module-level function, so that it pickles)."""
    return render_facturx(data)[0]


def _draw(page: Layout, number: str) -> bytes:
    known = _known_characters()

    def t(text: str) -> str:
        return pdf_text(text, known)

    pdf = FPDF(enforce_compliance="PDF/A-3B")
    pdf.add_font("DejaVu", "", str(REGULAR))
    for font in pdf.fonts.values():
        # The fonts' bounding boxes are right already: recomputing them when the subset is saved
        # would decompile and recompile every glyph (half the time of a page).
        font.ttfont.recalcBBoxes = False
    pdf.set_lang("fr-FR")
    pdf.set_title(t(page.title))
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    width = pdf.epw
    pdf.set_line_width(0.15)
    y = pdf.get_y()
    for i, line in enumerate(page.seller):
        _style(pdf, 9 if i == 0 else 8, bold=i == 0)
        pdf.cell(width / 2, 4.2, t(line), new_x="LMARGIN", new_y="NEXT")
    seller_bottom = pdf.get_y()
    pdf.set_xy(18 + width / 2 + 10, y + 22)
    for i, line in enumerate(page.buyer):
        _style(pdf, 9, bold=i == 0)
        pdf.set_x(18 + width / 2 + 10)
        pdf.cell(width / 2 - 10, 4.6, t(line), new_x="LEFT", new_y="NEXT")
    pdf.set_y(max(seller_bottom, pdf.get_y()) + 8)
    _style(pdf, 15, bold=True)
    pdf.cell(width, 9, t(page.title), new_x="LMARGIN", new_y="NEXT")
    _style(pdf, 9)
    for label, value in page.references:
        pdf.cell(40, 5, t(label + " :"))
        pdf.cell(width - 40, 5, t(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    columns = (88, 14, 26, 22, 24)
    heads = ("Désignation", "Qté", "PU HT", "TVA", "Total HT")
    _style(pdf, 8.5, bold=True)
    pdf.set_fill_color(235, 235, 235)
    for w, head in zip(columns, heads, strict=True):
        pdf.cell(w, 7, t(head), border=1, fill=True, align="C" if w < 80 else "L")
    pdf.ln()
    _style(pdf, 8.5)
    description, quantity, unit, rate, net = page.line
    x, y = pdf.get_x(), pdf.get_y()
    lines = _wrap(pdf, t(description), columns[0] - 2)
    row_height = 5 * len(lines) + 1
    pdf.rect(x, y, columns[0], row_height)
    for i, line in enumerate(lines):
        pdf.set_xy(x, y + 0.5 + 5 * i)
        pdf.cell(columns[0], 5, line)
    pdf.set_xy(x + columns[0], y)
    for w, value in zip(columns[1:], (quantity, unit, rate, net), strict=True):
        pdf.cell(w, row_height, t(value), border=1, align="R")
    pdf.set_y(y + row_height + 4)
    for i, (label, value) in enumerate(page.totals):
        last = i == len(page.totals) - 1
        _style(pdf, 9.5 if last else 9, bold=last)
        pdf.set_x(18 + width - 80)
        pdf.cell(48, 6, t(label), border=1)
        pdf.cell(32, 6, t(value), border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    _style(pdf, 8)
    for mention in page.mentions:
        for line in _wrap(pdf, t(mention), width - 2):
            pdf.cell(width, 4.2, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    return bytes(pdf.output())


def _style(pdf: FPDF, size: float, bold: bool = False) -> None:
    """One embedded font (each more costs a parse and a subset per PDF): bold is the same
    glyphs filled and stroked."""
    pdf.set_font("DejaVu", "", size)
    pdf.text_mode = "FILL_STROKE" if bold else "FILL"


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """``text`` cut into lines of at most ``width`` at spaces, in the current font (one width
    per word: fpdf2's multi_cell measures every prefix of a line, many times slower)."""
    space = pdf.get_string_width(" ")
    lines, current, used = [], [], 0.0
    for word in text.split():
        w = pdf.get_string_width(word)
        if current and used + space + w > width:
            lines.append(" ".join(current))
            current, used = [], 0.0
        used += (space if current else 0) + w
        current.append(word)
    if current:
        lines.append(" ".join(current))
    return lines or [""]
