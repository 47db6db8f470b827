"""Citizens' personal data at rest (Decree 13/2023/NĐ-CP on personal data protection;
Decree 269/2025 Article 21): who made a report or wrote a comment.

Such data lives only in a tenant's ``personal`` partition, which no open API can name
(``dothi.store.base.partition``). On top of that, each personal value is encrypted
there with AES-256-GCM, bound to its entity and field (a value copied onto another
reporter does not open), so that the database files, their backups and the history
tables hold only ciphertext. The addresses that hourly limits count by are kept as keyed
pseudonyms (HMAC-SHA-256), which cannot be reversed by trying all 2^32 IPv4 addresses as
a plain hash could.

The key is ``DOTHI_PERSONAL_DATA_KEY`` (32 bytes, base64), or else the file
``DOTHI_PERSONAL_DATA_KEY_FILE``, made with a new random key the first time (mode 0600).
Every server of one instance needs the same key; backups are useless for personal data
without it, and losing it loses that data (which is one way to erase it everywhere).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dothi.errors import InternalError
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.store.audit import personal_read_entry
from dothi.store.base import EntityQuery, partition, query_all

if TYPE_CHECKING:
    from dothi.broker.broker import Broker

PREFIX = "enc:v1:"
_NONCE = 12
PARTITION = "personal"  # dothi.store.base.partition(tenant, PARTITION)
# What a citizen may give about themselves with a report or a comment.
FIELDS = ("first_name", "last_name", "email", "phone", "device_id", "account_id")


class Vault:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("The personal data key is 32 bytes")
        # One key given, two used: sealing and pseudonyms never share one.
        self._aead = AESGCM(hmac.new(key, b"dothi personal data: seal", hashlib.sha256).digest())
        self._names = hmac.new(key, b"dothi personal data: pseudonym", hashlib.sha256).digest()

    @classmethod
    def from_settings(cls, key: str | None, key_file: Path) -> Vault:
        if key:
            try:
                return cls(base64.b64decode(key, validate=True))
            except (binascii.Error, ValueError):
                raise ValueError("DOTHI_PERSONAL_DATA_KEY is 32 bytes in base64 "
                                 "(`openssl rand -base64 32`)") from None
        return cls(_key_from_file(key_file))

    def seal(self, eid: str, fields: dict[str, str]) -> dict[str, str]:
        return {name: PREFIX + base64.b64encode(self._seal_one(eid, name, value)).decode()
                for name, value in fields.items()}

    def _seal_one(self, eid: str, name: str, value: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, value.encode(), _bound(eid, name))

    def open(self, eid: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields with their sealed values opened (values written before sealing
        existed come back as they are)."""
        out = {}
        for name, value in fields.items():
            if isinstance(value, str) and value.startswith(PREFIX):
                raw = base64.b64decode(value[len(PREFIX):])
                try:
                    value = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:],
                                               _bound(eid, name)).decode()
                except InvalidTag:
                    raise InternalError(f"The personal data of {eid} does not open with "
                                        "this instance's key") from None
            out[name] = value
        return out

    def pseudonym(self, tenant: str, client: str) -> str:
        """What is kept of a client (an address or an app's key) to count its requests."""
        return hmac.new(self._names, f"{tenant}\x00{client}".encode(),
                        hashlib.sha256).hexdigest()


def _bound(eid: str, name: str) -> bytes:
    return f"{eid}\n{name}".encode()


def _key_from_file(path: Path) -> bytes:
    """The key kept in ``path``, made there first if there is none (atomically: server
    processes starting together all end up with the one that was linked first)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".dothi-key-")
        try:
            os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
            os.close(fd)
            os.link(temp, path)  # fails if another process made it meanwhile
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    try:
        return base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{path} does not hold a key in base64") from None


def reveal(broker: Broker, vault: Vault, tenant: str, eid: str, target: str,
           what: str) -> dict[str, Any]:
    """The fields of ``tenant``'s personal record ``eid``, opened (empty if there is
    none), once the read is in the audit log as a read of ``what`` of ``target``: a read
    the log cannot record does not happen."""
    doc = broker.store.get(partition(tenant, PARTITION), eid)
    item = render_entity(doc, broker.resolver.core, RenderOptions(fmt="keyValues")) \
        if doc else {}
    given = vault.open(eid, {k: item[k] for k in FIELDS if k in item})
    broker.store.audit_append([personal_read_entry(tenant, target, what)])
    return given


def erase(broker: Broker, where: str, eid: str) -> bool:
    """Delete a personal record and the history of its values, in the store's partition
    ``where``; whether there was anything. (Backups keep it until they are rotated out.)"""
    gone = broker.apply_one(where, eid, lambda _old: None).status == "deleted"
    return broker.store.temporal_delete(where, eid) or gone


def erase_older(broker: Broker, before: str,
                progress: Callable[[int, int], None] | None = None) -> int:
    """The retention period: erase every personal record of every tenant made before
    ``before`` (an ISO 8601 UTC instant); how many were erased."""
    partitions = [t for t in broker.store.tenants() if t.endswith("~" + PARTITION)]
    old = [(where, str(doc["id"])) for where in partitions
           for doc in query_all(broker.store, where, EntityQuery(limit=1000))
           if str(doc.get("createdAt", "")) < before]
    for n, (where, eid) in enumerate(old, 1):
        erase(broker, where, eid)
        if progress is not None:
            progress(n, len(old))
    return len(old)
