"""The property policy: which properties of custom touches analysts may see.

Custom touches are private by default: every property value is sealed with the
customer's keys unless the policy declares the property analytic. The policy is a
small TOML file (``default_properties.toml`` is shipped; ``JOURNEY_PROPERTY_POLICY``
names another) listing ``[[property]]`` tables with ``name``, ``kind`` and ``analytic``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from journey.errors import ConfigurationError

__all__ = ["KINDS", "Property", "PropertyPolicy", "default_policy", "load_policy"]

KINDS = ("text", "code", "number", "boolean", "money")


@dataclass(frozen=True)
class Property:
    name: str
    kind: str
    analytic: bool


@dataclass(frozen=True)
class PropertyPolicy:
    """The declared properties by name; ``analytic`` the names shown in the clear."""

    properties: tuple[Property, ...] = ()

    @property
    def analytic(self) -> frozenset[str]:
        return frozenset(p.name for p in self.properties if p.analytic)

    def is_analytic(self, name: str) -> bool:
        return name in self.analytic


def load_policy(path: Path | str | None = None) -> PropertyPolicy:
    """Read and validate a property policy file (``None``: the shipped default)."""
    if path is None:
        return default_policy()
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigurationError(f"cannot read the property policy {path}: {error.strerror or error}") from None
    return parse_policy(text, str(path))


def default_policy() -> PropertyPolicy:
    text = resources.files("journey.crypto").joinpath("default_properties.toml").read_text("utf-8")
    return parse_policy(text, "the default property policy")


def parse_policy(text: str, where: str) -> PropertyPolicy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{where} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"property"})
    if unknown:
        raise ConfigurationError(f"{where}: unknown table {unknown[0]!r}; a policy holds only [[property]] tables")
    entries = data.get("property", [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{where}: 'property' must be a list of [[property]] tables")
    seen: set[str] = set()
    out = []
    for number, entry in enumerate(entries, start=1):
        prop = _property(entry, f"{where}: property {number}")
        if prop.name in seen:
            raise ConfigurationError(f"{where}: property {prop.name!r} is declared twice; keep one")
        seen.add(prop.name)
        out.append(prop)
    return PropertyPolicy(tuple(out))


def _property(entry: Any, where: str) -> Property:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} is not a table")
    extra = sorted(set(entry) - {"name", "kind", "analytic"})
    if extra:
        raise ConfigurationError(f"{where}: unknown field {extra[0]!r}; use name, kind, analytic")
    name, kind, analytic = entry.get("name"), entry.get("kind"), entry.get("analytic")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ConfigurationError(f"{where}: 'name' must be a non-empty string of at most 200 characters")
    if kind not in KINDS:
        raise ConfigurationError(f"{where} ({name}): 'kind' must be one of {', '.join(KINDS)} (got {kind!r})")
    if not isinstance(analytic, bool):
        raise ConfigurationError(f"{where} ({name}): 'analytic' must be true or false (got {analytic!r})")
    return Property(name, kind, analytic)
