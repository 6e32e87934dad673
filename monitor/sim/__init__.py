"""The simulated upstream: a real OpenAI- and Anthropic-compatible HTTP server with profiles."""

from __future__ import annotations

from monitor.sim._behaviour import Reply, condition_of, decide
from monitor.sim._server import SimApp
from monitor.sim.profiles import Behaviour, Profile, builtin_profiles, load_profile

__all__ = ["Behaviour", "Profile", "Reply", "SimApp", "builtin_profiles", "condition_of", "decide", "load_profile"]
