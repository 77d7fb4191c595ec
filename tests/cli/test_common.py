from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from journey.cli._common import print_table


@click.command()
def _table() -> None:
    print_table(["name", "value", "ratio"], [("revenue", 1_460_000.0, 0.12345), ("none", None, 12.0)])


def test_one_table_printer_aligns_and_reads_like_numbers() -> None:
    result = CliRunner().invoke(_table)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "value", "ratio"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["revenue", "1,460,000", "0.123"]  # never 1.46e+06
    assert lines[3].split() == ["none", "12"]
    assert len({len(line.rstrip()) <= len(lines[1]) for line in lines[:4]}) == 1
    assert "(2 rows)" in result.stderr


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_the_command_line_answers_without_settings(args: list[str]) -> None:
    from journey.cli import main

    result = CliRunner().invoke(main, args, env={"JOURNEY_EVENT_STORE": "mysql://nope"})
    assert result.exit_code == 0, result.output
