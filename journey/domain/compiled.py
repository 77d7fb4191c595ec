"""A validator compiled from the contract's pydantic models: the fast path of the edge.

The contract is defined once, by the pydantic models in ``journey.domain.touch``;
pydantic validates a touch in ~8-10 µs. ``compile_model`` reads a model (its fields,
constraints, defaults and validators) and builds the same shape as a msgspec ``Struct``,
which msgspec decodes, checks and encodes in C, plus the few Python steps msgspec has no
equivalent for (the contract's own validators, the timestamps' canonical form): ~3 µs
for a call touch, decoded, checked and written out.

It decides only what it is sure of: a record it accepts is one pydantic accepts, with
the same canonical JSON, byte for byte (a differential test checks it on real logs, the
demo clinic and generated edge cases). Anything else (a value pydantic would coerce, an
explicit ``null``, a timestamp in another of the forms pydantic reads, an error to
explain) raises ``Undecided``, and the caller asks pydantic, which gives the verdict and
the message.

A model with a constraint, validator or setting this module does not know is not
compiled (``NotCompiled``): its touches all go to pydantic, so a contract change can make
ingest slower, never wrong. A test asserts every touch type compiles.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from pydantic import AwareDatetime, BaseModel, BeforeValidator, JsonValue, Strict, WithJsonSchema
from pydantic.fields import FieldInfo

from journey.domain.properties import check_custom_shape
from journey.domain.values import as_decimal, iso_day

__all__ = ["Compiled", "NotCompiled", "Undecided", "compile_model", "present"]

Post = Callable[[Any], Any]
"""A Python step after msgspec's checks: the value's canonical form, or ValueError."""


class Undecided(Exception):
    """The compiled path cannot vouch for this record: let pydantic decide."""


class NotCompiled(Exception):
    """The model uses something this module does not know how to check."""


class Compiled:
    """A model compiled: ``decode(raw)`` checks a record, ``encode`` writes it canonical."""

    def __init__(self, struct: type[Struct]) -> None:
        self._decoder = msgspec.json.Decoder(struct)
        self._encoder = msgspec.json.Encoder()

    def decode(self, raw: bytes | str) -> Any:
        """The record as a checked ``struct``, or Undecided."""
        try:
            return self._decoder.decode(raw)
        except (msgspec.DecodeError, ValueError, RecursionError):
            # a Python step's ValueError comes as a DecodeError; invalid UTF-8 as a
            # UnicodeDecodeError; nesting beyond ~1,000 levels as a RecursionError
            raise Undecided from None

    def encode(self, value: Any) -> bytes:
        """A decoded record's canonical JSON."""
        return self._encoder.encode(value)


def present(value: Struct) -> tuple[tuple[str, Any], ...]:
    """A decoded struct's fields that were given, as ``(name, value)`` in field order."""
    return tuple([item for item in zip(value.__struct_fields__, msgspec.structs.astuple(value))
                  if item[1] is not UNSET])


_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})\Z"
"""The one form of RFC 3339 compiled here (ASCII digits: Python's ``\\d`` is any
Unicode digit); pydantic reads more forms, and decides those."""
_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"


def compile_model(model: type[BaseModel], hooks: Mapping[str, Callable[..., Any]]) -> Compiled:
    """``model`` compiled. ``hooks`` replace the model's validators, by their qualified
    name (``Customer._email``); a validator without one, or any constraint not
    understood, raises ``NotCompiled``."""
    return Compiled(_struct(model, hooks))


def _struct(model: type[BaseModel], hooks: Mapping[str, Callable[..., Any]]) -> type[Struct]:
    """``model`` as a msgspec ``Struct``, its Python steps in ``__post_init__`` (which
    msgspec calls after decoding each struct, nested ones first; a ``ValueError`` there
    is a validation error)."""
    config = model.model_config
    if config.get("extra") != "forbid" or config.get("allow_inf_nan", True) or config.get("strict"):
        raise NotCompiled(f"{model.__name__}: only extra='forbid', allow_inf_nan=False models compile")
    decorators = model.__pydantic_decorators__
    if decorators.root_validators or decorators.field_serializers or decorators.model_serializers \
            or decorators.computed_fields:
        raise NotCompiled(f"{model.__name__}: serializers or computed fields")
    after: dict[str, list[Post]] = {}
    for decorator in decorators.field_validators.values():
        if decorator.info.mode != "after":
            raise NotCompiled(f"{model.__name__}: a {decorator.info.mode} field validator")
        for name in decorator.info.fields:
            after.setdefault(name, []).append(_hook(decorator.func, hooks))
    if any(d.info.mode != "after" for d in decorators.model_validators.values()):
        raise NotCompiled(f"{model.__name__}: a model validator that is not 'after'")
    finishers = [_hook(d.func, hooks) for d in decorators.model_validators.values()]
    fields, steps = [], []
    for name, info in model.model_fields.items():
        spec, post = _field(name, info, after.pop(name, []), hooks)
        fields.append(spec)
        if post is not None:
            steps.append((name, post, info.is_required()))
    if after:
        raise NotCompiled(f"{model.__name__}: validators of unknown fields {sorted(after)}")
    namespace = {"__post_init__": _post_init(steps, finishers)} if steps or finishers else None
    return msgspec.defstruct(model.__name__, fields, kw_only=True, forbid_unknown_fields=True,
                             namespace=namespace)


