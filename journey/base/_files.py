"""What the segment and worklist files share: loading a TOML file into a frozen model with
clear errors, and binding the file's values as SQL parameters (never pasted into SQL)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from journey.errors import InputError

__all__ = ["Binder", "load_model"]

M = TypeVar("M", bound=BaseModel)


def load_model(model: type[M], path: Path | None, default: str, what: str) -> M:
    """The file at ``path`` (or the shipped ``default`` in ``journey.base``) as ``model``."""
    if path is None:
        text, where = resources.files("journey.base").joinpath(default).read_text("utf-8"), f"the default {what}"
    else:
        try:
            text, where = path.read_text("utf-8"), str(path)
        except OSError as error:
            raise InputError(f"cannot read the {what} file {path}: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{where} is not valid TOML: {error}") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
        raise InputError(f"{where}: {problems}") from None


class Binder:
    """Bound parameters ``$<prefix>0``, ``$<prefix>1``...; ``values`` goes to ``execute``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"${name}"
