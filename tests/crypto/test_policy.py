"""The property policy file: shipped default, validation with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from journey.crypto.policy import default_policy, load_policy, parse_policy
from journey.errors import ConfigurationError


def test_the_shipped_policy_shows_codes_and_seals_notes() -> None:
    policy = default_policy()
    assert {"doctor", "branch", "amount", "rating"} <= policy.analytic
    assert "note" not in policy.analytic and not policy.is_analytic("anything-undeclared")
    assert load_policy(None) == policy


def test_a_policy_file_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[[property]]\nname = "room"\nkind = "code"\nanalytic = true\n', "utf-8")
    assert load_policy(path).analytic == {"room"}


@pytest.mark.parametrize(("text", "message"), [
    ("[[property]]\nname = 'a'\nkind = 'colour'\nanalytic = true", "'kind' must be one of"),
    ("[[property]]\nname = 'a'\nkind = 'code'\nanalytic = 'yes'", "'analytic' must be true or false"),
    ("[[property]]\nkind = 'code'\nanalytic = true", "'name' must be a non-empty string"),
    ("[[property]]\nname = 'a'\nkind = 'code'\nanalytic = true\nshown = 1", "unknown field 'shown'"),
    ("[[property]]\nname = 'a'\nkind = 'code'\nanalytic = true\n[[property]]\nname = 'a'\nkind = 'code'\n"
     "analytic = false", "declared twice"),
    ("[stages]\nx = 1", "unknown table 'stages'"),
    ("name = ", "not valid TOML"),
])
def test_a_bad_policy_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_policy(text, "p.toml")


def test_an_unreadable_policy_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the property policy"):
        load_policy(tmp_path / "missing.toml")