def _post_init(steps: list[tuple[str, Post, bool]], finishers: list[Post]) -> Callable[[Any], None]:
    """A struct's ``__post_init__``, written out straight (this runs for every touch):
    each field's step replaces its value (an absent optional field is UNSET: no step),
    then the model validators' equivalents see the whole struct."""
    lines = ["def __post_init__(self):"]
    scope: dict[str, Any] = {"UNSET": UNSET}
    for index, (name, _step, required) in enumerate(steps):
        if not name.isidentifier():
            raise NotCompiled(f"a field named {name!r}")
        scope[f"step{index}"] = _step
        if required:
            lines.append(f"    self.{name} = step{index}(self.{name})")
        else:
            lines += [f"    value = self.{name}", "    if value is not UNSET:",
                      f"        self.{name} = step{index}(value)"]
    for index, finish in enumerate(finishers):
        scope[f"finish{index}"] = finish
        lines.append(f"    finish{index}(self)")
    exec("\n".join(lines), scope)  # noqa: S102 - generated from field names checked above
    return scope["__post_init__"]  # type: ignore[no-any-return]


def _hook(func: Any, hooks: Mapping[str, Callable[..., Any]]) -> Callable[..., Any]:
    name = getattr(func, "__func__", func).__qualname__
    if name not in hooks:
        raise NotCompiled(f"validator {name} has no compiled equivalent")
    return hooks[name]


def _field(name: str, info: FieldInfo, after: list[Post],
           hooks: Mapping[str, Callable[..., Any]]) -> tuple[tuple[str, Any, Any] | tuple[str, Any], Post | None]:
    """A field as ``defstruct`` takes it, and its Python step. An absent optional
    field is UNSET (left out when encoding, as pydantic's ``exclude_none``); an
    explicit ``null`` fails msgspec's check (pydantic then decides)."""
    annotation, metadata = info.annotation, list(info.metadata)
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            raise NotCompiled(f"{name}: a union of several types")
        annotation = rest[0]  # absent or null: see the docstring
    kind, post = _type(annotation, metadata, hooks)
    for hook in after:
        post = _chain(post, hook)
    if info.is_required():
        return (name, kind), post
    if info.default_factory in (dict, list) and not (isinstance(kind, type) and issubclass(kind, Struct)):
        return (name, kind, msgspec.field(default_factory=info.default_factory)), post
    if info.default_factory is not None:
        # a model's default is validated by pydantic (validate_default): it decides
        return (name, kind), post
    if info.default is None:
        return (name, kind | UnsetType, UNSET), post
    default = info.default
    if isinstance(default, (list, dict)) and default:
        raise NotCompiled(f"{name}: a non-empty mutable default")
    if not isinstance(default, (str, bool, int, list, dict)):
        raise NotCompiled(f"{name}: a default of type {type(default).__name__}")
    if post is not None:
        raise NotCompiled(f"{name}: a default that would need a Python step")
    if isinstance(default, (list, dict)):
        default = msgspec.field(default_factory=type(default))
    return (name, kind, default), None


def _chain(first: Post | None, then: Post) -> Post:
    if first is None:
        return then
    return lambda value: then(first(value))


def _type(annotation: Any, metadata: list[Any], hooks: Mapping[str, Callable[..., Any]]) -> tuple[Any, Post | None]:
    """The msgspec type of one annotated type (constraints in ``metadata``), and its step."""
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata = _flatten(extra) + metadata
    constraints, before = _constraints(metadata)
    if before is not None:
        _only(constraints, set())
        return _before(before, annotation)
    origin = get_origin(annotation)
    if annotation is str:
        return _string(constraints), None
    if origin is Literal:
        _only(constraints, set())
        if not all(type(v) is str for v in get_args(annotation)):
            raise NotCompiled("a literal that is not a string")
        return annotation, None
    if annotation is bool:
        _only(constraints, set())
        return bool, None
    if annotation is int:
        _only(constraints, {"ge", "le"})
        return Annotated[int, Meta(**constraints)] if constraints else int, None
    if annotation is float:
        _only(constraints, {"ge", "le"})
        return Annotated[float, Meta(**constraints)] if constraints else float, _plain_float
    if annotation is AwareDatetime:
        if constraints.pop("strict", None) is not True:
            raise NotCompiled("only strict timestamps compile")
        _only(constraints, set())
        return Annotated[str, Meta(pattern=_TIMESTAMP)], canonical_timestamp
    if origin is list:
        _only(constraints, {"max_length"})
        item, post = _type(get_args(annotation)[0], [], hooks)
        if post is not None:
            raise NotCompiled("a list of items that need a Python step")
        return Annotated[list[item], Meta(**constraints)], None  # type: ignore[valid-type]
    if origin is dict and get_args(annotation)[0] is str:
        _only(constraints, {"max_length"})
        item, post = _type(get_args(annotation)[1], [], hooks)
        if post is not None:
            raise NotCompiled("an object of values that need a Python step")
        return Annotated[dict[str, item], Meta(**constraints)], None  # type: ignore[valid-type]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _only(constraints, set())
        return _struct(annotation, hooks), None  # its steps run in its own __post_init__
    raise NotCompiled(f"no compiled check for {annotation!r}")


