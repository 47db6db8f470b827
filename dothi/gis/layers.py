"""The imported layers' descriptions (their ``GisLayer`` entities, as key-values), kept by
each server process: every OGC API - Features request needs its layer's feature type,
fields and temporal field, and reading the entity again for each one cost about a twentieth
of a feature query.

A write in this process to a layer (an import, an NGSI-LD update or delete) drops what was
kept of it at once. A write in another process sharing the store is seen within
``MAX_AGE_S``, after which the description is read again."""

from __future__ import annotations

import threading
import time
from typing import Any

from dothi.broker.broker import Broker
from dothi.gis.importer import LAYER_TYPE, layer_id
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.store.base import Outcome

MAX_AGE_S = 1.0
KEY_VALUES = RenderOptions(fmt="keyValues")
LAYER_PREFIX = layer_id("")


class LayerDescriptions:
    def __init__(self, broker: Broker, max_age_s: float = MAX_AGE_S) -> None:
        self.broker = broker
        self.max_age_s = max_age_s
        self._kept: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._writes = 0  # counts this process's layer writes: a read that one overtook
        self._lock = threading.Lock()  # is not kept
        broker.write_listeners.append(self.on_write)

    def kept(self, tenant: str, name: str) -> dict[str, Any] | None:
        """The description if one read recently is kept, without touching the store (so
        from the event loop)."""
        found = self._kept.get((tenant, name))
        if found is not None and time.monotonic() - found[0] < self.max_age_s:
            return found[1]
        return None

    def read(self, tenant: str, name: str) -> dict[str, Any] | None:
        """The description from the store (None if there is no such layer), then kept. The
        dict is shared by every request: read it, never change it."""
        writes, started = self._writes, time.monotonic()
        doc = self.broker.store.get(tenant, layer_id(name))
        ctx = self.broker.resolver.core
        if doc is None or ctx.expand(LAYER_TYPE) not in doc.get("type", ()):
            return None
        layer = render_entity(doc, ctx, KEY_VALUES)
        with self._lock:
            if writes == self._writes:
                self._kept[(tenant, name)] = (started, layer)
        return layer

    def on_write(self, tenant: str, outcomes: list[Outcome]) -> None:
        """A broker write listener: forget the layers this write touched."""
        touched = [o.id[len(LAYER_PREFIX):] for o in outcomes if o.id.startswith(LAYER_PREFIX)]
        if touched:
            with self._lock:
                self._writes += 1
                for name in touched:
                    self._kept.pop((tenant, name), None)

    def close(self) -> None:
        self.broker.write_listeners.remove(self.on_write)
