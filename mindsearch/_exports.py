"""A finished answer or research report as Markdown, HTML, PDF or DOCX, with its citations and references.

The answer's Markdown is parsed once (markdown-it-py, MIT, already installed with rich) into a few kinds
of blocks (headings, paragraphs, lists, tables, code) and each format is written from those blocks, so
tables and lists survive in every format. Citations ``[n]`` become links to the reference list (HTML,
PDF) or stay as numbered markers before a numbered reference list (Markdown, DOCX): the list is always
kept, and only ``http(s)`` addresses become links (a source's text and title are untrusted and escaped).

The writers were chosen for correctness and install weight: fpdf2 (LGPL-3.0, pure Python on fontTools
and Pillow, no system libraries) writes PDF with an embedded TrueType font, so Chinese renders wherever
the PDF is opened; python-docx (MIT, on lxml) writes DOCX. WeasyPrint (needs Pango) and ReportLab's
C-accelerated build were heavier for no gain here. PDF needs a CJK font on the machine (Debian's
``fonts-wqy-microhei``, or the ``export_font`` setting); without one, a PDF with Chinese text is refused
with an error that says what to install rather than written with empty boxes.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from markdown_it import MarkdownIt

from . import events as ev

Format = Literal["md", "html", "pdf", "docx"]
FORMATS: dict[str, tuple[str, str]] = {  # format -> (media type, file suffix)
    "md": ("text/markdown; charset=utf-8", ".md"),
    "html": ("text/html; charset=utf-8", ".html"),
    "pdf": ("application/pdf", ".pdf"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
}
# where Debian, Fedora and Arch put CJK fonts fpdf2 can embed (TrueType outlines; .ttc collections too)
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_CITE = re.compile(r"\[(\d{1,4})\]")


class ExportError(RuntimeError):
    """The report cannot be written in this format here; the message says what is missing."""


# -- the blocks ----------------------------------------------------------------------------------------
@dataclass
class Block:
    kind: Literal["heading", "paragraph", "list", "table", "code"]
    text: str = ""
    level: int = 0  # a heading's level
    ordered: bool = False  # a list's kind
    items: list[str] = field(default_factory=list)  # a list's items
    rows: list[list[str]] = field(default_factory=list)  # a table's rows, the header first


@dataclass
class Report:
    """What an export holds: a title, the answer's blocks, and the references."""

    title: str
    blocks: list[Block]
    references: list[ev.Reference]

    @property
    def text(self) -> str:
        """All text, for the checks that need it (is there Chinese in it?)."""
        parts = [self.title]
        for b in self.blocks:
            parts.extend([b.text, *b.items, *(cell for row in b.rows for cell in row)])
        parts.extend(f"{r.title} {r.url}" for r in self.references)
        return "\n".join(parts)


def report_of(question: str, answer: str, references: list[ev.Reference]) -> Report:
    """The report of a finished run: a research report's own ``# title``, else the question as title."""
    blocks = parse(answer)
    title = question
    if blocks and blocks[0].kind == "heading" and blocks[0].level == 1:
        title = blocks.pop(0).text
    return Report(title or "mindsearch", blocks, list(references))


def parse(markdown: str) -> list[Block]:
    """Markdown into blocks; inline formatting is kept as plain text, citations as ``[n]``."""
    tokens = MarkdownIt("commonmark", {"html": False}).enable("table").parse(markdown)
    blocks: list[Block] = []
    lists: list[Block] = []
    table: Block | None = None
    row: list[str] | None = None
    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            blocks.append(Block("heading", _inline(tokens[index + 1]), level=int(token.tag[1:])))
        elif kind in ("bullet_list_open", "ordered_list_open"):
            lists.append(Block("list", ordered=kind == "ordered_list_open"))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            done = lists.pop()
            if lists:  # a nested list: its items join the outer list, indented
                lists[-1].items.extend(f"  {item}" for item in done.items)
            else:
                blocks.append(done)
        elif kind == "table_open":
            table = Block("table")
        elif kind == "table_close" and table is not None:
            blocks.append(table)
            table = None
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and table is not None and row is not None:
            table.rows.append(row)
            row = None
        elif kind == "inline":
            before = tokens[index - 1].type if index else ""
            text = _inline(token)
            if before.startswith("heading"):
                continue
            if row is not None:
                row.append(text)
            elif lists and before == "paragraph_open":
                lists[-1].items.append(text)
            elif before == "paragraph_open":
                blocks.append(Block("paragraph", text))
        elif kind in ("fence", "code_block"):
            blocks.append(Block("code", token.content.rstrip("\n")))
    return blocks


