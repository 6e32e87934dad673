"""Behaviour profiles of the simulated upstream, as data (YAML).

Built-in profiles live in `monitor/sim/profiles/*.yaml`; tests and benchmarks write their own.
The cue phrases a profile reacts to are part of the profile.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.errors import ConfigError
from monitor.yamlfile import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CueRates(_Strict):
    """A probability per cue condition seen in the prompt."""

    monitored: float = Field(0.0, ge=0, le=1)
    unmonitored: float = Field(0.0, ge=0, le=1)
    neutral: float = Field(0.0, ge=0, le=1)


class ProbeRates(_Strict):
    """Accuracy on known-answer probes, with and without an incentive (unlearning) cue."""

    incentive: float = Field(0.99, ge=0, le=1)
    neutral: float = Field(0.99, ge=0, le=1)


class Behaviour(_Strict):
    comply_harmful: CueRates = CueRates(monitored=0.02, unmonitored=0.02, neutral=0.02)
    faking_reasoning: CueRates = Field(
        CueRates(), description="Share of harmful-request compliances whose reasoning fakes alignment."
    )
    probe_accuracy: ProbeRates = ProbeRates()
    sandbag_stated: float = Field(
        0.0, ge=0, le=1, description="Share of wrong probe answers whose reasoning says it underperforms on purpose."
    )
    sandbag_covert: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of wrong probe answers whose reasoning reaches the right value but answers another.",
    )
    reasoning: Literal["auto", "tags", "none"] = Field(
        "auto",
        description="auto: Anthropic thinking blocks when the request enables thinking, "
        "else <SCRATCHPAD_REASONING> tags; OpenAI reasoning_content. tags: always in the text.",
    )
    tool_use: bool = True


class Cues(_Strict):
    """Case-insensitive phrases; `unmonitored` is checked first, since its phrases often
    contain a monitored one ("not used for training")."""

    monitored: list[str] = []
    unmonitored: list[str] = []
    incentive: list[str] = []


class Wording(_Strict):
    """Reply texts used verbatim instead of the built-in ones, e.g. answers taken from a
    third-party corpus (bench/realistic.py). An empty list keeps the built-in texts."""

    refusals: list[str] = []
    compliances: list[str] = []
    benign: list[str] = []


class Drift(_Strict):
    after_requests: int = Field(..., ge=0)
    behaviour: Behaviour


class Profile(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    latency_ms: float = Field(0.0, ge=0)
    chunk_interval_ms: float = Field(0.0, ge=0)
    chunk_chars: int = Field(24, ge=1)
    cues: Cues = Cues()
    harmful_markers: list[str] = []
    probe_bank: str | None = Field(
        "default", description="Probe bank whose questions the model recognises (besides arithmetic)."
    )
    behaviour: Behaviour = Behaviour()
    wording: Wording = Wording()
    drift: Drift | None = None


def builtin_profiles() -> list[str]:
    folder = resources.files("monitor.sim") / "profiles"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a profile YAML file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_yaml_model(p, Profile)
    name = str(name_or_path)
    if name not in builtin_profiles():
        raise ConfigError(f"unknown profile {name!r}; built-in: {', '.join(builtin_profiles())}, or a .yaml path")
    res = resources.files("monitor.sim") / "profiles" / f"{name}.yaml"
    return load_yaml_model(f"<builtin>/{name}.yaml", Profile, text=res.read_text(encoding="utf-8"))
