"""Load a YAML file into a pydantic model; errors name the file, the line and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(
    path: Path | str,
    model: type[M],
    text: str | None = None,
    check: Callable[[M], list[tuple[tuple[str | int, ...], str]]] | None = None,
) -> M:
    """Parse `path` (or `text`, reported as `path`) and validate it as `model`; `check` returns
    further problems of the valid model as (field path, message).

    Raises ConfigError with one line per problem: `FILE:LINE: FIELD: what was expected`.
    """
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        raise ConfigError(f"{path}:{line}: invalid YAML: {exc.problem or exc}") from exc
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping at the top level, got {type(data).__name__}")
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(path, data, err, model) for err in exc.errors()]
        raise ConfigError("\n".join(problems)) from exc
    found = check(result) if check is not None else []
    if found:
        raise ConfigError(
            "\n".join(f"{path}:{_line_of(data, loc)}: {'.'.join(map(str, loc))}: {msg}" for loc, msg in found)
        )
    return result


def _describe(path: Path, data: Any, err: Any, model: type[BaseModel]) -> str:
    loc = tuple(err.get("loc", ()))
    field = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_of(data, loc)
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        msg = "unknown field (check the spelling)" + (f"; valid here: {', '.join(valid)}" if valid else "")
    elif err.get("type") == "missing":
        msg = "required field is missing"
    got = err.get("input")
    shown = (
        "" if err.get("type") in ("missing", "extra_forbidden") or isinstance(got, dict | list) else f" (got {got!r})"
    )
    return f"{path}:{line}: {field}: {msg}{shown}"


def _fields_at(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """The field names (as written in the file) of the model found at `loc` below `model`."""
    current = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            if get_origin(current) is not list or not args:
                return []
            current = args[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return []
            current = field.annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    """X from X | None."""
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _line_of(data: Any, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest node of `loc` found in the ruamel tree."""
    node = data
    line = 1
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and part in node:
                if lc is not None:
                    line = lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                if lc is not None:
                    line = lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line
