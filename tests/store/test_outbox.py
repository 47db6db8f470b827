"""The notification outbox shared by several processes: ownership, leases, take-over,
settling. Two stores on one file stand for two server processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from dothi.store.base import Notice, Outcome, Store, SubscriptionStats, open_store

LEASE = 5_000


@pytest.fixture
def stores(database_url: Callable[[str], str]) -> Iterator[tuple[Store, Store]]:
    """Two processes' stores on one database."""
    url = database_url("o")
    a = open_store(url, lease_ms=LEASE)
    b = open_store(url, lease_ms=LEASE)
    yield a, b
    a.close()
    b.close()


def hook(tenant: str, outcomes: Sequence[Outcome]) -> list[Notice]:
    return [Notice("urn:ngsi-ld:Subscription:s", "entityCreated", o.id.encode())
            for o in outcomes if o.status == "created"]


def write(store: Store, *ids: str) -> None:
    store.change_hook = hook
    outcomes = store.apply("t", [(i, lambda old, i=i: {"id": i, "type": ["T"]}) for i in ids])
    assert [o.status for o in outcomes] == ["created"] * len(ids)


def now() -> int:
    return int(time.time() * 1000)


def test_rows_belong_to_the_process_that_wrote_them(stores: tuple[Store, ...]) -> None:
    a, b = stores
    write(a, "urn:x:1", "urn:x:2")
    assert [p.payload for p in a.outbox_pending(now(), 10)] == [b"urn:x:1", b"urn:x:2"]
    assert b.outbox_pending(now(), 10) == []
    assert b.outbox_claim(now()) == 0  # a's lease still runs


def test_a_stopped_process_is_taken_over_when_its_lease_runs_out(
        stores: tuple[Store, ...]) -> None:
    a, b = stores
    write(a, "urn:x:1")
    # a stops without a word; b looks again once a's lease has run out.
    assert b.outbox_claim(now() + LEASE + 1) == 1
    assert [p.payload for p in b.outbox_pending(now() + LEASE + 1, 10)] == [b"urn:x:1"]
    assert a.outbox_pending(now(), 10) == []


def test_a_released_row_is_taken_at_once(stores: tuple[Store, ...]) -> None:
    a, b = stores
    write(a, "urn:x:1")
    a.outbox_release()
    assert b.outbox_claim(now()) == 1


def test_a_live_owner_renews_its_lease(stores: tuple[Store, ...]) -> None:
    a, b = stores
    write(a, "urn:x:1")
    later = now() + LEASE - 1
    a.outbox_claim(later)  # a's housekeeping renews from "later" on
    assert b.outbox_claim(now() + LEASE + 1) == 0


def test_settle_removes_reschedules_and_counts(stores: tuple[Store, ...]) -> None:
    a, _ = stores
    a.subscription_create("t", "urn:ngsi-ld:Subscription:s", "entity", {"id": "s"}, None)
    write(a, "urn:x:1", "urn:x:2")
    first, second = a.outbox_pending(now(), 10)
    due = now() + 60_000
    a.outbox_settle([first.nid], [(second.nid, due, 1)],
                    [("t", "urn:ngsi-ld:Subscription:s",
                      SubscriptionStats(2, 1, "2026-01-01T00:00:00.000Z", None,
                                        "2026-01-01T00:00:00.000Z"))])
    assert a.outbox_pending(now(), 10) == []
    assert a.outbox_next_due() == due
    retried = a.outbox_pending(due, 10)
    assert [(p.payload, p.attempts) for p in retried] == [(b"urn:x:2", 1)]
    record = a.subscription_get("t", "urn:ngsi-ld:Subscription:s", "entity")
    assert record is not None
    assert (record.stats.times_sent, record.stats.times_failed) == (2, 1)
    assert record.stats.last_failure == "2026-01-01T00:00:00.000Z"
    assert record.stats.last_success is None


def test_a_failed_write_leaves_no_notification(stores: tuple[Store, ...]) -> None:
    a, _ = stores
    a.change_hook = hook

    def boom(old: dict | None) -> dict:
        raise RuntimeError("a failure that rolls the whole transaction back")

    with pytest.raises(RuntimeError):
        a.apply("t", [("urn:x:1", lambda old: {"id": "urn:x:1", "type": ["T"]}),
                      ("urn:x:2", boom)])
    assert a.outbox_pending(now(), 10) == []
    assert a.get("t", "urn:x:1") is None
