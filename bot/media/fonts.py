"""Font loading for labels drawn with Pillow (French names need real accented glyphs)."""

from __future__ import annotations

import logging
from functools import lru_cache

from PIL import ImageFont

logger = logging.getLogger(__name__)

_CANDIDATES = {
    True: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
        "DejaVuSans-Bold.ttf",
    ),
    False: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "DejaVuSans.ttf",
        # the regular face is not in fonts-dejavu-core everywhere; bold reads fine too
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
}

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=64)
def load_font(size: int, bold: bool = True, path: str | None = None) -> Font:
    """A TrueType font of `size` pixels; Pillow's built-in font when none is installed."""
    for candidate in ((path,) if path else ()) + _CANDIDATES[bold]:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    logger.warning("no TrueType font found (install fonts-dejavu-core); using Pillow's default font")
    return ImageFont.load_default(size)
