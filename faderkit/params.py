"""Component params as pydantic models: checked by the core, with their defaults, before anything is built.

A plugin declares what a component accepts with ``Entry(name, factory, summary, params=Model)``,
``Model`` a :class:`Params` subclass whose fields carry types, bounds, defaults and descriptions.
The core then checks a recipe's ``params`` against it when the recipe is loaded (so a misspelled
or out-of-range param is a recipe error naming its key, before any data is read), records the
resolved values, defaults included, in the recipe, and hands the factory the checked values as
keywords. A component without a model gets its ``params`` as written, as it always did.
"""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import FaderkitError


class Params(BaseModel):
    """Base for a component's params: unknown keys, NaN and loose types (``true``, ``"3"`` or ``2.0``
    for an int) are refused. A field that should take text for a path says ``Field(..., strict=False)``."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, protected_namespaces=())


class Strict(BaseModel):
    """Base for a recipe's sections: unknown keys and NaN are refused (values as loose as YAML writes them)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class BadParams(Exception):
    """``params`` did not fit the component's model: ``problems`` are (location, message) pairs."""

    def __init__(self, problems: list[tuple[tuple, str]]):
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))
        self.problems = problems


def _got(value: Any) -> str:
    """A value as a user wrote it in YAML (a text quoted), shortened."""
    text = show(value) if value is None or isinstance(value, bool) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def problems(exc: ValidationError) -> list[tuple[tuple, str]]:
    """Each error of ``exc`` as (location, one-line message a user understands)."""
    out = []
    for err in exc.errors():
        kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "literal_error":
            msg = f"{_got(value)} is not one of {err['ctx']['expected']}"
        elif kind != "value_error" and not isinstance(value, (dict, list, BaseModel)):
            msg = f"{msg} (got {_got(value)})"
        out.append((tuple(err["loc"]), msg))
    return out


def check(model: type[BaseModel], params: Mapping[str, Any]) -> BaseModel:
    """``params`` validated against ``model`` (defaults filled in); raises :class:`BadParams`.

    Keys the model does not declare are refused here even when the model itself would ignore them,
    so a misspelled param never goes unnoticed.
    """
    if not isinstance(params, Mapping):
        raise BadParams([((), f"params must be a mapping of names to values, not {_got(params)}")])
    accepted = ", ".join(model.model_fields) or "none"
    found = [((k,), f"unknown key (accepted: {accepted})") for k in params if k not in model.model_fields]
    try:
        checked = model.model_validate({k: v for k, v in params.items() if k in model.model_fields})
    except ValidationError as exc:
        raise BadParams(found + _with_expected(model, exc)) from None
    if found:
        raise BadParams(found)
    return checked


def _with_expected(model: type[BaseModel], exc: ValidationError) -> list[tuple[tuple, str]]:
    """The problems of ``exc``; a field of the wrong type or out of bounds says what it expects:
    ``expected int in [1, 65536], got 0``, or for a choice ``'bicubic' is not a choice; choose one of: ...``."""
    try:
        schema = model.model_json_schema()
    except Exception:  # a field type without a JSON schema: pydantic's own words will do
        return problems(exc)
    out = []
    for (loc, msg), err in zip(problems(exc), exc.errors()):
        prop = schema.get("properties", {}).get(loc[0]) if len(loc) == 1 else None
        if prop is not None and err["type"] not in ("value_error", "assertion_error", "missing"):
            got = _got(err.get("input"))
            if "enum" in prop:
                msg = f"{got} is not a choice; choose one of: {', '.join(show(v) for v in prop['enum'])}"
            else:
                msg = f"expected {type_text(prop, schema.get('$defs', {}))}, got {got}"
        out.append((loc, msg))
    return out


def as_recipe(checked: BaseModel) -> dict[str, Any]:
    """The values to record in a recipe (plain YAML/JSON types)."""
    return checked.model_dump(mode="json")


def as_kwargs(checked: BaseModel) -> dict[str, Any]:
    """The values to hand the factory, as validated (a path stays a Path, a tuple a tuple)."""
    return {name: getattr(checked, name) for name in type(checked).model_fields}


def resolve(kind: str, entry, params: Mapping[str, Any]) -> dict[str, Any]:
    """The factory's keywords for ``params`` of a registry entry: checked when it declares a model
    (a one-line FaderkitError otherwise), as given when it does not."""
    if entry.params is None:
        return dict(params)
    try:
        return as_kwargs(check(entry.params, params))
    except BadParams as exc:
        where = "; ".join(f"params.{'.'.join(map(str, loc))}: {msg}" if loc else msg for loc, msg in exc.problems)
        raise FaderkitError(f"{kind} '{entry.name}': {where}") from None


# ---------------------------------------------------------------- the listing

def describe(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) of each field, for ``faderkit plugins --params``."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    rows = []
    for name, field in model.model_fields.items():
        prop = schema.get("properties", {}).get(name, {})
        default = "required" if field.is_required() else show(field.get_default(call_default_factory=True))
        rows.append((name, type_text(prop, defs), default, field.description or ""))
    return rows


def show(value: Any) -> str:
    """A value as a recipe would spell it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


_NAMES = {"integer": "int", "number": "float", "string": "text", "boolean": "bool", "null": "null"}


def type_text(prop: dict, defs: dict) -> str:
    """A JSON-schema property as a short type: ``int in [1, 65536]``, ``batch | instance``, ``list of text``."""
    if "$ref" in prop:
        return type_text(defs.get(prop["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "enum" in prop:
        return " | ".join(show(v) for v in prop["enum"])
    if "const" in prop:
        return show(prop["const"])
    if "anyOf" in prop:
        return " or ".join(type_text(p, defs) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        text = f"list of {type_text(prop.get('items', {}), defs)}"
        low, high = prop.get("minItems", 0), prop.get("maxItems")
        if high is not None:
            return text + f", {low} to {high} items"
        return ("non-empty " + text) if low == 1 else text + f", at least {low} items" if low else text
    if kind == "string" and prop.get("format") == "path":
        return "path"
    text = _NAMES.get(kind, str(kind))
    low = ("[", prop["minimum"]) if "minimum" in prop else ("(", prop["exclusiveMinimum"]) \
        if "exclusiveMinimum" in prop else None
    high = (prop["maximum"], "]") if "maximum" in prop else (prop["exclusiveMaximum"], ")") \
        if "exclusiveMaximum" in prop else None
    if low and high:
        text += f" in {low[0]}{show(low[1])}, {show(high[0])}{high[1]}"
    elif low:
        text += f" {'>=' if low[0] == '[' else '>'} {show(low[1])}"
    elif high:
        text += f" {'<=' if high[1] == ']' else '<'} {show(high[0])}"
    return text
