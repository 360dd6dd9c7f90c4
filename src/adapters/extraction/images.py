"""Images as documents (PNG, JPEG, TIFF with one or many pages): every page through OCR.

Pillow reads the header first: an image whose pixel count passes the limit (a
decompression bomb: tiny file, gigapixel canvas) or a TIFF with more pages than a
PDF may have is refused before any page is decoded.
"""

from __future__ import annotations

import io

from domain.errors import CorruptDocument, NoTextFound, UnsafeDocument
from domain.model import Block, ExtractedDocument

from .limits import ParseLimits
from .normalize import merge_blocks, text_to_blocks
from .ocr import ocr_image, report_progress


def open_image(data: bytes, limits: ParseLimits) -> object:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise UnsafeDocument(
            f"the image has more than {limits.max_image_pixels:,} pixels (a decompression bomb)"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptDocument(f"the image cannot be read: {exc}") from exc
    width, height = img.size
    if width * height > limits.max_image_pixels:
        raise UnsafeDocument(
            f"the image is {width}x{height} pixels; the limit is {limits.max_image_pixels:,}"
        )
    return img


def extract_image(data: bytes, limits: ParseLimits) -> ExtractedDocument:
    from PIL import Image

    img = open_image(data, limits)
    assert isinstance(img, Image.Image)
    frames = int(getattr(img, "n_frames", 1))
    if frames > limits.max_pdf_pages:
        raise UnsafeDocument(f"the image has {frames} pages; the limit is {limits.max_pdf_pages}")
    blocks: list[Block] = []
    for i in range(frames):
        try:
            img.seek(i)
            img.load()
        except Image.DecompressionBombError as exc:
            raise UnsafeDocument(f"page {i + 1} of the image is a decompression bomb") from exc
        except (OSError, ValueError, EOFError) as exc:
            raise CorruptDocument(f"page {i + 1} of the image cannot be read: {exc}") from exc
        dpi = img.info.get("dpi", (300, 300))[0] or 300
        text = ocr_image(img, dpi=int(min(max(dpi, 70), 1200)))
        blocks.extend(text_to_blocks(text, page=i + 1))
        report_progress(i + 1, frames, slow=True)
    blocks = merge_blocks(blocks)
    if not blocks:
        raise NoTextFound("the image holds no text that OCR could read")
    return ExtractedDocument(
        blocks=blocks,
        pages=frames,
        report={"ocr_pages": list(range(1, frames + 1)), "pages_ocr": frames},
    )
