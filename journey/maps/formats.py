"""The export formats of a journey map (``journey map --format``), defined once."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["FORMATS", "Format"]

Format = Literal["json", "graphml", "dot", "svg"]
FORMATS: tuple[str, ...] = get_args(Format)
