"""The clinic domain: the touch contract, stored events and identity resolution.

Imports no infrastructure.
"""

from journey.domain.events import (
    IdentityLinked,
    IdentityUnlinked,
    Recorded,
    TouchRecorded,
    stream_id,
)
from journey.domain.identity import IdentityMap, resolve_identities
from journey.domain.touch import (
    BUILTIN_TYPES,
    TOUCH_TYPES,
    WIRE_VERSION,
    Touch,
    TouchBase,
    parse_touch,
    touch_adapter,
)
from journey.domain.values import Customer, Money

__all__ = [
    "BUILTIN_TYPES",
    "TOUCH_TYPES",
    "WIRE_VERSION",
    "Customer",
    "IdentityLinked",
    "IdentityMap",
    "IdentityUnlinked",
    "Money",
    "Recorded",
    "Touch",
    "TouchBase",
    "TouchRecorded",
    "parse_touch",
    "resolve_identities",
    "stream_id",
    "touch_adapter",
]
