"""Markdown through markdown-it (CommonMark with tables)."""

from __future__ import annotations

from domain.model import Block, BlockKind, ExtractedDocument

from .normalize import clean, merge_blocks, one_line, text_to_blocks
from .tables import Table


def extract_markdown(text: str) -> ExtractedDocument:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    blocks: list[Block] = []
    kind_stack: list[BlockKind] = []
    heading_level: int | None = None
    row: list[str] = []
    grid = Table()
    in_head = False
    prev_type = ""
    for tok in tokens:
        in_cell, prev_type = prev_type in ("td_open", "th_open"), tok.type
        if tok.type == "heading_open":
            heading_level = int(tok.tag[1])
        elif tok.type == "heading_close":
            heading_level = None
        elif tok.type == "list_item_open":
            kind_stack.append(BlockKind.LIST_ITEM)
        elif tok.type == "list_item_close":
            kind_stack.pop()
        elif tok.type == "table_open":
            grid = Table()
        elif tok.type in ("thead_open", "thead_close"):
            in_head = tok.type == "thead_open"
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            grid.add(row, header=in_head)
        elif tok.type == "table_close":
            blocks.extend(grid.blocks())
            grid = Table()
        elif tok.type in ("fence", "code_block"):
            code = clean(tok.content)
            if code:
                blocks.append(Block(BlockKind.CODE, code))
        elif tok.type == "inline":
            content = one_line(_inline_text(tok))
            if in_cell:  # empty cells too: columns stay aligned with their headers
                row.append(content)
                continue
            if not content:
                continue
            if heading_level is not None:
                blocks.append(Block(BlockKind.HEADING, content, level=heading_level))
            elif kind_stack:
                blocks.append(Block(BlockKind.LIST_ITEM, content))
            else:
                blocks.extend(text_to_blocks(content))
    return ExtractedDocument(blocks=merge_blocks(blocks))


def _inline_text(tok: object) -> str:
    parts: list[str] = []
    for child in getattr(tok, "children", None) or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts) if parts else str(getattr(tok, "content", ""))
