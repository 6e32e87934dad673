"""The cuewatch proxy: OpenAI- and Anthropic-compatible, streaming, as a raw ASGI app."""

from __future__ import annotations

from monitor.pipeline import Pipeline
from monitor.reload import PolicyHolder
from monitor.settings import Settings
from proxy._app import ProxyApp, build_pipeline
from proxy._forward import OVERHEAD_HEADER, REQUEST_ID_HEADER


def create_app(settings: Settings, pipeline: Pipeline | None = None, holder: PolicyHolder | None = None) -> ProxyApp:
    """Build a proxy app (loading `settings.policy` if set: ConfigError if invalid); nothing
    starts until the ASGI server runs its lifespan."""
    return ProxyApp(settings, pipeline, holder)


__all__ = ["OVERHEAD_HEADER", "REQUEST_ID_HEADER", "ProxyApp", "build_pipeline", "create_app"]
