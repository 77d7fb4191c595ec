"""The declarative stage model: a custom file reproduces the stages of the hand-written
SQL it replaced, the default model moves patients only by their own acts, files are validated, user values reach SQL only as parameters, and
`journey rederive` applies a new model to the stored base without loading any event."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from journey.errors import InputError
from journey.projections.stage_model import compile_stages, default_stage_model, load_stage_model
from tests.clinic import demo_projection
from tests.commands import demo, journey

TOUCH_STAGES = Path(__file__).with_name("touch_stages.toml")
# The stage expression of journey/projections/stages.py before this model replaced it.
REPLACED = """CASE
    WHEN t.type IN ('ad_click', 'referral') THEN 'awareness'
    WHEN t.type IN ('call', 'form') THEN 'contact'
    WHEN t.type = 'message' AND t.direction = 'inbound' THEN 'contact'
    WHEN t.type IN ('booking', 'booking_cancelled', 'no_show') THEN 'booking'
    WHEN t.type = 'message' AND t.purpose IN ('reminder', 'confirmation') THEN 'booking'
    WHEN t.type = 'visit' AND t.visit_no = 1 THEN 'first_visit'
    WHEN t.type = 'visit' AND t.occurred_at - t.prev_visit_at >= INTERVAL 180 DAY THEN 'retention'
    WHEN t.type IN ('visit', 'treatment_plan', 'payment') THEN 'treatment'
    WHEN t.type = 'message' AND t.purpose IN ('recall', 'care', 'thank_you', 'birthday',
        'promotion', 'newsletter') THEN 'retention'
    WHEN t.type = 'review' THEN 'advocacy'
    ELSE NULL
