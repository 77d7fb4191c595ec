"""The ``journey`` command line: the only package that imports click.

One module per command group; each lists its commands in ``COMMANDS`` and ``main``
registers them explicitly. Commands parse options, call a use case with the adapters
the composition root wired (``journey.bootstrap.Adapters``), and print. Settings come
from ``JOURNEY_*`` (see ``journey.config.Settings``). A test may pass its own
``Adapters`` as click's ``obj`` to run a command on in-memory adapters.
"""

from __future__ import annotations

import click

from journey.cli import analysis, base, cohorts, demo, events, kafka, maps, privacy, projection
from journey.cli._common import JourneyGroup

__all__ = ["main"]


@click.group(cls=JourneyGroup)
@click.version_option(package_name="journey")
def main() -> None:
    """journey: an event-sourced customer-journey engine for clinics.

    Settings come from the environment: JOURNEY_HOME (default ./.journey),
    JOURNEY_EVENT_STORE (sqlite:///PATH or postgresql://...), JOURNEY_DEFAULT_REGION.
    """


for _group in (events, kafka, projection, analysis, cohorts, base, maps, privacy, demo):
    for _command in _group.COMMANDS:
        main.add_command(_command)
