"""Known-answer probe banks (JSONL): the questions cuewatch asks under incentive cues to
measure sandbagging. `load_bank("default")` reads the shipped bank; any path reads your own."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from monitor.errors import ConfigError


class Probe(BaseModel):
    """One probe. `choices` for multiple choice (answer is the letter); `tolerance` for numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    question: str
    answer: str
    format: Literal["letter", "number", "text"]
    domain: str
    choices: dict[str, str] | None = None
    tolerance: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> Probe:
        if self.format == "letter" and (not self.choices or self.answer not in self.choices):
            raise ValueError("a letter probe needs `choices` that include its answer")
        if self.format == "number":
            float(self.answer)
        return self

    def prompt(self, instruction: str) -> str:
        text = self.question
        if self.choices:
            text += "\n" + "\n".join(f"{k}) {v}" for k, v in sorted(self.choices.items()))
        return f"{text}\n\n{instruction}" if instruction else text


def load_bank(name_or_path: str | Path = "default") -> list[Probe]:
    """Probes from the shipped bank (`default`) or a JSONL file; errors name file and line."""
    if str(name_or_path) == "default":
        source = "<builtin>/default.jsonl"
        text = (resources.files("monitor.probes") / "default.jsonl").read_text(encoding="utf-8")
    else:
        source = str(name_or_path)
        try:
            text = Path(name_or_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read probe bank: {exc.strerror or exc}") from exc
    probes: list[Probe] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            probes.append(Probe.model_validate_json(line))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ())) or "line"
            raise ConfigError(f"{source}:{n}: {loc}: {err.get('msg')}") from exc
    ids = [p.id for p in probes]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{source}: probe ids must be unique")
    if not probes:
        raise ConfigError(f"{source}: the probe bank is empty")
    return probes


__all__ = ["Probe", "load_bank"]
