"""Citizens' photos: whatever the phone sends, what is kept and served is a JPEG of at most
1,600 pixels a side with no metadata (no GPS position, no time, no camera), upright; what
is not an image is refused; one client's uploads are limited."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dothi.app import create_app
from dothi.settings import Settings

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def photo(width: int, height: int, fmt: str = "JPEG", *, gps: bool = True,
          orientation: int | None = None) -> bytes:
    image = Image.new("RGB", (width, height), (30, 120, 200))
    image.paste((250, 250, 0), (0, 0, width // 4, height // 4))  # a mark in one corner
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0132] = "2026:11:25 07:30:00"
    if gps:
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (16.0, 3.0, 35.0), 3: "E",
                                      4: (108.0, 12.0, 52.0)})
    if orientation is not None:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    image.save(out, fmt, exif=exif)
    return out.getvalue()



def test_a_photo_is_shrunk_and_stripped_of_its_metadata(client: TestClient) -> None:
    sent = photo(4000, 3000)
    assert Image.open(io.BytesIO(sent)).getexif().get_ifd(GPS_IFD)  # the phone's position
    r = client.post("/citizen/media", content=sent, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 201, r.text
    url = r.json()["media_url"]
    assert r.headers["location"] == url and url.endswith(".jpg")
    got = client.get(url)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    kept = Image.open(io.BytesIO(got.content))
    assert (kept.format, kept.size) == ("JPEG", (1600, 1200))
    assert dict(kept.getexif()) == {} and b"PhoneMaker" not in got.content
    assert "exif" not in kept.info and "icc_profile" not in kept.info


def test_a_sideways_photo_is_turned_upright(client: TestClient) -> None:
    # EXIF orientation 6: the camera was turned; viewers rotate it 90° clockwise.
    r = client.post("/citizen/media", content=photo(800, 600, orientation=6))
    kept = Image.open(io.BytesIO(client.get(r.json()["media_url"]).content))
    assert kept.size == (600, 800)
    # The yellow mark of the top-left corner is now at the top right.
    assert kept.getpixel((590, 10))[2] < 100 and kept.getpixel((10, 10))[2] > 150


def test_png_and_webp_too(client: TestClient) -> None:
    for fmt in ("PNG", "WEBP"):
        r = client.post("/citizen/media", content=photo(300, 200, fmt, gps=False))
        assert r.status_code == 201, (fmt, r.text)
        assert Image.open(io.BytesIO(client.get(r.json()["media_url"]).content)).format == "JPEG"


@pytest.mark.parametrize(("raw", "says"), [
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image"),
    (b"", "not an image"),
    (photo(50, 50)[:200], "Not a photo that can be read"),
])
def test_what_is_not_a_photo_is_refused(client: TestClient, raw: bytes, says: str) -> None:
    r = client.post("/citizen/media", content=raw)
    assert r.status_code == 400 and says in r.json()["detail"]


def test_other_formats_and_sizes_are_refused(client: TestClient) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    r = client.post("/citizen/media", content=gif.getvalue())
    assert r.status_code == 400 and "not GIF" in r.json()["detail"]
    r = client.post("/citizen/media", content=b"\xff" * (10 * 1024 * 1024 + 1))
    assert r.status_code == 413
    for name in ("nope.jpg", "0123abcd.png", "../x.jpg"):
        assert client.get(f"/citizen/media/{name}").status_code == 404


def test_uploads_per_client_are_limited(database_url: Callable[[str], str]) -> None:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        citizen_hourly_limit=1)
    with TestClient(create_app(settings)) as client:
        small = photo(64, 64, gps=False)
        for _ in range(3):  # three photos for each report allowed
            assert client.post("/citizen/media", content=small).status_code == 201
        r = client.post("/citizen/media", content=small)
        assert r.status_code == 429 and "At most 3 photos an hour" in r.json()["detail"]
