from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from journey.store.postgres import PostgresJourneyRecorder, open_postgres, redact
from journey.store.recorder import JourneyRecorder
from journey.errors import ConfigurationError
from tests.store.recorder_contract import RecorderContract


class TestPostgresRecorder(RecorderContract):
    @pytest.fixture(autouse=True)
    def _url(self, pg_url: str) -> None:
        self.url = pg_url

    def recorder(self) -> JourneyRecorder:
        return open_postgres(self.url)


class TestLibraryContractOnPostgres(ApplicationRecorderTestCase[PostgresJourneyRecorder]):
    """The eventsourcing library's own application-recorder contract."""

    @pytest.fixture(autouse=True)
    def _url(self, pg_url: str) -> None:
        self.url = pg_url

    def new_originator_id(self) -> str:
        return str(uuid4())

    def create_recorder(self) -> PostgresJourneyRecorder:
        return open_postgres(self.url)

    test_performance = None  # type: ignore[assignment]  # timing belongs in bench/
    test_concurrent_throughput = None  # type: ignore[assignment]
    test_concurrent_no_conflicts = None  # type: ignore[assignment]


def test_password_is_redacted_in_messages() -> None:
    assert redact("postgresql://u:s3cret@h:5432/d") == "postgresql://u:***@h:5432/d"


@pytest.mark.parametrize("url", ["mysql://x/y", "postgresql://host:5432/"])
def test_malformed_url_says_what_to_use(url: str) -> None:
    with pytest.raises(ConfigurationError, match="postgresql://USER:PASSWORD@HOST:PORT/DATABASE"):
        open_postgres(url)


def test_schema_must_be_a_plain_identifier() -> None:
    with pytest.raises(ConfigurationError, match="plain identifier"):
        open_postgres('postgresql://postgres@127.0.0.1/test?schema=x";drop table y;--')
