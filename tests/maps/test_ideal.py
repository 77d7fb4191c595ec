"""The ideal journey file: the shipped default loads; mistakes are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from journey.errors import InputError
from journey.maps.ideal import load_ideal, parse_duration

VALID = """
name = "Mini"
[[steps]]
id = "call"
activities = ["call"]
[[steps]]
id = "visit"
activities = ["visit"]
[[deadlines]]
id = "fast"
label = "visit within a week"
from = "call"
to = "visit"
within = "7d"
"""


def test_the_default_clinic_journey_ships_with_the_package() -> None:
    model = load_ideal()
    assert [s.id for s in model.steps][:3] == ["awareness", "first_contact", "booking"]
    assert {d.id: d.seconds for d in model.deadlines} == {
        "callback_15m": 900, "reminder_1d": 86400, "thank_you_48h": 172800}
    assert model.steps[0].optional and model.expected_after(1) == ()
    assert model.expected_after(3) == ("booking",)


def test_a_user_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "ideal.toml"
    path.write_text(VALID)
    model = load_ideal(path)
    assert model.expected_after(1) == ("call",) and model.deadlines[0].from_ == "call"


@pytest.mark.parametrize(("change", "message"), [
    (("within = \"7d\"", "within = \"soon\""), "not a duration"),
    (("within = \"7d\"", "within = \"7d\"\nat_least = \"1d\""), "exactly one of within"),
    (("to = \"visit\"", "to = \"payment\""), "neither a step nor an event"),
    (("id = \"visit\"", "id = \"call\""), "unique"),
    (("activities = [\"visit\"]", "activities = [\"visit\"]\ncolour = \"red\""), "Extra inputs"),
    (("activities = [\"visit\"]", "activities = [\"visit\"]\nwhere = { \"x' OR 1=1\" = \"a\" }"), "not a field name"),
    (("id = \"call\"", "id = \"Call; DROP\""), "pattern"),
    (("name = \"Mini\"", "name = "), "not valid TOML"),
])
def test_mistakes_in_the_file_are_clear_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "ideal.toml"
    path.write_text(VALID.replace(*change, 1))
    with pytest.raises(InputError, match=message):
        load_ideal(path)


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_ideal(tmp_path / "nope.toml")


def test_durations() -> None:
    assert parse_duration("15m") == 900 and parse_duration("48h") == 172800 and parse_duration("1.5d") == 129600
    with pytest.raises(ValueError):
        parse_duration("15 minutes")
