"""OCR with Tesseract and its Portuguese model (`tesseract-ocr-por`).

Runs inside the extraction sandbox: the `tesseract` process inherits the child's
address-space limit, gets the page as a grayscale PNG on stdin, one thread
(``OMP_THREAD_LIMIT=1``: on 2 cores, pages in sequence beat threads per page) and a
per-page time limit. Pages come rendered at 300 dpi (PDF) or as the image's own
pixels. Each finished page is reported to the parent (progress), which also keeps
the parse alive past the per-document deadline as long as pages keep coming.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

from domain.errors import ExtractionLimitExceeded, TransientError

from .tools import INSTALL_HINT, run_tool

if TYPE_CHECKING:
    from PIL.Image import Image

OCR_LANGUAGES = "por"
OCR_DPI = 300
PAGE_TIMEOUT_S = 120.0
MIN_DESPECKLE_DPI = 150

# set by the sandbox child: called after each page with (pages done, pages in all,
# slow); a slow page (OCR) moves the parser's deadline, a text page does not
_progress: Callable[[int, int, bool], None] | None = None


def set_progress_hook(hook: Callable[[int, int, bool], None] | None) -> None:
    global _progress
    _progress = hook


def report_progress(done: int, total: int, *, slow: bool = False) -> None:
    if _progress is not None:
        _progress(done, total, slow)


def ocr_image(image: Image, dpi: int = OCR_DPI, *, despeckle: bool = True) -> str:
    """The text Tesseract reads on one page image (Portuguese model).

    Scanner speckle is removed first with a 3x3 median (`bench/ocr.py` prints the
    character error rate with and without it); below 150 dpi strokes are too thin for
    it, so it is skipped there."""
    from PIL import ImageFilter

    gray = image.convert("L")
    if despeckle and dpi >= MIN_DESPECKLE_DPI:
        gray = gray.filter(ImageFilter.MedianFilter(3))
    buf = io.BytesIO()
    gray.save(buf, format="PNG")
    done = run_tool(
        "tesseract",
        ["stdin", "stdout", "-l", OCR_LANGUAGES, "--dpi", str(dpi)],
        what="OCR of a page",
        timeout_s=PAGE_TIMEOUT_S,
        stdin=buf.getvalue(),
        env={"OMP_THREAD_LIMIT": "1"},
    )
    if done.returncode != 0:
        if "Failed loading language" in done.stderr:
            raise TransientError(f"Tesseract has no Portuguese model: {INSTALL_HINT}")
        raise ExtractionLimitExceeded(f"OCR failed on a page: {done.last_error_line}")
    return done.stdout