def _flatten(extra: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in extra:
        out.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return out


def _constraints(metadata: list[Any]) -> tuple[dict[str, Any], Any]:
    """``metadata`` as ``{constraint: value}`` and the before-validator, if any."""
    constraints: dict[str, Any] = {}
    before = None
    for item in metadata:
        if isinstance(item, at.MinLen):
            constraints["min_length"] = item.min_length
        elif isinstance(item, at.MaxLen):
            constraints["max_length"] = item.max_length
        elif isinstance(item, at.Ge):
            constraints["ge"] = item.ge
        elif isinstance(item, at.Le):
            constraints["le"] = item.le
        elif isinstance(item, Strict):
            constraints["strict"] = item.strict
        elif isinstance(item, BeforeValidator) and before is None:
            before = item.func
        elif isinstance(item, WithJsonSchema):
            continue  # documentation only
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            constraints["pattern"] = item.pattern  # type: ignore[attr-defined]
        else:
            raise NotCompiled(f"no compiled check for the constraint {item!r}")
    return constraints, before


def _only(constraints: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(constraints) - allowed
    if unknown:
        raise NotCompiled(f"constraints {sorted(unknown)} are not compiled here")


def _string(constraints: dict[str, Any]) -> Any:
    """msgspec counts characters as pydantic does and searches patterns with Python's
    ``re``. Only two kinds of pattern compile: ``\\S`` (every character Rust's regex
    calls white space, ``str.isspace`` does too: what passes here passes pydantic), and
    an anchored ASCII pattern, whose ``$`` becomes ``\\Z`` (Python's ``$`` also matches
    before a final newline, Rust's does not)."""
    _only(constraints, {"min_length", "max_length", "pattern"})
    pattern = constraints.get("pattern")
    if pattern is not None and pattern != r"\S":
        if not (pattern.startswith("^") and pattern.endswith("$") and pattern.isascii() and "\\" not in pattern
                and "." not in pattern):
            raise NotCompiled(f"the pattern {pattern!r}")
        constraints = {**constraints, "pattern": pattern[:-1] + r"\Z"}
    return Annotated[str, Meta(**constraints)] if constraints else str


def _before(func: Any, annotation: Any) -> tuple[Any, Post]:
    """Types whose pydantic form starts with one of the contract's before-validators."""
    if func is iso_day and annotation is date:
        return Annotated[str, Meta(pattern=_DAY)], _day
    if func is as_decimal and annotation is Decimal:
        return Union[str, int], as_decimal
    if func is check_custom_shape and get_origin(annotation) is dict and get_args(annotation) == (str, JsonValue):
        return dict[str, Any], _custom
    raise NotCompiled(f"no compiled check for the validator {func!r}")


def canonical_timestamp(value: str) -> str:
    """A timestamp (already of the compiled form) as pydantic writes it back: seconds
    always, microseconds when not zero, ``Z`` for a zero offset; ValueError if it is no
    instant (a 30 February, an offset of 24 hours)."""
    datetime.fromisoformat(value)  # ranges: month, day of month, hour, offset
    if value[19] == "Z" or (value[19] != "." and value[20:] != "00:00" and value[20:22] <= "23"
                            and value[23:] <= "59"):
        return value  # no fraction, and the offset written as pydantic writes it
    if value.endswith("Z"):
        fraction, offset = value[20:-1], "Z"
    else:
        fraction, offset = value[20:-6], value[-6:]
    if offset in ("+00:00", "-00:00"):
        offset = "Z"
    elif offset != "Z" and (offset[1:3] > "23" or offset[4:] > "59"):
        raise ValueError("an offset pydantic reads differently")
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    return f"{value[:19]}.{micro:06d}{offset}" if micro else f"{value[:19]}{offset}"


def _day(value: str) -> str:
    date.fromisoformat(value)
    return value


_PLAIN = (1e-5, 1e16)
"""msgspec writes floats outside this range with an exponent (``1e16``), pydantic with a
signed one (``1e+16``); inside it both write ryu's shortest digits."""


def _plain_float(value: float) -> float:
    if value and not _PLAIN[0] <= abs(value) < _PLAIN[1]:
        raise ValueError("a float msgspec and pydantic write differently")
    return value


def _custom(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form properties: any JSON, within the shape limits, floats written alike."""
    check_custom_shape(value)
    _plain_floats(value)
    return value


def _plain_floats(value: Any) -> None:
    if type(value) is float:
        _plain_float(value)
    elif type(value) is dict:
        for item in value.values():
            _plain_floats(item)
    elif type(value) is list:
        for item in value:
            _plain_floats(item)
