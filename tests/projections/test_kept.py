"""The multiset comparison an incremental derive uses to keep a table whose inputs did not change."""

from __future__ import annotations

import duckdb
import pytest

from journey.projections.kept import differ

ROWS = "SELECT * FROM (VALUES (1, NULL::VARCHAR[], NULL::DOUBLE), (1, [NULL, 'a'], 2.0), (1, [NULL, 'a'], 2.0), " \
       "(2, ['b'], NULL)) t(k, l, d)"


@pytest.mark.parametrize(("after", "differs"), [
    ("SELECT * FROM x ORDER BY d DESC, k DESC", False),  # the same rows in another order
    ("SELECT DISTINCT * FROM x", True),  # a duplicate fewer
    ("SELECT * FROM x UNION ALL (SELECT * FROM x WHERE k = 2)", True),  # a duplicate more
    ("SELECT k, l, coalesce(d, 0) FROM x", True),  # NULL against a value
    ("SELECT k, list_transform(l, lambda e: coalesce(e, 'z')), d FROM x", True),  # a list's NULL element
    ("SELECT * FROM x LIMIT 0", True),
])
def test_differ_compares_rows_as_multisets_with_nulls_equal(after: str, differs: bool) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE x AS {ROWS}")
    assert differ(con, "x", f"({after})") is differs
    assert differ(con, f"({after})", "x") is differs