def _inline(token: Any) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def _link(url: str) -> str | None:
    """A reference's address as a link, only for web addresses (a document's path is shown, not linked)."""
    return url if re.match(r"https?://", url, re.IGNORECASE) else None


# -- Markdown ------------------------------------------------------------------------------------------
def to_markdown(report: Report, *, references_title: str = "References") -> bytes:
    lines = [f"# {report.title}", ""]
    for block in report.blocks:
        if block.kind == "heading":
            lines += [f"{'#' * max(block.level, 2)} {block.text}", ""]
        elif block.kind == "paragraph":
            lines += [block.text, ""]
        elif block.kind == "list":
            for n, item in enumerate(block.items, start=1):
                indent = len(item) - len(item.lstrip(" "))
                lines.append(f"{' ' * indent}{f'{n}.' if block.ordered else '-'} {item.strip()}")
            lines.append("")
        elif block.kind == "table" and block.rows:
            width = max(len(r) for r in block.rows)
            rows = [r + [""] * (width - len(r)) for r in block.rows]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in rows[0]) + " |")
            lines.append("|" + " --- |" * width)
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
            lines.append("")
        elif block.kind == "code":
            lines += ["```", block.text, "```", ""]
    if report.references:
        lines += [f"## {references_title}", ""]
        for ref in report.references:
            target = f"<{ref.url}>" if _link(ref.url) else f"`{ref.url}`"
            lines.append(f"{ref.n}. {ref.title} {target}")
        lines.append("")
    return "\n".join(lines).encode()


