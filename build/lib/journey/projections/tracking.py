"""Where the projection is in the event store: eventsourcing's TrackingRecorder
port, on DuckDB, written in the same transaction as the rows it accounts for."""

from __future__ import annotations

import duckdb
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder

__all__ = ["DuckDBTrackingRecorder"]


class DuckDBTrackingRecorder(TrackingRecorder):
    """Single-row tracking per application name, like the library's adapters.

    ``insert_tracking`` runs on the caller's connection, so when the caller has a
    transaction open, the position commits (or rolls back) with the caller's rows.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        connection.execute(
            "CREATE TABLE IF NOT EXISTS internal.tracking ("
            "application_name VARCHAR PRIMARY KEY, notification_id BIGINT NOT NULL)"
        )

    def insert_tracking(self, tracking: Tracking) -> None:
        current = self.max_tracking_id(tracking.application_name)
        if current is not None and tracking.notification_id <= current:
            raise IntegrityError(
                f"{tracking.application_name} is already at {current}, "
                f"not moving back to {tracking.notification_id}"
            )
        self.connection.execute(
            "INSERT OR REPLACE INTO internal.tracking VALUES (?, ?)",
            (tracking.application_name, tracking.notification_id),
        )

    def max_tracking_id(self, application_name: str) -> int | None:
        row = self.connection.execute(
            "SELECT notification_id FROM internal.tracking WHERE application_name = ?",
            (application_name,),
        ).fetchone()
        return None if row is None else int(row[0])
