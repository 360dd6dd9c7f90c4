"""HTML through selectolax (lexbor): blocks in reading order, navigation and scripts
skipped, struck text (strike, s, del, line-through) dropped."""

from __future__ import annotations

import contextlib
import re

from domain.errors import NoTextFound
from domain.model import Block, BlockKind, ExtractedDocument

from .normalize import merge_blocks, one_line, text_to_blocks
from .tables import Table

_SKIP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "nav",
        "footer",
        "aside",
        "form",
        "svg",
        "iframe",
        "button",
        "select",
        "head",
        "object",
        "canvas",
        "math",
    }
)
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_LEAVES = {
    "p": BlockKind.PARAGRAPH,
    "li": BlockKind.LIST_ITEM,
    "pre": BlockKind.CODE,
    "blockquote": BlockKind.PARAGRAPH,
    "dt": BlockKind.PARAGRAPH,
    "dd": BlockKind.PARAGRAPH,
    "caption": BlockKind.PARAGRAPH,
    "figcaption": BlockKind.PARAGRAPH,
    "address": BlockKind.PARAGRAPH,
}
_INLINE = frozenset(
    {
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "cite",
        "code",
        "data",
        "dfn",
        "em",
        "i",
        "kbd",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "time",
        "u",
        "var",
        "wbr",
        "font",
        "label",
        "ins",
        "del",
    }
)


_STRUCK_TAGS = "strike, s, del"
_LINE_THROUGH = re.compile(r"text-decoration[^;]*line-through", re.IGNORECASE)


def extract_html(html: str) -> ExtractedDocument:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = one_line(title_node.text()) if title_node is not None else None
    root = tree.body or tree.root
    blocks: list[Block] = []
    struck = 0
    if root is not None:
        # struck text is revoked wording (planalto compiles laws that way): never text
        for node in [*root.css(_STRUCK_TAGS), *root.css("[style]")]:
            if node.tag in ("strike", "s", "del") or _LINE_THROUGH.search(
                node.attributes.get("style") or ""
            ):
                with contextlib.suppress(Exception):  # already gone with its parent
                    struck += len((node.text(deep=True) or "").strip())
                    node.decompose()
        _walk_html(root, blocks)
        images = len(root.css("img"))
        if images and not merge_blocks(blocks):
            raise NoTextFound(
                f"the HTML page holds no text, only {images} image(s); images inside web "
                "pages are not read by OCR (upload the image itself)"
            )
    return ExtractedDocument(
        blocks=merge_blocks(blocks), title=title or None, report={"struck_chars": struck}
    )


def _is_data_table(table: object) -> bool:
    """A grid of data (two rows or more, two columns or more, no table inside), not a
    layout table around paragraphs (planalto's banner, boxed ementas)."""
    if table.css_first("table table") is not None or table.css_first("td table") is not None:  # type: ignore[attr-defined]
        return False
    rows = table.css("tr")  # type: ignore[attr-defined]
    return len(rows) >= 2 and max(len(r.css("td,th")) for r in rows) >= 2


def _data_table(table: object) -> list[Block]:
    grid = Table()
    for tr in table.css("tr"):  # type: ignore[attr-defined]
        cells = tr.css("td,th")
        header = bool(cells) and all(c.tag == "th" for c in cells)
        grid.add([c.text(deep=True, separator=" ") or "" for c in cells], header=header)
    return grid.blocks()


def _walk_html(node: object, blocks: list[Block]) -> None:
    buffer: list[str] = []

    def flush() -> None:
        text = one_line(" ".join(buffer))
        buffer.clear()
        if text:
            blocks.extend(text_to_blocks(text))

    for child in node.iter(include_text=True):  # type: ignore[attr-defined]
        tag = child.tag
        if tag == "-text":
            buffer.append(child.text(deep=False) or "")
        elif tag in _SKIP or tag == "-comment":
            continue
        elif tag == "br":
            buffer.append("\n")
        elif tag in _INLINE:
            buffer.append(child.text(deep=True, separator=" ") or "")
        elif tag in _HEADINGS:
            flush()
            text = one_line(child.text(deep=True, separator=" ") or "")
            if text:
                blocks.append(Block(BlockKind.HEADING, text, level=_HEADINGS[tag]))
        elif tag in _LEAVES:
            flush()
            text = one_line(child.text(deep=True, separator=" ") or "")
            if text:
                blocks.append(Block(_LEAVES[tag], text))
        elif tag == "table" and _is_data_table(child):
            flush()
            blocks.extend(_data_table(child))
        elif tag == "tr":
            flush()
            cells = [one_line(c.text(deep=True, separator=" ") or "") for c in child.css("td,th")]
            cells = [c for c in cells if c]
            if cells:
                blocks.append(Block(BlockKind.TABLE, " | ".join(cells)))
        else:
            flush()
            _walk_html(child, blocks)
    flush()
