"""The key store: one data key per customer identifier, kept apart from the events.

Crypto-shredding: a customer's personal fields in stored events are encrypted with
the keys of their identifiers; destroying those keys makes the stored bytes
unreadable while the events themselves (append-only) stay. Each row holds:

* ``subject``: the identifier's keyed pseudonym (the same HMAC the projections use,
  so an export can go from an analyst's pseudonym to contact data, and nothing else);
* ``key_id``: a name written next to every ciphertext made with the key: the time it
  was made (milliseconds) and 48 random bits, so new keys are added at the end of the
  key-id index instead of all over it (see ``new_key_id``);
* ``wrapped``: the data key, encrypted with the master key (AES-GCM), so a copy of
  the key store alone decrypts nothing;
* ``sealed``: the identifier itself encrypted with its own data key (for exports).

Destroying a key deletes its row: the subject, the key and the sealed value go.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

__all__ = [
    "DataKey",
    "InMemoryKeyStore",
    "KeyEntry",
    "KeyStore",
    "KeyWrap",
    "PostgresKeyStore",
    "SQLiteKeyStore",
    "Subject",
    "key_store_at",
    "new_key_id",
]


@dataclass(frozen=True)
class Subject:
    """An identifier a key is made for: its pseudonym, kind and value."""

    pseudonym: str
    kind: str
    value: str


@dataclass(frozen=True)
class DataKey:
    """A customer identifier's data key (AES-SIV, 512 bits)."""

    key_id: str
    subject: str
    kind: str
    secret: bytes = field(repr=False)
    cipher: AESSIV = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # made at once: a key is made or read to be used, and functools.cached_property
        # takes a lock per first access (measured: 4.6 us a key when making keys)
        object.__setattr__(self, "cipher", AESSIV(self.secret))


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A subject's key as stored, still wrapped (``KeyStore.unwrap`` opens it)."""

    key_id: str
    subject: str
    kind: str
    wrapped: bytes = field(repr=False)
    sealed: bytes = field(repr=False)
    """The identifier sealed with its own key (AES-SIV, its kind as associated data): the
    ciphertext a touch stores for it, so sealing a known identifier needs no unwrapping."""


class KeyWrap:
    """Wraps data keys with the master key (AES-GCM, the key id as associated data)."""

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(master)

    def wrap(self, key_id: str, secret: bytes, nonce: bytes | None = None) -> bytes:
        """``secret`` wrapped; ``nonce``: 12 random bytes (read here when not given)."""
        nonce = nonce or os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret, key_id.encode())

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:12], wrapped[12:], key_id.encode())


