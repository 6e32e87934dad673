"""The policy file: what to experiment with and how to react. Validated with `extra="forbid"`;
errors name the file, the line and the field. (Experiments, detectors and alert routing are
filled in by their own issues; this is the envelope every policy file has.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from monitor.yamlfile import load_yaml_model


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    description: str = ""
    experiments: list[dict[str, Any]] = []


def load_policy(path: Path | str) -> Policy:
    return load_yaml_model(path, Policy)
