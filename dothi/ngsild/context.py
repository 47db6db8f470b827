"""@context handling: a URL-keyed document cache and fast term expansion/compaction.

NGSI-LD only ever expands names (entity types, attribute names, a few vocab values), never
whole JSON-LD documents, so full JSON-LD processing (pyld) would cost far more than it buys.
An ``ActiveContext`` is the merged term table of a context list with the core context applied
last-and-protected, as the specification requires (clause 5.5.7): user terms never override
core terms.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dothi.errors import BadRequestData, DothiError, LdContextNotAvailable

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
# Clients often use the unversioned alias; it resolves to the same (latest) core context.
CORE_CONTEXT_ALIASES = (
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
)
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def load_core_context() -> dict[str, Any]:
    text = resources.files("dothi").joinpath("contexts/ngsi-ld-core-context-v1.9.jsonld")
    doc: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return doc


@dataclass
class CachedContext:
    url: str
    document: Any
    kind: str  # "Hosted" (added through the API/CLI), "Cached" (fetched) or "ImplicitlyCreated"
    created_at: str
    hits: int = 0
    last_used_at: str | None = None


class ContextCache:
    """URL -> @context document; preloaded so that no request waits on the internet."""

    def __init__(
        self,
        fetch: bool = True,
        timeout: float = 3.0,
    ) -> None:
        self._docs: dict[str, CachedContext] = {}
        self._lock = threading.Lock()
        self.fetch_enabled = fetch
        self.timeout = timeout
        # Consulted on a miss before the network: another worker may have stored it.
        self.loader: Callable[[str], CachedContext | None] | None = None
        # Called with each URL about to be fetched (redirects included); raises to refuse
        # it (dothi.auth: no fetching into the platform's own network for the public).
        self.guard: Callable[[str], None] | None = None
        core = load_core_context()
        self._core = core
        for url in (CORE_CONTEXT_URL, *CORE_CONTEXT_ALIASES):
            self._docs[url] = CachedContext(url, core, "Cached", "1970-01-01T00:00:00Z")

    @property
    def core_document(self) -> dict[str, Any]:
        return self._core

    def add(self, url: str, document: Any, kind: str = "Hosted", created_at: str = "") -> None:
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData(f"The document for {url} is not a JSON-LD document with @context")
        with self._lock:
            self._docs[url] = CachedContext(url, document, kind, created_at)

    def remove(self, url: str) -> bool:
        if url == CORE_CONTEXT_URL or url in CORE_CONTEXT_ALIASES:
            return False
        with self._lock:
            return self._docs.pop(url, None) is not None

    def entries(self) -> list[CachedContext]:
        return list(self._docs.values())

    def get_entry(self, url: str) -> CachedContext | None:
        return self._docs.get(url)

    def preload_folder(self, folder: Path) -> int:
        """Load ``folder/manifest.json`` ({url: file name}) into the cache."""
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for url, name in manifest.items():
            doc = json.loads((folder / name).read_text(encoding="utf-8"))
            self.add(url, doc, kind="Cached")
        return len(manifest)

    def resolve(self, url: str) -> Any:
        entry = self._docs.get(url)
        if entry is None and self.loader is not None:
            entry = self.loader(url)
            if entry is not None:
                with self._lock:
                    self._docs[url] = entry
        if entry is None:
            if not self.fetch_enabled:
                raise LdContextNotAvailable(
                    f"@context {url} is not in the broker's cache and fetching is disabled"
                )
            if self.guard is not None:
                self.guard(url)
            try:
                doc = _http_fetch(url, self.timeout, self.guard)
            except DothiError:
                raise
            except Exception as exc:  # any network or parse failure means "not available"
                raise LdContextNotAvailable(
                    f"@context {url} could not be retrieved: {exc}") from None
            if not isinstance(doc, dict) or "@context" not in doc:
                raise LdContextNotAvailable(f"{url} did not return a JSON-LD @context document")
            entry = CachedContext(url, doc, "Cached", "")
            with self._lock:
                self._docs[url] = entry
        entry.hits += 1
        return entry.document


def _http_fetch(url: str, timeout: float,
                guard: Callable[[str], None] | None = None) -> Any:
    if not url.startswith(("http://", "https://")):
        raise ValueError("only http(s) URLs can be fetched")
    req = urllib.request.Request(url, headers={"Accept": "application/ld+json, application/json"})
    opener = urllib.request.build_opener(_GuardedRedirects(guard))
    with opener.open(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http(s) only, each through the cache's guard."""

    def __init__(self, guard: Callable[[str], None] | None) -> None:
        self.guard = guard

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        if not newurl.startswith(("http://", "https://")):
            raise ValueError(f"a redirect to {newurl} is not followed")
        if self.guard is not None:
            self.guard(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass
class ActiveContext:
    """Merged term table; ``expand``/``compact`` are the hot path of every request."""

    terms: dict[str, str] = field(default_factory=dict)
    vocab: str | None = DEFAULT_VOCAB
    reverse: dict[str, str] = field(default_factory=dict)
    # Terms whose definition says their values are vocabulary (expand the value too).
    vocab_valued: set[str] = field(default_factory=set)
    source: Any = None  # the context value as the client gave it (for echoing back)

    def expand(self, term: str) -> str:
        iri = self.terms.get(term)
        if iri is not None:
            return iri
        colon = term.find(":")
        if colon > 0:
            prefix, suffix = term[:colon], term[colon + 1 :]
            if suffix.startswith("//"):
                return term  # already an absolute IRI such as https://...
            base = self.terms.get(prefix)
            if base is not None:
                return base + suffix
            return term  # urn:..., or a scheme we do not know: absolute as is
        return (self.vocab or DEFAULT_VOCAB) + term

    def compact(self, iri: str) -> str:
        term = self.reverse.get(iri)
        if term is not None:
            return term
        vocab = self.vocab or DEFAULT_VOCAB
        if iri.startswith(vocab):
            rest = iri[len(vocab) :]
            if rest and rest not in self.terms:
                return rest
        return iri


def _merge_into(
    ctx: ActiveContext,
    value: Any,
    cache: ContextCache,
    seen: set[str],
    protected: set[str],
) -> None:
    if value is None:
        return
    if isinstance(value, str):
        if value in seen:
            return
        seen.add(value)
        doc = cache.resolve(value)
        _merge_into(ctx, doc.get("@context") if isinstance(doc, dict) else None, cache, seen,
                    protected)
        return
    if isinstance(value, list):
        for item in value:
            _merge_into(ctx, item, cache, seen, protected)
        return
    if not isinstance(value, dict):
        raise BadRequestData("An @context entry must be a URL, an object or an array of them")
    if "@vocab" in value and isinstance(value["@vocab"], str):
        ctx.vocab = value["@vocab"]
    if "@import" in value and isinstance(value["@import"], str):
        _merge_into(ctx, value["@import"], cache, seen, protected)
    pending: dict[str, str] = {}
    for term, definition in value.items():
        if term.startswith("@") or term in protected:
            continue
        if isinstance(definition, str):
            pending[term] = definition
        elif isinstance(definition, dict):
            iri = definition.get("@id")
            if isinstance(iri, str):
                pending[term] = iri
            elif ctx.vocab:
                pending[term] = ctx.vocab + term
            if definition.get("@type") == "@vocab":
                ctx.vocab_valued.add(term)
    # Definitions may use prefixes defined in the same object, in any order.
    for term, iri in pending.items():
        ctx.terms[term] = iri
    for term, iri in pending.items():
        ctx.terms[term] = _resolve_compact(iri, ctx.terms)


def _resolve_compact(iri: str, terms: dict[str, str]) -> str:
    if iri.startswith("@"):
        return iri
    colon = iri.find(":")
    if colon > 0 and not iri[colon + 1 :].startswith("//"):
        base = terms.get(iri[:colon])
        if base is not None and base != iri:
            return base + iri[colon + 1 :]
    return iri


class ContextResolver:
    """Builds (and memoises) ActiveContexts for the context values clients send."""

    def __init__(self, cache: ContextCache, max_entries: int = 256) -> None:
        self.cache = cache
        self._memo: OrderedDict[str, ActiveContext] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.core = self._build(None)

    def active(self, value: Any) -> ActiveContext:
        if value is None or value == CORE_CONTEXT_URL or value == [CORE_CONTEXT_URL]:
            return self.core
        key = json.dumps(value, sort_keys=True)
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                return hit
        built = self._build(value)
        with self._lock:
            self._memo[key] = built
            while len(self._memo) > self._max:
                self._memo.popitem(last=False)
        return built

    def forget(self) -> None:
        with self._lock:
            self._memo.clear()

    def _build(self, value: Any) -> ActiveContext:
        ctx = ActiveContext(source=value)
        seen: set[str] = {CORE_CONTEXT_URL}
        if value is not None:
            _merge_into(ctx, value, self.cache, seen, protected=set())
        user_vocab = ctx.vocab
        core_terms = self.cache.core_document["@context"]
        # The core context comes last and is protected: its terms win over user terms.
        _merge_into(ctx, core_terms, self.cache, seen, protected=set())
        if value is not None and user_vocab != DEFAULT_VOCAB:
            ctx.vocab = user_vocab
        ctx.reverse = _reverse(ctx.terms.items())
        return ctx


def _reverse(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    reverse: dict[str, str] = {}
    for term, iri in items:
        if ":" in term:
            continue  # compact IRIs are not terms to compact to
        current = reverse.get(iri)
        # Prefer the shortest term, then the first: deterministic output.
        if current is None or len(term) < len(current):
            reverse[iri] = term
    return reverse
