"""Which request paths are model calls, in which dialect, and where they are forwarded.

A route maps a path pattern (a glob: `*` matches any characters, `/` included) to a dialect,
optionally with its own upstream base URL. Routes from the settings are tried first, then the
defaults; the first match wins. Model routes apply to POST; anything else (embeddings, files,
batches, models, count_tokens, any other path) is passed through: forwarded untouched and
logged with its status and timing, but not recorded as an exchange.

Defaults, for clients whose base URL points at the proxy:
- OpenAI and OpenAI-compatible servers, with or without `/v1` (vLLM, Ollama, llama.cpp,
  LiteLLM), Azure OpenAI (`/openai/deployments/{name}/chat/completions?api-version=...` and
  `/openai/v1/...`) and Gemini's compatibility path (`/v1beta/openai/chat/completions`):
  `*/chat/completions` -> openai, `*/responses` -> responses.
- Anthropic: `/v1/messages` and `*/v1/messages` -> anthropic.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from monitor.records import Dialect

RouteDialect = Literal["openai", "anthropic", "responses", "passthrough"]


class Route(BaseModel):
    """One row of the route table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(..., min_length=1, description="glob pattern of the request path, e.g. '/v2/chat'")
    dialect: RouteDialect
    upstream: AnyHttpUrl | None = Field(None, description="base URL for this route (default: the dialect's upstream)")

    @classmethod
    def parse(cls, text: str) -> Route:
        """`PATTERN=DIALECT` or `PATTERN=DIALECT@UPSTREAM` (the `--route` flag)."""
        pattern, sep, rest = text.partition("=")
        dialect, _, upstream = rest.partition("@")
        if not sep or not pattern or not dialect:
            raise ValueError(f"expected PATTERN=DIALECT[@UPSTREAM], got {text!r}")
        return cls.model_validate({"path": pattern, "dialect": dialect, "upstream": upstream or None})


DEFAULT_ROUTES: tuple[Route, ...] = (
    Route(path="*/chat/completions", dialect="openai"),
    Route(path="*/responses", dialect="responses"),
    Route(path="*/v1/messages", dialect="anthropic"),
)

# Anthropic's other endpoints (count_tokens, batches, the legacy complete) go to its upstream.
_ANTHROPIC_PATHS = re.compile(r"(^|/)v1/(messages|complete)(/|$)")


@dataclass(frozen=True)
class Target:
    """Where a request goes: its dialect (None: passed through, not recorded) and base URL."""

    dialect: Dialect | None
    base: str
    error_dialect: Dialect  # the shape of errors the proxy itself answers with


class RouteTable:
    """The routes of one proxy, compiled once."""

    def __init__(self, routes: list[Route], default_base: str, anthropic_base: str) -> None:
        self.routes = [*routes, *DEFAULT_ROUTES]
        self._compiled = [re.compile(fnmatch.translate(r.path)) for r in self.routes]
        self._default = default_base
        self._anthropic = anthropic_base
        # Clients use a handful of paths: remember the answers (bounded, for paths with ids in them).
        self.target = functools.lru_cache(maxsize=4096)(self._target)

    def _target(self, method: str, path: str) -> Target:
        """Where a request with this method and path goes (`target`, cached)."""
        anthropic_like = bool(_ANTHROPIC_PATHS.search(path))
        for route, pattern in zip(self.routes, self._compiled, strict=True):
            if pattern.match(path):
                dialect: Dialect | None = None if route.dialect == "passthrough" else route.dialect
                if method != "POST":
                    dialect = None
                base = str(route.upstream).rstrip("/") if route.upstream else self.base_for(route.dialect, path)
                return Target(dialect, base, dialect or ("anthropic" if anthropic_like else "openai"))
        return Target(None, self.base_for("passthrough", path), "anthropic" if anthropic_like else "openai")

    def base_for(self, dialect: str, path: str = "") -> str:
        if dialect == "anthropic" or (dialect == "passthrough" and _ANTHROPIC_PATHS.search(path)):
            return self._anthropic
        return self._default

    def bases(self) -> list[str]:
        """Every distinct upstream base URL (the readiness check probes each)."""
        extra = {str(r.upstream).rstrip("/") for r in self.routes if r.upstream}
        return sorted({self._default, self._anthropic, *extra})


def model_of(req: dict[str, Any], path: str) -> str | None:
    """The model a request names; Azure OpenAI names it in the path instead
    (/openai/deployments/{name}/chat/completions)."""
    if isinstance(req.get("model"), str):
        return str(req["model"])
    parts = path.split("/")
    if "deployments" in parts:
        i = parts.index("deployments")
        return parts[i + 1] if i + 1 < len(parts) and parts[i + 1] else None
    return None