END"""


def test_a_custom_model_gives_every_touch_the_stage_the_replaced_sql_gave(tmp_path: Path) -> None:
    path = demo_projection(tmp_path, patients=600, stage_model=load_stage_model(TOUCH_STAGES))
    con = duckdb.connect(str(path), read_only=True)
    compared = con.execute(f"""
        WITH t AS (
            SELECT *, CASE WHEN type = 'visit' THEN row_number() OVER v END AS visit_no,
                CASE WHEN type = 'visit' THEN lag(occurred_at) OVER v END AS prev_visit_at
            FROM touchpoints WINDOW v AS (PARTITION BY customer_id, type = 'visit' ORDER BY occurred_at, position)
        )
        SELECT count(*), count(*) FILTER (WHERE stage IS NOT DISTINCT FROM ({REPLACED})),
            count(DISTINCT stage) FILTER (WHERE type = 'visit')
        FROM t
    """).fetchone()
    total, same, visit_stages = compared
    assert total > 5_000 and same == total
    assert visit_stages == 3  # first_visit, treatment and retention visits all occur


def test_the_default_model_moves_patients_only_by_their_own_acts(tmp_path: Path) -> None:
    con = duckdb.connect(str(demo_projection(tmp_path, patients=600)), read_only=True)
    staged = dict(con.execute("""
        SELECT CASE WHEN type IN ('message', 'call') THEN type || ':' || direction
                    WHEN type = 'treatment_plan' THEN type || ':' || status ELSE type END AS kind,
            coalesce(list(DISTINCT stage ORDER BY stage) FILTER (WHERE stage IS NOT NULL), [])
        FROM touchpoints GROUP BY kind
    """).fetchall())
    for clinic_action in ("message:outbound", "call:outbound", "payment", "treatment_plan:proposed",
                          "treatment_plan:declined", "no_show", "booking_cancelled"):
        assert staged[clinic_action] == [], clinic_action
    assert staged["call:inbound"] == ["contact"] and staged["booking"] == ["booking"]
    assert staged["treatment_plan:accepted"] == ["treatment"]
    assert staged["visit"] == ["first_visit", "retention", "treatment"]
    assert staged["review"] == ["advocacy"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stages.toml"
    path.write_text(text, encoding="utf-8")
    return path


TWO = """
[[stage]]
name = "contact"
sla = "3d"
rule = [{ types = ["call"] }]
[[stage]]
name = "visit"
rule = [{ types = ["visit"] }]
"""


@pytest.mark.parametrize(("text", "message"), [
    ("[[stage]]\nname = 'only'\nrule = [{ types = ['call'] }]\n", "at least 2"),
    (TWO.replace('"contact"', '"Contact Stage"'), "stage.0.name"),
    (TWO.replace('"3d"', '"three days"'), "not a duration"),
    (TWO.replace('types = ["call"]', 'types = ["call"], where = { phone = "x" }'), "unknown condition column"),
    (TWO.replace('types = ["call"]', 'types = ["call"], colour = "red"'), "Extra inputs"),
    (TWO.replace('"visit"', '"contact"', 1), "stage names repeat"),
    (TWO.replace('types = ["call"]', 'nth = 1'), "needs `types` or `activities`"),
    ("[[stage]\nname =", "not valid TOML"),
])
def test_bad_files_get_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_stage_model(write(tmp_path, text))


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_stage_model(tmp_path / "nope.toml")


EVIL = "x'); DROP TABLE touchpoints; --"


def test_values_from_the_file_are_bound_parameters_never_sql(tmp_path: Path) -> None:
    model = load_stage_model(write(tmp_path, TWO.replace(
        'types = ["call"]', f'types = ["call"], where = {{ purpose = "{EVIL}" }}, activities = ["{EVIL}"]')))
    compiled = compile_stages(model)
    assert EVIL not in compiled.sql and EVIL in compiled.parameters.values()
    con = duckdb.connect()
    con.execute("CREATE TABLE touchpoints AS SELECT 'call' AS type, 'call' AS activity, 'x' AS purpose, "
                "1 AS type_no, now() AS occurred_at, NULL::TIMESTAMPTZ AS prev_type_at")
    assert con.execute(f"SELECT {compiled.sql} FROM touchpoints t", compiled.parameters).fetchall() == [(None,)]
    assert con.execute("SELECT count(*) FROM touchpoints").fetchone() == (1,)


def test_stages_validate_command(tmp_path: Path) -> None:
    good = journey("stages", "validate", str(write(tmp_path, TWO)), home=tmp_path)
    assert good.returncode == 0 and "valid (2 stages)" in good.stdout
    bad = journey("stages", "validate", str(write(tmp_path, TWO.replace('"contact"', f'"{EVIL}"'))), home=tmp_path)
    assert bad.returncode == 2 and "stage.0.name" in bad.stderr


def test_rederive_applies_a_new_model_without_loading_events(tmp_path: Path) -> None:
    stored = demo(tmp_path, 120)
    assert journey("project", home=tmp_path).returncode == 0
    # more events reach the store after the projection: a re-derive must not load them
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"event_id": "late-1", "type": "call", "occurred_at": "2025-06-01T10:00:00+03:00",
                                 "customer": {"customer_id": "P-late"}, "properties": {"direction": "inbound", "answered": True}}) + "\n")
    assert json.loads(journey("ingest", str(extra), "--json", home=tmp_path).stdout)["accepted"] == 1

    def stages() -> dict[str, int]:
        result = journey("sql", "SELECT coalesce(stage, '-') AS s, count(*) AS n FROM touchpoints "
                         "WHERE type <> 'referred_friend' GROUP BY 1",  # the stored touches, not the derived credits
                         "--format", "json", home=tmp_path)
        return {row["s"]: row["n"] for row in map(json.loads, result.stdout.splitlines())}

    before = stages()
    model = write(tmp_path, TWO.replace('"visit"', '"came"', 1))
    result = journey("rederive", "--stages", str(model), "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["position"] == stored
    after = stages()
    assert sum(after.values()) == sum(before.values()) == stored  # the late call was not loaded
    counts = journey("sql", "SELECT count(*) FILTER (WHERE type = 'call') AS calls, "
                     "count(*) FILTER (WHERE type = 'visit') AS visits FROM touchpoints", "--format", "json",
                     home=tmp_path)
    expected = json.loads(counts.stdout)
    assert after == {"contact": expected["calls"], "came": expected["visits"],
                     "-": stored - expected["calls"] - expected["visits"]}
    # before, the default model: the patient's own inbound calls and messages and forms were contact
    own = json.loads(journey("sql", "SELECT count(*) FILTER (WHERE (type IN ('call', 'message') AND direction = "
                             "'inbound') OR type = 'form') AS n FROM touchpoints", "--format", "json",
                             home=tmp_path).stdout)["n"]
    assert before["contact"] == own != after["contact"]
    funnel = journey("sql", "SELECT stage, entered FROM stage_funnel ORDER BY stage_order", "--format", "json",
                     home=tmp_path)
    assert [json.loads(line)["stage"] for line in funnel.stdout.splitlines()] == ["contact", "came"]
    status = json.loads(journey("status", "--json", home=tmp_path).stdout)
    assert status["projection_position"] == stored and status["position"] == stored + 1


def test_rederive_refuses_a_bad_model_and_leaves_the_tables(tmp_path: Path) -> None:
    demo(tmp_path, 30)
    assert journey("project", home=tmp_path).returncode == 0
    bad = journey("rederive", "--stages", str(write(tmp_path, "[[stage]]\nname = 'x'\n")), home=tmp_path)
    assert bad.returncode == 2 and "error:" in bad.stderr
    names = journey("sql", "SELECT stage FROM stage_funnel ORDER BY stage_order", "--format", "csv", home=tmp_path)
    assert names.stdout.split()[1:] == list(default_stage_model().names)


def test_the_stage_model_setting_must_name_a_file(tmp_path: Path) -> None:
    result = journey("stages", "show", home=tmp_path, JOURNEY_STAGE_MODEL=str(tmp_path / "missing.toml"))
    assert result.returncode != 0 and "JOURNEY_STAGE_MODEL" in result.stderr
    shown = journey("stages", "show", home=tmp_path, JOURNEY_STAGE_MODEL=str(write(tmp_path, TWO)))
    assert shown.returncode == 0 and "contact" in shown.stdout and "awareness" not in shown.stdout
