"""A policy that loads is a policy that runs: `cuewatch policy check` (and start and hot reload,
which load through the same code) rejects each mistake that used to pass and then turned a
detector off or broke the alert loop at runtime, naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main

EXPERIMENT = """experiments:
  - name: tier
    arms:
      - {name: a, probability: 0.5, cue: {where: system, texts: [A]}}
      - {name: b, probability: 0.5, cue: {where: none}}
"""

BAD = {
    "alpha out of range": (
        EXPERIMENT + "detectors:\n  - name: cue_gap\n    params: {experiment: tier, alpha: 7}\n",
        ":8: detectors.0.params: Value error, alpha: Input should be less than 1",
    ),
    "typo metric for metrics": (
        EXPERIMENT + "detectors:\n  - name: cue_gap\n    params: {experiment: tier, metric: refused}\n",
        ":8: detectors.0.params: Value error, unknown parameter metric; cue_gap takes: experiment, metrics,",
    ),
    "unknown metric": (
        EXPERIMENT + "detectors:\n  - name: cue_gap\n    params: {experiment: tier, metrics: [refusd]}\n",
        ":8: detectors.0.params: Value error, metrics: unknown feature 'refusd'",
    ),
    "unknown experiment": (
        EXPERIMENT + "detectors:\n  - name: cue_gap\n    params: {experiment: tire}\n",
        ":8: detectors.0.params.experiment: no experiment 'tire' in this policy (tier)",
    ),
    "alert rule names a missing detector": (
        EXPERIMENT
        + "detectors:\n  - name: cue_gap\n    params: {experiment: tier}\n"
        + "alerts:\n  rules:\n    - name: gaps\n      detectors: [cue-gap]\n",
        ":12: alerts.rules.0.detectors: no detector 'cue-gap' in this policy (cue_gap)",
    ),
    "route regex does not compile": (
        "alerts:\n  receivers:\n    - {name: ops, log: {}}\n  route:\n    receiver: ops\n"
        "    routes:\n      - receiver: ops\n        matchers: {experiment: '~tier[('}\n",
        ":8: alerts.route.routes.0.matchers: Value error, experiment: the regex 'tier[(' does not compile",
    ),
    "unknown field lists the valid ones": (
        EXPERIMENT.replace("  - name: tier\n", "  - name: tier\n    moed: shadow\n"),
        ":3: experiments.0.moed: unknown field (check the spelling); valid here: name, mode, filter, salt, sticky,",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_policy_rejected_with_file_line_field(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD[case]
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    assert main(["policy", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}{expected}" in err, err


def test_good_policy_passes_and_warns_about_unset_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUEWATCH_TEST_UNSET_WEBHOOK", raising=False)
    path = tmp_path / "policy.yaml"
    path.write_text(
        EXPERIMENT
        + "detectors:\n  - name: cue_gap\n    params: {experiment: tier, metrics: [refused], alpha: 0.05}\n"
        + "alerts:\n  rules:\n    - {name: gaps, detectors: [cue_gap]}\n"
        + "  receivers:\n    - name: hook\n      webhook: {url: {env: CUEWATCH_TEST_UNSET_WEBHOOK}}\n"
        + "  route: {receiver: hook, matchers: {severity: '~warning|critical'}}\n"
    )
    assert main(["policy", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK" in out
    assert "warning: alerts.receivers.0.webhook.url: environment variable CUEWATCH_TEST_UNSET_WEBHOOK is not set" in out


def test_every_shipped_policy_passes(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUEWATCH_STICKY_SALT", "test-salt")  # live-ab.yaml's sticky salt is a secret
    root = Path(__file__).parents[1]
    files = sorted([*root.glob("policies/*.yaml"), *root.glob("bench/policies/*.yaml")])
    assert files and main(["policy", "check", *map(str, files)]) == 0, capsys.readouterr().err


def test_unset_salt_secret_is_a_check_warning_but_a_load_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`policy check` runs where the secrets may not be set (CI, a laptop): it warns. Loading the
    policy to run it refuses: sticky assignment cannot work without its salt."""
    from monitor.errors import ConfigError
    from monitor.policy import load_policy

    monkeypatch.delenv("CUEWATCH_STICKY_SALT", raising=False)
    live = Path(__file__).parents[1] / "policies" / "live-ab.yaml"
    assert main(["policy", "check", str(live)]) == 0
    assert (
        "warning: experiments.0.salt: environment variable CUEWATCH_STICKY_SALT is not set" in capsys.readouterr().out
    )
    with pytest.raises(ConfigError, match=r"experiments\.0\.salt: .*CUEWATCH_STICKY_SALT is not set"):
        load_policy(live)
    with pytest.raises(ConfigError, match="salt secret was not readable"):
        _ = load_policy(live, unset_secrets_ok=True).experiments[0].hash_salt


def test_a_detector_that_needs_the_embedding_model_does_not_load_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy whose detector wants model features loads only where the model is installed:
    otherwise every batch would fail at runtime."""
    from detectors import semantic
    from monitor.errors import ConfigError
    from monitor.policy import load_policy

    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\ndetectors:\n  - name: scratchpad\n    params: {tier: combined}\n")
    assert load_policy(policy).detectors  # the model is installed here
    monkeypatch.setattr(semantic, "available", lambda: False)
    with pytest.raises(ConfigError, match=r"redflags_combined.*not installed.*cuewatch\[embeddings\]"):
        load_policy(policy)
    policy.write_text("version: 1\ndetectors:\n  - name: scratchpad\n    params: {tier: lexical}\n")
    assert load_policy(policy).detectors  # the lexical tier needs no model
