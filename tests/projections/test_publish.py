"""The one reader of the published snapshot: read-only, no file system access, and a
writable output file only where asked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from journey.errors import ProjectionError
from journey.projections.publish import OUTPUT, open_snapshot, projection_status, query
from journey.projections.reading import require_table


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "analytics.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers AS SELECT range AS n FROM range(5)")
    con.execute("CREATE TABLE projection_status AS SELECT 42 AS position, TIMESTAMPTZ '2025-01-01 00:00Z' AS updated_at")
    con.execute("CREATE TABLE dead_letters (position BIGINT)")
    con.close()
    return path


def test_it_reads_and_refuses_every_write_and_every_file(snapshot: Path, tmp_path: Path) -> None:
    assert query(snapshot, "SELECT count(*) FROM customers") == (["count_star()"], [(5,)])
    for statement, words in [("DROP TABLE customers", "read-only"),
                             (f"COPY customers TO '{tmp_path / 'leak.csv'}'", "file system operations are disabled"),
                             (f"ATTACH '{tmp_path / 'x.duckdb'}' AS x", "disabled"),
                             ("SET enable_external_access = true", "locked")]:
        with pytest.raises(ProjectionError, match=words):
            query(snapshot, statement)
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "x.duckdb").exists()


def test_an_output_file_is_writable_beside_the_read_only_snapshot(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "saved" / "ideal.duckdb"
    with open_snapshot(snapshot, output=out) as con:
        con.execute(f"CREATE TABLE {OUTPUT}.main.big AS SELECT n FROM customers WHERE n > 2")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE customers_copy AS SELECT 1")
    assert duckdb.connect(str(out), read_only=True).execute("SELECT count(*) FROM big").fetchone() == (2,)


def test_without_a_projection_it_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProjectionError, match="run `journey project`"):
        query(tmp_path / "missing.duckdb", "SELECT 1")
    assert projection_status(tmp_path / "missing.duckdb") is None


def test_status_and_a_missing_table(snapshot: Path) -> None:
    status = projection_status(snapshot)
    assert status is not None and (status["position"], status["dead_letters"]) == (42, 0)
    assert status["updated_at"] == datetime(2025, 1, 1, tzinfo=UTC)
    with open_snapshot(snapshot) as con, pytest.raises(ProjectionError, match="journey rederive"):
        require_table(con, "clinic_metrics")
