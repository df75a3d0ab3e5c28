"""Pictures for the media tests, made with Pillow (nothing binary is committed)."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg(width: int = 64, height: int = 32, *, gps: bool = False, orientation: int | None = None) -> bytes:
    """A JPEG, optionally with a GPS position and an orientation in its EXIF."""
    img = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}
    if orientation is not None:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue()


def png(width: int = 40, height: int = 40, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, format="PNG")
    return out.getvalue()


def gif(frames: int = 3) -> bytes:
    shots = [Image.new("RGB", (20, 20), (i * 40, 255 - i * 40, 0)) for i in range(frames)]
    out = io.BytesIO()
    shots[0].save(out, format="GIF", save_all=True, append_images=shots[1:], duration=80, loop=0)
    return out.getvalue()


def webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 30), (0, 90, 200)).save(out, format="WEBP")
    return out.getvalue()


def bomb(side: int = 10_000) -> bytes:
    """A PNG of a few kilobytes that decodes to side × side pixels."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def parcel(width: int = 1200, height: int = 900, *, gps: bool = True) -> bytes:
    """A photo-like JPEG (a cracked teapot in a parcel) for the browser tests and screenshots."""
    from PIL import ImageDraw

    img = Image.new("RGB", (width, height), (236, 230, 218))
    draw = ImageDraw.Draw(img)
    w, h = width, height
    draw.rectangle((w * 0.12, h * 0.18, w * 0.88, h * 0.9), fill=(196, 154, 108), outline=(150, 110, 70), width=8)
    draw.rectangle((w * 0.12, h * 0.18, w * 0.88, h * 0.3), fill=(176, 134, 90))
    draw.ellipse((w * 0.3, h * 0.36, w * 0.7, h * 0.84), fill=(122, 62, 44), outline=(90, 40, 28), width=6)
    draw.rectangle((w * 0.46, h * 0.3, w * 0.54, h * 0.38), fill=(122, 62, 44))
    crack = [(w * 0.43, h * 0.4), (w * 0.5, h * 0.5), (w * 0.46, h * 0.58), (w * 0.55, h * 0.68), (w * 0.5, h * 0.8)]
    draw.line(crack, fill=(20, 12, 8), width=10, joint="curve")
    exif = Image.Exif()
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85, exif=exif)
    return out.getvalue()
