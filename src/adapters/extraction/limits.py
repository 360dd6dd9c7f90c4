"""Limits every parser runs under (with the sandbox's time and memory limits)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParseLimits:
    max_pdf_pages: int = 3000
    max_unzipped_bytes: int = 200 * 1024 * 1024
    max_zip_ratio: float = 200.0
    max_zip_entries: int = 5000
    # an image (or a page of one) past this many pixels is a decompression bomb:
    # 80 Mpx is an A0 sheet at 300 dpi, far above any scanned page
    max_image_pixels: int = 80_000_000
    # cells of a spreadsheet read at most (rows x columns that hold something)
    max_cells: int = 2_000_000
    # characters of text a document may hold once extracted: bounds the chunker's time
    # and memory in the worker (about 14 bytes and 2 us of CPU per character)
    max_text_chars: int = 10_000_000