# -- HTML ----------------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;
max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.6}table{border-collapse:collapse}
td,th{border:1px solid #999;padding:.25rem .5rem}
a.cite{text-decoration:none;font-size:.8em;vertical-align:super}"""


def _html_text(text: str, known: set[int]) -> str:
    """Escaped text; a citation of a known reference becomes a link to it."""
    out, last = [], 0
    for match in _CITE.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        n = int(match.group(1))
        if n in known:
            out.append(f'<a class="cite" href="#ref-{n}">[{n}]</a>')
        else:
            out.append(html.escape(match.group(0)))
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def to_html(report: Report, *, references_title: str = "References", language: str = "en") -> bytes:
    known = {ref.n for ref in report.references}
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    for block in report.blocks:
        if block.kind == "heading":
            level = min(max(block.level, 2), 6)
            body.append(f"<h{level}>{_html_text(block.text, known)}</h{level}>")
        elif block.kind == "paragraph":
            body.append(f"<p>{_html_text(block.text, known)}</p>")
        elif block.kind == "list":
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{_html_text(item.strip(), known)}</li>" for item in block.items)
            body.append(f"<{tag}>{items}</{tag}>")
        elif block.kind == "table" and block.rows:
            head = "".join(f"<th>{_html_text(c, known)}</th>" for c in block.rows[0])
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_text(c, known)}</td>" for c in r) + "</tr>"
                for r in block.rows[1:]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif block.kind == "code":
            body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
    if report.references:
        body.append(f"<h2>{html.escape(references_title)}</h2><ol>")
        for ref in report.references:
            url = _link(ref.url)
            where = f"<code>{html.escape(ref.url)}</code>"
            if url:
                safe = html.escape(url, quote=True)
                where = f'<a href="{safe}" rel="noopener noreferrer nofollow">{safe}</a>'

            body.append(f'<li id="ref-{ref.n}" value="{ref.n}">{html.escape(ref.title)} {where}</li>')
        body.append("</ol>")
    page = (
        f'<!doctype html><html lang="{html.escape(language)}"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    return page.encode()


# -- PDF -----------------------------------------------------------------------------------------------
def cjk_font(chosen: Path | None = None) -> Path | None:
    """A font with Chinese glyphs fpdf2 can embed: ``chosen`` (the ``export_font`` setting), else a known
    system path."""
    for candidate in (chosen, *FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def to_pdf(report: Report, *, references_title: str = "References", font_file: Path | None = None) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    font = cjk_font(font_file)
    if font is None and _CJK.search(report.text):
        raise ExportError(
            "no CJK font to write Chinese into the PDF: install fonts-wqy-microhei "
            "(apt-get install fonts-wqy-microhei) or set MINDSEARCH_EXPORT_FONT to a .ttf or .ttc file"
        )
    if font is None and Path(LATIN_FONT).is_file():
        font = Path(LATIN_FONT)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(report.title[:200])
    pdf.set_creator("mindsearch")
    if font is not None:
        for style in ("", "B"):
            pdf.add_font("body", style, str(font))
        family = "body"
    else:  # no TrueType font at all: the core font, Latin-1 only
        family = "helvetica"
    pdf.add_page()
    width = pdf.epw
    links = {ref.n: pdf.add_link() for ref in report.references}

    def text(value: str) -> str:
        return value if font is not None else value.encode("latin-1", "replace").decode("latin-1")

    def flowing(value: str, height: float = 6) -> None:
        """A paragraph whose citations are links to their reference."""
        last = 0
        for match in _CITE.finditer(value):
            pdf.write(height, text(value[last : match.start()]))
            n = int(match.group(1))
            pdf.write(height, text(match.group(0)), link=links.get(n, ""))
            last = match.end()
        pdf.write(height, text(value[last:]))
        pdf.ln(height)

    pdf.set_font(family, "B", 18)
    pdf.multi_cell(width, 9, text(report.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    for block in report.blocks:
        if block.kind == "heading":
            pdf.ln(2)
            pdf.set_font(family, "B", max(16 - 2 * (block.level - 1), 11))
            pdf.multi_cell(width, 8, text(block.text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(1)
        elif block.kind == "paragraph":
            pdf.set_font(family, "", 11)
            flowing(block.text)
            pdf.ln(2)
        elif block.kind == "list":
            pdf.set_font(family, "", 11)
            for n, item in enumerate(block.items, start=1):
                indent = len(item) - len(item.lstrip(" "))
                pdf.set_x(pdf.l_margin + 4 + 2 * indent)
                flowing(f"{f'{n}.' if block.ordered else '•'} {item.strip()}")
            pdf.ln(2)
        elif block.kind == "table" and block.rows:
            pdf.set_font(family, "", 9)
            columns = max(len(r) for r in block.rows)
            with pdf.table(first_row_as_headings=True, text_align="LEFT", line_height=5) as table:
                for row in block.rows:
                    cells = table.row()
                    for cell in row + [""] * (columns - len(row)):
                        cells.cell(text(cell))
            pdf.ln(3)
        elif block.kind == "code":
            pdf.set_font(family, "", 9)
            pdf.multi_cell(width, 5, text(block.text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
    if report.references:
        pdf.ln(3)
        pdf.set_font(family, "B", 14)
        pdf.multi_cell(width, 8, text(references_title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(family, "", 10)
        for ref in report.references:
            pdf.set_link(links[ref.n], page=pdf.page_no(), y=pdf.get_y())
            url = _link(ref.url)
            pdf.multi_cell(
                width,
                5,
                text(f"[{ref.n}] {ref.title} - {ref.url}"),
                link=url or "",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
            pdf.ln(1)
    return bytes(pdf.output())


# -- DOCX ----------------------------------------------------------------------------------------------
def to_docx(report: Report, *, references_title: str = "References") -> bytes:
    import docx
    from docx.oxml.ns import qn

    document = docx.Document()
    normal = document.styles["Normal"]
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), "Microsoft YaHei")  # Chinese in a CJK font where Word has one
    document.core_properties.title = report.title[:200]
    document.add_heading(report.title, level=0)
    for block in report.blocks:
        if block.kind == "heading":
            document.add_heading(block.text, level=min(max(block.level, 1), 9))
        elif block.kind == "paragraph":
            document.add_paragraph(block.text)
        elif block.kind == "list":
            style = "List Number" if block.ordered else "List Bullet"
            for item in block.items:
                document.add_paragraph(item.strip(), style=style)
        elif block.kind == "table" and block.rows:
            columns = max(len(r) for r in block.rows)
            table = document.add_table(rows=len(block.rows), cols=columns)
            table.style = "Table Grid"
            for r, row in enumerate(block.rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        elif block.kind == "code":
            document.add_paragraph(block.text, style="No Spacing")
    if report.references:
        document.add_heading(references_title, level=1)
        for ref in report.references:
            document.add_paragraph(f"[{ref.n}] {ref.title} - {ref.url}")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def export(report: Report, fmt: str, *, language: str = "en", font: Path | None = None) -> bytes:
    """The report in one of ``FORMATS``; ``ExportError`` when this machine cannot write it."""
    title = "参考文献" if language == "zh" else "References"
    if fmt == "md":
        return to_markdown(report, references_title=title)
    if fmt == "html":
        return to_html(report, references_title=title, language=language)
    if fmt == "pdf":
        return to_pdf(report, references_title=title, font_file=font)
    if fmt == "docx":
        return to_docx(report, references_title=title)
    raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