_ENTROPY = 6 + 64 + 12
"""Random bytes a new key takes: its id's random part (6), the AES-SIV key (64) and the
wrap's nonce (12)."""
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SORTABLE = bytes.maketrans(_BASE64, b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
"""base64url with its alphabet in ASCII order: the text sorts as the bytes do."""


def new_key_id(millis: int, random: bytes) -> str:
    """A key id: 6 bytes of the time it was made (milliseconds since 1970) and 6 random
    bytes, as 16 characters that sort by time. Keys made together sit together in the
    key-id index, so a batch of new keys touches a few of its pages, not one page per
    key (measured: about 30% less CPU per new key, see docs/design.md "Ingest speed")."""
    return base64.urlsafe_b64encode(millis.to_bytes(6, "big") + random).translate(_SORTABLE).decode()


class KeyStore(ABC):
    """The port. Adapters store wrapped keys; this class does the cryptography."""

    def __init__(self, wrap: KeyWrap) -> None:
        self._wrap = wrap

    def keys_for(self, subjects: Iterable[Subject]) -> dict[str, DataKey]:
        """The data key of each subject (by pseudonym), made and stored if new.

        Safe with concurrent writers: a key another process made first wins."""
        return {p: self.unwrap(entry) for p, entry in self.entries_for(subjects).items()}

    def entries_for(self, subjects: Iterable[Subject]) -> dict[str, KeyEntry]:
        """``keys_for`` without unwrapping: each subject's stored entry, made if new.
        Sealing an identifier needs no key (its entry holds it sealed already): the
        ingest unwraps a key only to seal a touch's free text with it."""
        wanted = {s.pseudonym: s for s in subjects}
        found = self._entries("subject", list(wanted))
        # made in one global order (by pseudonym): two workers inserting the same new
        # subjects in different orders would each wait for the other's row (PostgreSQL
        # detected the deadlock on the subject index)
        missing = sorted((s for p, s in wanted.items() if p not in found), key=lambda s: s.pseudonym)
        if missing:
            made, rows = {}, []
            entropy = os.urandom(_ENTROPY * len(missing))  # one read for the batch's ids, keys and nonces
            millis = time.time_ns() // 1_000_000
            for at, subject in zip(range(0, len(entropy), _ENTROPY), missing):
                key_id, secret = new_key_id(millis, entropy[at:at + 6]), entropy[at + 6:at + 70]
                sealed = AESSIV(secret).encrypt(subject.value.encode(), [subject.kind.encode()])
                wrapped = self._wrap.wrap(key_id, secret, entropy[at + 70:at + _ENTROPY])
                rows.append((subject.pseudonym, subject.kind, key_id, wrapped, sealed))
                made[subject.pseudonym] = KeyEntry(key_id, subject.pseudonym, subject.kind, wrapped, sealed)
            inserted = self._insert(rows)
            found.update((p, made[p]) for p in inserted)
            lost = [p for p in made if p not in inserted]  # another writer made these first
            if lost:
                found.update(self._entries("subject", lost))
        return found

    def unwrap(self, entry: KeyEntry) -> DataKey:
        """The data key of a stored entry."""
        return DataKey(entry.key_id, entry.subject, entry.kind, self._wrap.unwrap(entry.key_id, entry.wrapped))

    def _entries(self, column: str, values: list[str]) -> dict[str, KeyEntry]:
        return {row[0]: KeyEntry(row[2], row[0], row[1], bytes(row[3]), bytes(row[4]))
                for row in self._select(column, values)}

    def keys(self, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """The existing keys among ``key_ids`` (a destroyed key is simply absent)."""
        return {e.key_id: self.unwrap(e) for e in self._entries("key_id", list(set(key_ids))).values()}

    def key_ids(self, pseudonyms: Iterable[str]) -> dict[str, str]:
        """Pseudonym -> key id, for the subjects that have a key (nothing is made)."""
        return {row[0]: row[2] for row in self._select("subject", list(set(pseudonyms)))}

    def subjects(self, key_ids: Iterable[str]) -> dict[str, str]:
        """Key id -> the pseudonym of its identifier, for the keys that still exist."""
        return {row[2]: row[0] for row in self._select("key_id", list(set(key_ids)))}

    def contact(self, pseudonyms: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Pseudonym -> (kind, identifier) for the subjects whose key still exists."""
        return {e.subject: (e.kind, self.unwrap(e).cipher.decrypt(e.sealed, [e.kind.encode()]).decode())
                for e in self._entries("subject", list(set(pseudonyms))).values()}

    def destroy(self, pseudonyms: Iterable[str]) -> list[str]:
        """Destroy the keys of these subjects; returns the destroyed key ids."""
        return self._delete(list(set(pseudonyms)))

    @abstractmethod
    def _select(self, column: str, values: list[str]) -> list[tuple]:
        """Rows ``(subject, kind, key_id, wrapped, sealed)`` whose ``column`` is in ``values``."""

    @abstractmethod
    def _insert(self, rows: list[tuple]) -> set[str]:
        """Insert rows, ignoring subjects that exist already; the subjects inserted."""

    @abstractmethod
    def _delete(self, pseudonyms: list[str]) -> list[str]:
        """Delete the subjects' rows; return their key ids."""

    @abstractmethod
    def generation(self) -> int:
        """A number that grows whenever keys are destroyed (to invalidate caches)."""

    def close(self) -> None:
        """Release the connection, if any."""


class InMemoryKeyStore(KeyStore):
    def __init__(self, wrap: KeyWrap) -> None:
        super().__init__(wrap)
        self._rows: dict[str, tuple] = {}
        self._destroyed = 0

    def _select(self, column: str, values: list[str]) -> list[tuple]:
        index = 0 if column == "subject" else 2
        wanted = set(values)
        return [row for row in self._rows.values() if row[index] in wanted]

    def _insert(self, rows: list[tuple]) -> set[str]:
        inserted = set()
        for row in rows:
            if row[0] not in self._rows:
                self._rows[row[0]] = row
                inserted.add(row[0])
        return inserted

    def _delete(self, pseudonyms: list[str]) -> list[str]:
        gone = [self._rows.pop(p)[2] for p in pseudonyms if p in self._rows]
        self._destroyed += len(gone)
        return gone

    def generation(self) -> int:
        return self._destroyed


_CHUNK = 500


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


class SQLiteKeyStore(KeyStore):
    """The embedded default: its own file (0600), apart from the event store."""

    def __init__(self, path: str, wrap: KeyWrap) -> None:
        super().__init__(wrap)
        if path != ":memory:" and not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._con = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._con.execute("PRAGMA secure_delete=ON")  # a destroyed key is overwritten, not just unlinked
        self._con.execute("PRAGMA journal_mode=DELETE")  # no WAL copy of a key outliving its row
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS journey_keys (subject TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            "key_id TEXT NOT NULL UNIQUE, wrapped BLOB NOT NULL, sealed BLOB NOT NULL, created_at TEXT NOT NULL)"
        )
        self._con.execute("CREATE TABLE IF NOT EXISTS journey_key_erasures (destroyed INTEGER NOT NULL)")

    def _select(self, column: str, values: list[str]) -> list[tuple]:
        out: list[tuple] = []
        with self._lock:
            for chunk in _chunks(values):
                out += self._con.execute(
                    f"SELECT subject, kind, key_id, wrapped, sealed FROM journey_keys "  # noqa: S608 column is ours
                    f"WHERE {column} IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        return out

    def _insert(self, rows: list[tuple]) -> set[str]:
        now = datetime.now(timezone.utc).isoformat()
        inserted: set[str] = set()
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start:start + _CHUNK]
                values = ",".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                inserted.update(r[0] for r in self._con.execute(
                    f"INSERT INTO journey_keys VALUES {values} ON CONFLICT (subject) DO NOTHING RETURNING subject",
                    [v for row in chunk for v in (*row, now)]).fetchall())
            self._con.execute("COMMIT")
        return inserted

    def _delete(self, pseudonyms: list[str]) -> list[str]:
        gone: list[str] = []
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            for chunk in _chunks(pseudonyms):
                gone += [r[0] for r in self._con.execute(
                    f"DELETE FROM journey_keys WHERE subject IN ({','.join('?' * len(chunk))}) RETURNING key_id",
                    chunk).fetchall()]
            self._con.execute("INSERT INTO journey_key_erasures VALUES (?)", (len(gone),))
            self._con.execute("COMMIT")
        return gone

    def generation(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM journey_key_erasures").fetchone()[0])

    def close(self) -> None:
        self._con.close()


class PostgresKeyStore(KeyStore):
    """Keys in their own schema of a PostgreSQL database (shared by ingest workers)."""

    def __init__(self, url: str, schema: str, wrap: KeyWrap) -> None:
        import psycopg
        from psycopg.sql import SQL, Identifier

        super().__init__(wrap)
        self._con = psycopg.connect(url, autocommit=True)
        self._lock = threading.Lock()
        s = Identifier(schema)
        self._keys = SQL("{0}.journey_keys").format(s)
        self._erasures = SQL("{0}.journey_key_erasures").format(s)
        self._sql = SQL
        self._con.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(s))
        self._con.execute(SQL(
            "CREATE TABLE IF NOT EXISTS {0} (subject text PRIMARY KEY, kind text NOT NULL, "
            "key_id text NOT NULL UNIQUE, wrapped bytea NOT NULL, sealed bytea NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now())").format(self._keys))
        self._con.execute(SQL("CREATE TABLE IF NOT EXISTS {0} (destroyed integer NOT NULL)").format(self._erasures))

    def _select(self, column: str, values: list[str]) -> list[tuple]:
        from psycopg.sql import Identifier

        query = self._sql("SELECT subject, kind, key_id, wrapped, sealed FROM {0} WHERE {1} = ANY(%s)")
        with self._lock:
            return self._con.execute(query.format(self._keys, Identifier(column)), (values,)).fetchall()

    def _insert(self, rows: list[tuple]) -> set[str]:
        query = self._sql(
            "INSERT INTO {0} (subject, kind, key_id, wrapped, sealed) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[], %s::bytea[]) "
            "ON CONFLICT (subject) DO NOTHING RETURNING subject").format(self._keys)
        columns = [list(column) for column in zip(*rows)]
        with self._lock:
            return {r[0] for r in self._con.execute(query, columns).fetchall()}

    def _delete(self, pseudonyms: list[str]) -> list[str]:
        with self._lock, self._con.transaction():
            gone = [r[0] for r in self._con.execute(
                self._sql("DELETE FROM {0} WHERE subject = ANY(%s) RETURNING key_id").format(self._keys),
                (pseudonyms,)).fetchall()]
            self._con.execute(self._sql("INSERT INTO {0} VALUES (%s)").format(self._erasures), (len(gone),))
        with self._lock:
            self._con.execute(self._sql("VACUUM {0}").format(self._keys))  # dead tuples go now, not later
        return gone

    def generation(self) -> int:
        with self._lock:
            return int(self._con.execute(self._sql("SELECT count(*) FROM {0}").format(self._erasures)).fetchone()[0])

    def close(self) -> None:
        self._con.close()


def key_store_at(url: str, wrap: KeyWrap) -> KeyStore:
    """The key store a ``JOURNEY_KEY_STORE`` URL names: ``sqlite:///PATH`` or
    ``postgresql://...[?schema=NAME]`` (schema ``journey_keys`` by default)."""
    if url.startswith("postgres"):
        base, _, query = url.partition("?")
        schema = query.removeprefix("schema=") if query.startswith("schema=") else "journey_keys"
        return PostgresKeyStore(base, schema, wrap)
    return SQLiteKeyStore(url.removeprefix("sqlite:///"), wrap)
