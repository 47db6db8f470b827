"""Photos citizens attach to their reports. Each upload is decoded (only JPEG, PNG and
WebP images), turned upright, shrunk to at most 1,600 pixels a side and saved again as
JPEG without any of its metadata: a phone's photo carries the GPS position and time it
was taken, often at the reporter's home, and the report's photo is public. What is kept
is a ``MediaObject`` entity in the tenant's ``media`` partition of the store (so a backup
of the store holds the photos, and no entity query carries their bytes)."""

from __future__ import annotations

import base64
import io
import uuid
import warnings
from datetime import UTC, datetime, timedelta

from PIL import Image, ImageOps, UnidentifiedImageError

from dothi.broker.broker import Broker
from dothi.citizen.personal import Vault
from dothi.citizen.reports import datetime_value
from dothi.errors import BadRequestData, ResourceNotFound, TooLarge, TooManyRequests
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, partition

MEDIA = "MediaObject"
MAX_UPLOAD = 10 * 1024 * 1024
MAX_SIDE = 1600
MAX_PIXELS = 50_000_000  # a larger image is refused before it is decoded
FORMATS = ("JPEG", "PNG", "WEBP")


def clean(raw: bytes) -> bytes:
    """The photo as a metadata-free JPEG of at most MAX_SIDE pixels a side."""
    if len(raw) > MAX_UPLOAD:
        raise TooLarge(f"A photo is at most {MAX_UPLOAD // 1024 // 1024} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(raw))
            if opened.format not in FORMATS:
                raise BadRequestData(f"A photo is {', '.join(FORMATS)}, not {opened.format}")
            if opened.width * opened.height > MAX_PIXELS:
                raise BadRequestData("The photo has too many pixels")
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except UnidentifiedImageError:
        raise BadRequestData(f"The upload is not an image ({', '.join(FORMATS)})") from None
    except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            ValueError) as exc:
        raise BadRequestData(f"Not a photo that can be read: {exc}") from None
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)  # no exif= given: none is written
    return out.getvalue()


class MediaDesk:
    def __init__(self, broker: Broker, vault: Vault, *, hourly_limit: int) -> None:
        self.broker = broker
        self.vault = vault
        self.hourly_limit = hourly_limit
        self.ctx = broker.resolver.core

    def upload(self, tenant: str, raw: bytes, client: str,
               now: datetime | None = None) -> str:
        """Keeps a cleaned photo; returns its id (for /citizen/media/{id}.jpg)."""
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        client_hash = self.vault.pseudonym(tenant, client)
        since = datetime_value(when - timedelta(hours=1))["@value"]
        recent, _ = self.broker.store.query(partition(tenant, "media"), EntityQuery(
            selectors=[Selector(types=parse_type_expr(MEDIA, self.ctx.expand))],
            q=parse_q(f'client=="{client_hash}";uploadedAt>={since}'),
            expand=self.ctx.expand, limit=self.hourly_limit, ids_only=True))
        if len(recent) >= self.hourly_limit:
            raise TooManyRequests(f"At most {self.hourly_limit} photos an hour from one "
                                  "client; please try again later")
        photo = clean(raw)
        mid = uuid.uuid4().hex
        self.broker.create(partition(tenant, "media"), {
            "id": f"urn:ngsi-ld:{MEDIA}:{mid}", "type": MEDIA,
            "contentType": {"type": "Property", "value": "image/jpeg"},
            "contentSize": {"type": "Property", "value": len(photo)},
            "content": {"type": "Property", "value": base64.b64encode(photo).decode()},
            "client": {"type": "Property", "value": client_hash},
            "uploadedAt": {"type": "Property", "value": datetime_value(when)},
        }, self.ctx)
        return mid

    def photo(self, tenant: str, mid: str) -> bytes:
        doc = self.broker.store.get(partition(tenant, "media"), f"urn:ngsi-ld:{MEDIA}:{mid}")
        if doc is None:
            raise ResourceNotFound(f"No photo {mid}")
        return base64.b64decode(doc[self.ctx.expand("content")][0]["value"])
