"""Load a YAML file into a pydantic model; errors name the file, the line and the field.

The file may be hostile or broken (anyone with write access to a policy file can hot-reload it),
so it is read within limits before anything is built from it: its size, then one streaming pass
over its YAML events that stops at the first nesting level, alias or node over the limits. Only
then is it loaded (ruamel's round-trip loader, which keeps line numbers for the messages) and
validated. Every problem, including bytes that are not UTF-8 text and any unexpected exception
of the parser, is a ConfigError naming the file; nothing else escapes.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent, ScalarEvent
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import Scanner

from monitor.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Limits:
    """What a YAML file may hold. Real policies are a few KB, about 300 nodes, nesting under 10."""

    max_bytes: int = 256 << 10  # the file, before it is read (parsing runs at about 200 KB/s)
    max_depth: int = 64  # nested mappings and sequences
    max_nodes: int = 10_000  # scalars, mappings and sequences, counting what each alias stands for
    max_aliases: int = 100  # `*name` references


DEFAULT_LIMITS = Limits()

# Tags a plain-data file may spell out; anything else (!!python/object, !custom, %TAG'd) is refused.
_CORE_TAGS = frozenset(
    {"!"} | {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}
)
_MAX_PROBLEMS = 50  # lines of one ConfigError
_MAX_SHOWN = 120  # characters of a rejected value quoted in a message


def load_yaml_model(
    path: Path | str,
    model: type[M],
    text: str | None = None,
    check: Callable[[M], list[tuple[tuple[str | int, ...], str]]] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    context: dict[str, Any] | None = None,
) -> M:
    """Parse `path` (or `text`, reported as `path`) and validate it as `model`; `check` returns
    further problems of the valid model as (field path, message).

    Raises ConfigError with one line per problem: `FILE:LINE: FIELD: what was expected`; a file
    over `limits`, not UTF-8 text, or that the parser fails on in any way is a ConfigError too.
    """
    path = Path(path)
    if text is None:
        text = _decode(path, _read(path, limits.max_bytes))
    else:
        if len(text) > limits.max_bytes:
            raise ConfigError(f"{path}: {len(text)} characters, over the limit of {limits.max_bytes}")
        _refuse_nul(path, text.encode("utf-8", "surrogatepass") if "\0" in text else b"")
    try:
        _scan(path, text, limits)
        data = YAML(typ="rt").load(text)
    except ConfigError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        raise ConfigError(f"{path}:{line}: invalid YAML: {exc.problem or exc}") from exc
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else "?"
        char = f" (character #x{exc.character:04x})" if isinstance(exc.character, int) else ""
        raise ConfigError(f"{path}:{line}: invalid YAML: {exc.reason}{char}") from exc
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    except Exception as exc:  # the parser's own failures (RecursionError, ValueError of a huge int, ...)
        raise ConfigError(f"{path}: cannot parse: {type(exc).__name__}: {_short(str(exc))}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping at the top level, got {type(data).__name__}")
    try:
        result = model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = [_describe(path, data, err, model) for err in exc.errors()]
        raise ConfigError(_join(problems)) from exc
    except ConfigError:
        raise
    except Exception as exc:  # a validator that failed other than with ValueError
        raise ConfigError(f"{path}: cannot validate: {type(exc).__name__}: {_short(str(exc))}") from exc
    found = check(result) if check is not None else []
    if found:
        raise ConfigError(
            _join([f"{path}:{_line_of(data, loc)}: {'.'.join(map(str, loc))}: {msg}" for loc, msg in found])
        )
    return result


def _read(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; refused before reading when it is not a regular file or over `max_bytes`."""
    try:
        # O_NONBLOCK: a FIFO put in the file's place must not block the reader.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"{path}: not a regular file")
            if st.st_size > max_bytes:
                raise ConfigError(f"{path}: {st.st_size} bytes, over the limit of {max_bytes}")
            raw = f.read(max_bytes + 1)  # it may have grown since the stat
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise ConfigError(f"{path}: over {max_bytes} bytes, the limit")
    return raw


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 text without NUL bytes (YAML allows none), or a ConfigError at the first bad byte."""
    nul = raw.find(b"\0")
    try:
        text = (raw if nul < 0 else raw[:nul]).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text at byte {exc.start} (0x{raw[exc.start]:02x}); save it as UTF-8"
        ) from None
    _refuse_nul(path, raw)
    return text


def _refuse_nul(path: Path, raw: bytes) -> None:
    at = raw.find(b"\0")
    if at >= 0:
        line = raw.count(b"\n", 0, at) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text at byte {at} (a NUL byte: is it a binary file?)")


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


@functools.cache
def _depth_scanner(max_depth: int) -> type[Scanner]:
    """A scanner that stops at the first flow collection nested deeper than `max_depth`: on a long
    line of `[[[[...` the parser slows quadratically, so the depth cannot wait for its events."""

    class DepthScanner(Scanner):
        def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
            if self.flow_level >= max_depth:
                raise _TooDeep(self.reader.line + 1)
            super().fetch_flow_collection_start(TokenClass, to_push)

    return DepthScanner


def _scan(path: Path, text: str, limits: Limits) -> None:
    """One pass over the YAML events, stopping at the first limit passed: nesting depth, alias
    count, nodes after alias expansion (an alias bomb is refused here, before anything is built
    from it), and tags other than the core ones (no object is ever constructed from a tag)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Scanner = _depth_scanner(limits.max_depth)
    depth = 0
    nodes = 0  # so far, aliases expanded
    aliases = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    open_anchors: list[tuple[str | None, int]] = []  # per open collection: its anchor, `nodes` before it
    try:
        for event in yaml.parse(text):
            if not isinstance(event, NodeEvent):
                if isinstance(event, CollectionEndEvent):
                    depth -= 1
                    anchor, before = open_anchors.pop()
                    if anchor is not None:
                        sizes[anchor] = nodes - before
                continue
            line = event.start_mark.line + 1 if event.start_mark is not None else "?"
            if isinstance(event, AliasEvent):
                aliases += 1
                if aliases > limits.max_aliases:
                    raise ConfigError(f"{path}:{line}: more than {limits.max_aliases} aliases (*name)")
                size = sizes.get(event.anchor)
                if size is None:
                    what = "a node that contains it" if any(a == event.anchor for a, _ in open_anchors) else "nothing"
                    raise ConfigError(f"{path}:{line}: alias *{event.anchor} refers to {what}")
                nodes += size
            else:
                tag = event.tag if isinstance(event, ScalarEvent | CollectionStartEvent) else None
                if tag is not None and tag not in _CORE_TAGS:
                    raise ConfigError(f"{path}:{line}: YAML tag {_short(tag)} is not allowed here (plain data only)")
                nodes += 1
                if isinstance(event, ScalarEvent):
                    if event.anchor is not None:
                        sizes[event.anchor] = 1
                else:
                    depth += 1
                    if depth > limits.max_depth:
                        raise ConfigError(f"{path}:{line}: nesting deeper than {limits.max_depth} levels")
                    open_anchors.append((event.anchor, nodes - 1))
            if nodes > limits.max_nodes:
                raise ConfigError(
                    f"{path}:{line}: more than {limits.max_nodes} values"
                    + (" once its aliases are expanded (an alias bomb?)" if aliases else "")
                )
    except _TooDeep as exc:
        raise ConfigError(f"{path}:{exc.line}: nesting deeper than {limits.max_depth} levels") from None


def _short(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _join(problems: list[str]) -> str:
    if len(problems) > _MAX_PROBLEMS:
        problems = [*problems[:_MAX_PROBLEMS], f"... and {len(problems) - _MAX_PROBLEMS} more problems"]
    return "\n".join(problems)


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
    quiet = err.get("type") in ("missing", "extra_forbidden") or isinstance(got, dict | list)
    shown = "" if quiet else f" (got {_short(repr(got))})"
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
