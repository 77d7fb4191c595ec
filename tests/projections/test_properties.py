"""Property: for random events delivered in random order and batch sizes, with crashes
inside and between batches, the incrementally built DuckDB (each derive after the first
only re-derives the customers its batch touches) equals a fresh rebuild table by table,
identity merges and erasures included, and equals a plain-Python recomputation (the
domain's identity resolver and sorted journeys)."""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journey.domain.identity import resolve_identities
from journey.domain.values import Customer
from journey.projections.derive import RUNNING
from journey.projections.failure import COUNTS, MEDIANS
from journey.projections.metrics import PARTS
from journey.projections.projector import Projector
from journey.store.event_store import EventStore
from journey.store.recorder import InMemoryJourneyRecorder
from tests.touches import touch
from tests.projections.helpers import PSEUDONYMS, append, every_table, project, rows
from tests.projections.test_metrics import metrics_match_the_query

BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
TYPED = ["call", "booking", "visit", "consent", "message", "referral", "ad_spend", "review", "treatment_plan",
         "no_show", "payment"]
ZONES = [timezone.utc, timezone(timedelta(hours=3))]

identifiers = st.fixed_dictionaries({}, optional={
    "customer_id": st.sampled_from(["P1", "P2", "P3"]),
    "phone": st.sampled_from(["+79160000001", "+79160000002"]),
    "anonymous_id": st.sampled_from(["a1", "a2", "a3", "a4"]),
}).filter(bool)


@st.composite
def events(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=25))
    out = []
    for n in range(count):
        kind = draw(st.sampled_from(["touch"] * 8 + ["identity_link", "identity_unlink"] + TYPED))
        customer = draw(identifiers)
        when = BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))
        record: dict[str, Any] = {
            "event_id": f"e{n}", "customer": customer,
            "occurred_at": when.astimezone(draw(st.sampled_from(ZONES))).isoformat(),
        }
        if kind in TYPED:  # stages, consent, a referral credit, a touch of nobody's
            record = touch(kind, f"e{n}", customer=customer, occurred_at=record["occurred_at"])
            if kind == "referral":
                record["properties"]["referrer"] = draw(st.sampled_from(["R1", "R2", "P1"]))  # P1: maybe themself
            if kind == "ad_spend":
                del record["customer"]
        elif kind == "touch":
            record.update(type="custom", activity=draw(st.sampled_from(["A", "B", "C"])))
        elif len(customer) >= 2:
            record.update(type=kind)
        else:
            record.update(type="custom", activity="D")
        out.append(record)
    return out


def pseudonymous(customer: dict[str, str]) -> list[tuple[str, str]]:
    ids = Customer.model_validate(customer).identifiers()
    return [(k, PSEUDONYMS.key(k, v)) for k, v in ids]


def recompute(stored: list[dict[str, Any]]) -> dict[str, Any]:
    """The plain-Python answer, from the events in store order."""
    identity = resolve_identities(
        ("unlink" if e["type"] == "identity_unlink" else "link", pseudonymous(e["customer"]))
        for e in stored if "customer" in e)
    journeys: dict[str, list[tuple[datetime, int, bool, str]]] = defaultdict(list)  # a credit after its touch
    for position, e in enumerate(stored, start=1):
        if e["type"] in ("identity_link", "identity_unlink", "ad_spend"):
            continue
        who = identity.resolve(pseudonymous(e["customer"]))
        when = datetime.fromisoformat(e["occurred_at"])
        journeys[who].append((when, position, False, e.get("activity") or e["type"]))
        if e["type"] == "referral":  # the referring patient's credit
            journeys[PSEUDONYMS.key("customer_id", e["properties"]["referrer"])].append(
                (when, position, True, "referred_friend"))
    edges: Counter[tuple[str, str]] = Counter()
    variants: Counter[tuple[str, ...]] = Counter()
    starts: Counter[str] = Counter()
    seq = {}
    for who, steps in journeys.items():
        steps.sort()
        activities = tuple(a for _, _, _, a in steps)
        variants[activities] += 1
        starts[activities[0]] += 1
        edges.update(zip(activities, activities[1:]))
        for n, (_, position, credit, _) in enumerate(steps, start=1):
            if not credit:
                seq[position] = (who, n)
    return {"edges": dict(edges), "variants": dict(variants), "starts": dict(starts), "seq": seq}


