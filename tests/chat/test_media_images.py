"""Uploaded pictures: the type from the bytes, metadata dropped, bombs refused, thumbnails."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from chat.media.images import THUMB_SIDE, MediaError, process, sniff
from chat.protocol.errors import ErrorCode

from . import media_samples as samples

LIMIT = 40_000_000


@pytest.mark.parametrize(("data", "fmt", "mime"), [
    (samples.jpeg(), "JPEG", "image/jpeg"),
    (samples.png(), "PNG", "image/png"),
    (samples.gif(), "GIF", "image/gif"),
    (samples.webp(), "WEBP", "image/webp"),
])
def test_each_accepted_type_is_sniffed_and_re_encoded(data: bytes, fmt: str, mime: str) -> None:
    assert sniff(data) == fmt
    picture = process(data, LIMIT)
    assert picture.mime == mime
    assert sniff(picture.data) == fmt
    with Image.open(io.BytesIO(picture.thumb)) as thumb:
        assert thumb.format == "WEBP"
        assert max(thumb.size) <= THUMB_SIDE


@pytest.mark.parametrize("data", [
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    b"%PDF-1.7\n",
    b"GIF89a" + b"\x00" * 10,             # the magic, then nothing that decodes
    samples.jpeg()[:200],                  # truncated
    b"",
])
def test_anything_else_is_refused_as_unsupported(data: bytes) -> None:
    with pytest.raises(MediaError) as caught:
        process(data, LIMIT)
    assert caught.value.code == ErrorCode.MEDIA_UNSUPPORTED
    assert caught.value.status == 415


def test_exif_gps_and_comments_are_gone() -> None:
    original = samples.jpeg(gps=True)
    with Image.open(io.BytesIO(original)) as img:
        assert img.getexif().get_ifd(samples.GPS_IFD)  # the sample does carry a position
    picture = process(original, LIMIT)
    assert b"Exif" not in picture.data and b"CameraMaker" not in picture.data
    assert b"secret comment" not in picture.data
    with Image.open(io.BytesIO(picture.data)) as img:
        assert not img.getexif()
        assert "comment" not in img.info


def test_the_orientation_is_applied_to_the_pixels() -> None:
    picture = process(samples.jpeg(64, 32, orientation=6), LIMIT)  # 6: turned 90° clockwise
    assert (picture.width, picture.height) == (32, 64)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    data = samples.bomb()
    assert len(data) < 100_000
    with pytest.raises(MediaError) as caught:
        process(data, LIMIT)
    assert caught.value.code == ErrorCode.MEDIA_TOO_MANY_PIXELS
    assert caught.value.details["max_pixels"] == LIMIT


def test_frames_count_towards_the_pixel_limit() -> None:
    data = samples.gif(frames=5)  # 5 × 20 × 20 = 2000 pixels
    assert process(data, 2000).mime == "image/gif"
    with pytest.raises(MediaError) as caught:
        process(data, 1999)
    assert caught.value.code == ErrorCode.MEDIA_TOO_MANY_PIXELS


def test_an_animation_keeps_its_frames() -> None:
    picture = process(samples.gif(frames=4), LIMIT)
    with Image.open(io.BytesIO(picture.data)) as img:
        assert getattr(img, "n_frames", 1) == 4


def test_the_same_upload_gets_the_same_id() -> None:
    data = samples.png()
    assert process(data, LIMIT).sha256 == process(data, LIMIT).sha256
