from __future__ import annotations

from pathlib import Path

import pytest

from journey.config import Settings
from journey.errors import ConfigurationError


def test_defaults_are_the_embedded_sqlite_store() -> None:
    settings = Settings.from_env({})
    assert settings.home == Path(".journey")
    assert settings.sqlite_path == Path(".journey/events.sqlite")
    assert not settings.is_postgres


def test_postgres_is_chosen_by_url() -> None:
    assert Settings.from_env({"JOURNEY_EVENT_STORE": "postgresql://u@h/db"}).is_postgres


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"JOURNEY_EVENT_STORE": "mysql://x"}, "must start with"),
        ({"JOURNEY_DEFAULT_REGION": "Russia"}, "two-letter"),
        ({"JOURNEY_BATCH_SIZE": "lots"}, "whole number"),
        ({"JOURNEY_BATCH_SIZE": "0"}, "out of range"),
    ],
)
def test_bad_settings_say_what_is_wrong(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Settings.from_env(env)


def test_error_message_never_shows_a_password() -> None:
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env({"JOURNEY_EVENT_STORE": "mysql://user:hunter2@h/db"})
    assert "hunter2" not in str(error.value)


def test_the_stage_model_setting_names_an_existing_file(tmp_path: Path) -> None:
    assert Settings.from_env({}).stage_model_path is None
    model = tmp_path / "stages.toml"
    model.write_text("")
    assert Settings.from_env({"JOURNEY_STAGE_MODEL": str(model)}).stage_model_path == model
    with pytest.raises(ConfigurationError, match="JOURNEY_STAGE_MODEL"):
        Settings.from_env({"JOURNEY_STAGE_MODEL": str(tmp_path / "missing.toml")})


def test_the_property_policy_is_a_file_setting(tmp_path) -> None:  # noqa: ANN001
    from journey.bootstrap import open_policy

    assert Settings.from_env({}).property_policy_path is None
    assert "note" not in open_policy(Settings.from_env({"JOURNEY_HOME": str(tmp_path)})).analytic
    policy = tmp_path / "properties.toml"
    policy.write_text('[[property]]\nname = "note"\nkind = "text"\nanalytic = true\n')
    settings = Settings.from_env({"JOURNEY_PROPERTY_POLICY": str(policy), "JOURNEY_HOME": str(tmp_path)})
    assert settings.property_policy_path == policy and open_policy(settings).analytic == {"note"}
    with pytest.raises(ConfigurationError, match="JOURNEY_PROPERTY_POLICY"):
        Settings.from_env({"JOURNEY_PROPERTY_POLICY": str(tmp_path / "missing.toml")})
    policy.write_text('[[property]]\nname = "note"\nkind = "prose"\nanalytic = true\n')
    with pytest.raises(ConfigurationError, match="'kind' must be one of"):
        open_policy(settings)