def view(projector: Projector) -> dict[str, Any]:
    con = projector.con
    return {
        "edges": {(s, t): n for s, t, n in rows(con, "SELECT source, target, transitions FROM journey_edges")},
        "variants": {tuple(a): n for a, n in rows(con, "SELECT activities, customers FROM journey_variants")},
        "starts": {a: n for a, n in rows(con, "SELECT activity, starts FROM journey_nodes WHERE starts > 0")},
        "seq": {p: (c, s) for p, c, s in rows(
            con, "SELECT position, customer_id, seq FROM touchpoints WHERE customer_id IS NOT NULL "
                 "AND type <> 'referred_friend'")},
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.randoms(use_true_random=False), st.lists(st.integers(1, 6), min_size=1, max_size=8))
def test_incremental_equals_rebuild_equals_recomputation(
    generated: list[dict[str, Any]], rnd: Any, batch_sizes: list[int]
) -> None:
    order = generated[:]
    rnd.shuffle(order)
    store = EventStore(InMemoryJourneyRecorder())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "incremental.duckdb"
        delivered = 0
        for size in batch_sizes * (len(order) // len(batch_sizes) + 1):
            if delivered >= len(order):
                break
            append(store, *order[delivered : delivered + size])
            delivered += size
            projector = Projector(store, path, PSEUDONYMS, batch_size=rnd.randint(1, 7))
            chance = rnd.random()
            if chance < 0.25:  # stopped between batches, never derived
                projector.catch_up(stop=_stop_after(projector, rnd.randint(1, 3)))
            elif chance < 0.5:  # a crash inside a batch's transaction
                _crash_on(projector, rnd.randint(1, 3))
                try:
                    projector.catch_up()
                except _Crash:
                    pass
            else:
                projector.catch_up()
                projector.derive()
            projector.close()
        incremental = project(store, path)
        rebuilt = project(store, Path(tmp) / "rebuilt.duckdb")
        stored = [e.touch for _, e in store.read()]
        expected = recompute(stored)
        assert view(incremental) == view(rebuilt) == expected
        assert every_table(incremental.con) == every_table(rebuilt.con)
        kept_equal(incremental.con, rebuilt.con)
        metrics_match_the_query(incremental.con)
        assert rows(incremental.con, "SELECT count(*) FROM internal.tracking")[0][0] == 1
        incremental.close()
        rebuilt.close()


def kept_equal(incremental: Any, rebuilt: Any) -> None:
    """What a derive keeps between derives (running counts, metric parts, the failure
    tables' counts and medians) equals a rebuild's."""
    for table in (*(running.table for running in RUNNING), PARTS, *(count.table for count in COUNTS), MEDIANS):
        kept = f"SELECT * FROM {table} ORDER BY ALL"
        assert rows(incremental, kept) == rows(rebuilt, kept), table


class _stop_after:  # noqa: N801 - an Event-like stop signal that fires after n checks
    def __init__(self, projector: Projector, checks: int) -> None:
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


class _Crash(Exception):
    pass


def _crash_on(projector: Projector, nth: int) -> None:
    """Make the nth tracking write of this projector fail, mid-transaction."""
    original = projector.tracking.insert_tracking
    calls = 0

    def insert(tracking: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == nth:
            raise _Crash
        original(tracking)

    projector.tracking.insert_tracking = insert  # type: ignore[method-assign]


STAGED = ["ad_click", "call", "booking", "visit", "review"]


@st.composite
def journeys_then_news(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Stage touches of a few patients over ten days, then batches that mostly move the
    data's end (up to ~50 days on, into the next month) with a touch that changes no stage
    outcome, sometimes with a stage touch too."""
    first = []
    for n in range(draw(st.integers(2, 12))):
        kind = draw(st.sampled_from(STAGED))
        when = BASE + timedelta(hours=draw(st.integers(0, 24 * 10)))
        first.append(touch(kind, f"s{n}", customer={"customer_id": draw(st.sampled_from(["P1", "P2", "P3", "P4"]))},
                           occurred_at=when.isoformat()))
    batches = []
    for b in range(draw(st.integers(1, 6))):
        batch = []
        for n in range(draw(st.integers(1, 2))):
            when = BASE + timedelta(hours=draw(st.integers(0, 24 * 50)))
            kind = draw(st.sampled_from(["custom"] * 4 + STAGED))
            who = draw(st.sampled_from(["P1", "P2", "P3", "P4", "P9"]))  # P9: no stage of theirs
            batch.append(touch(kind, f"n{b}-{n}", customer={"customer_id": who}, occurred_at=when.isoformat()))
        batches.append(batch)
    return first, batches


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys_then_news())
def test_failure_tables_kept_or_written_equal_a_rebuild_as_the_end_moves(
    generated: tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]
) -> None:
    """The failure tables an incremental derive keeps (nothing they read changed: the
    data's end moved past no SLA, month or Kaplan-Meier time) or writes again equal a
    rebuild's after every batch."""
    first, batches = generated
    store = EventStore(InMemoryJourneyRecorder())
    append(store, *first)
    with tempfile.TemporaryDirectory() as tmp:
        incremental = project(store, Path(tmp) / "incremental.duckdb")
        for n, batch in enumerate(batches):
            append(store, *batch)
            incremental.catch_up()
            incremental.derive()
            rebuilt = project(store, Path(tmp) / f"rebuilt-{n}.duckdb")
            assert every_table(incremental.con) == every_table(rebuilt.con)
            kept_equal(incremental.con, rebuilt.con)
            rebuilt.close()
        incremental.close()
