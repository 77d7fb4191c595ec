"""Recall audiences count back from the data, never from the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from journey.errors import InputError
from journey.privacy.contacts import recall_candidates


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "analytics.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE touchpoints (customer_id VARCHAR, type VARCHAR, occurred_at TIMESTAMPTZ)")
    con.execute("INSERT INTO touchpoints VALUES "
                "('lapsed', 'visit', '2025-01-10 10:00Z'), "
                "('recent', 'visit', '2025-06-20 10:00Z'), "
                "('never', 'call', '2025-01-05 10:00Z'), "
                "(NULL, 'visit', '2025-01-01 10:00Z'), "
                "('recent', 'review', '2025-06-30 10:00Z')")  # the data's last touch
    con.close()
    return path


def test_by_default_it_counts_back_from_the_last_touch_in_the_data(snapshot: Path) -> None:
    # 180 days before 2025-06-30: 2025-01-01; 'lapsed' visited after it, so it is not due yet
    assert recall_candidates(snapshot, 180) == []
    assert recall_candidates(snapshot, 150) == ["lapsed"]


def test_an_as_of_moment_is_used_as_given(snapshot: Path) -> None:
    assert recall_candidates(snapshot, 180, datetime(2026, 12, 1, tzinfo=UTC)) == ["lapsed", "recent"]
    assert recall_candidates(snapshot, 10, datetime(2025, 6, 25, tzinfo=UTC)) == ["lapsed"]


def test_days_must_be_positive(snapshot: Path) -> None:
    with pytest.raises(InputError, match="--recall-days must be at least 1"):
        recall_candidates(snapshot, 0)
