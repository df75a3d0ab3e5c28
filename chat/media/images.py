"""Decode, check and re-encode an uploaded picture (Pillow), in a worker thread.

Re-encoding is the point: what is stored is what Pillow wrote, so no EXIF block (GPS
position, camera serial), comment or text chunk of the original survives, the
orientation the EXIF asked for is applied to the pixels, and a file that only claims to
be a picture never reaches another party's browser. The pixel count is checked from the
header before anything is decoded (a small file can expand to gigabytes).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps, ImageSequence

from ..protocol.errors import ErrorCode

Format = Literal["JPEG", "PNG", "WEBP", "GIF"]
MIME: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
THUMB_SIDE = 320
"""Longest side of a thumbnail, in pixels (sharp at 2x in a 160 px bubble)."""
THUMB_MIME = "image/webp"
MAX_FRAMES = 200
"""Frames an animated GIF or WebP may have (each is decoded and re-encoded)."""


class MediaError(Exception):
    """A refused upload: a protocol error code, an HTTP status and details for the client."""

    def __init__(self, code: ErrorCode, status: int, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class Picture:
    """A picture as stored: ``data`` re-encoded, ``sha256`` of ``data``, and its thumbnail."""

    sha256: str
    mime: str
    width: int
    height: int
    data: bytes
    thumb: bytes


def sniff(data: bytes) -> Format | None:
    """The format the leading bytes announce (the client's Content-Type is never trusted)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def mime_of(data: bytes) -> str:
    """The media type of stored bytes (they were written by :func:`process`, so they sniff)."""
    found = sniff(data)
    return MIME[found] if found else "application/octet-stream"


def _unsupported(reason: str) -> MediaError:
    return MediaError(ErrorCode.MEDIA_UNSUPPORTED, 415, f"not a usable picture: {reason}",
                      types=sorted(MIME.values()))


def process(data: bytes, max_pixels: int) -> Picture:
    """Check and re-encode ``data``; raises :class:`MediaError` (never a Pillow error)."""
    fmt = sniff(data)
    if fmt is None:
        raise _unsupported("the bytes are not JPEG, PNG, WebP or GIF")
    with warnings.catch_warnings():
        # Pillow's own bomb guard warns before it refuses: both are a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                frames = getattr(img, "n_frames", 1) if fmt in ("GIF", "WEBP") else 1
                pixels = img.width * img.height * max(1, frames)
                if pixels > max_pixels or frames > MAX_FRAMES:
                    raise MediaError(ErrorCode.MEDIA_TOO_MANY_PIXELS, 413,
                                     "the picture has too many pixels (over all its frames) to decode",
                                     max_pixels=max_pixels, max_frames=MAX_FRAMES)
                return _encode(img, fmt, frames)
        except MediaError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaError(ErrorCode.MEDIA_TOO_MANY_PIXELS, 413, "the picture has too many pixels to decode",
                             max_pixels=max_pixels) from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            raise _unsupported(f"it does not decode ({type(exc).__name__})") from exc


def _encode(img: Image.Image, fmt: Format, frames: int) -> Picture:
    out = io.BytesIO()
    if frames > 1:
        # Animated: every frame re-encoded; only the options below travel (no EXIF, no XMP).
        extra = {"duration": img.info.get("duration", 100), "loop": img.info.get("loop", 0)}
        shots = [_bare(frame.copy()) for frame in ImageSequence.Iterator(img)]
        shots[0].save(out, format=fmt, save_all=True, append_images=shots[1:], **extra)
        still = shots[0]
    else:
        img.load()
        icc = img.info.get("icc_profile")
        still = _bare(ImageOps.exif_transpose(img))  # the pixels turned as EXIF says
        options: dict[str, object] = {"icc_profile": icc} if icc else {}
        if fmt == "JPEG":
            if still.mode not in ("RGB", "L", "CMYK"):
                still = still.convert("RGB")
            still.save(out, format="JPEG", quality=90, **options)
        elif fmt == "WEBP":
            still.save(out, format="WEBP", quality=90, **options)
        else:
            still.save(out, format=fmt, **options)
    data = out.getvalue()
    return Picture(hashlib.sha256(data).hexdigest(), MIME[fmt], still.width, still.height, data, thumbnail(still))


def _bare(img: Image.Image) -> Image.Image:
    """The image without what Pillow would carry into the new file by itself (comments,
    EXIF, XMP, text chunks): only the options :func:`_encode` passes are written."""
    img.info = {}
    return img


def thumbnail(img: Image.Image) -> bytes:
    """A WebP at most :data:`THUMB_SIDE` pixels on its longest side (transparency kept)."""
    small = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    out = io.BytesIO()
    small.save(out, format="WEBP", quality=80)
    return out.getvalue()
