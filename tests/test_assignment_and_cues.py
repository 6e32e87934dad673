"""Random and sticky assignment, cue placement for both dialects, and policy file errors."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.cues import apply_cue
from monitor.errors import ConfigError
from monitor.experiments import Experiments, hash_unit, pick_arm
from monitor.policy import Arm, Cue, Policy, load_policy


def _policy(
    sticky: str = "none", salt: str | None = None, seed: int = 42, probs: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> Policy:
    arms = [
        {"name": f"a{i}", "probability": p, "cue": {"where": "system", "texts": [f"cue {i}"]}}
        for i, p in enumerate(probs)
    ]
    return Policy.model_validate(
        {"seed": seed, "experiments": [{"name": "e", "sticky": sticky, "salt": salt, "arms": arms}]}
    )


def _arm(exps: Experiments, req: dict, headers: list[tuple[bytes, bytes]] | None = None) -> str:
    plan = exps.plan("openai", "/v1/chat/completions", headers or [], req)
    assert plan is not None
    return str(plan.labels["arm"])


REQ = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_assignment_frequencies_match_probabilities() -> None:
    """20k seeded draws: chi-square against (0.5, 0.3, 0.2) below the 0.1% critical value."""
    exps = Experiments(_policy())
    counts = Counter(_arm(exps, REQ) for _ in range(20_000))
    expected = {"a0": 10_000, "a1": 6_000, "a2": 4_000}
    chi2 = sum((counts[k] - v) ** 2 / v for k, v in expected.items())
    assert chi2 < 13.82, (counts, chi2)  # chi-square, 2 degrees of freedom, p = 0.001


def test_same_seed_same_assignments_and_texts() -> None:
    """The same seed gives the same arms and cue wordings, in order; another seed differs."""
    a, b, c = Experiments(_policy(seed=1)), Experiments(_policy(seed=1)), Experiments(_policy(seed=2))
    seq_a = [_arm(a, REQ) for _ in range(200)]
    assert seq_a == [_arm(b, REQ) for _ in range(200)]
    assert seq_a != [_arm(c, REQ) for _ in range(200)]


def test_sticky_subjects_never_change_arm() -> None:
    """With `sticky: user`, a user's arm is fixed, whatever the seed or the request order."""
    one, two = Experiments(_policy("user", seed=1)), Experiments(_policy("user", seed=99))
    for user in (f"user-{i}" for i in range(300)):
        req = {**REQ, "user": user}
        arms = {_arm(one, req) for _ in range(5)} | {_arm(two, req)}
        assert len(arms) == 1


def test_sticky_header_and_anthropic_user_id() -> None:
    """Sticky keys also come from a configured header or Anthropic metadata.user_id."""
    exps = Experiments(_policy("header:X-User"))
    arms = {_arm(exps, REQ, [(b"x-user", b"alice")]) for _ in range(20)}
    assert len(arms) == 1
    anth = Experiments(_policy("user"))
    req = {"model": "m", "metadata": {"user_id": "bob"}, "messages": []}
    got = {str(anth.plan("anthropic", "/v1/messages", [], req).labels["arm"]) for _ in range(20)}  # type: ignore[union-attr]
    assert len(got) == 1


def test_different_salts_reassign() -> None:
    """A new salt re-draws subjects: about 1 - sum(p^2) = 62% change arm."""
    a, b = Experiments(_policy("user", salt="s1")), Experiments(_policy("user", salt="s2"))
    users = [{**REQ, "user": f"u{i}"} for i in range(2000)]
    changed = sum(_arm(a, u) != _arm(b, u) for u in users) / len(users)
    assert 0.55 < changed < 0.69


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=2, max_size=5),
    st.floats(min_value=0, max_value=0.999999),
)
def test_pick_arm_respects_cumulative_probability(weights: list[float], u: float) -> None:
    """The arm picked for u is the one whose cumulative-probability interval holds u."""
    total = sum(weights)
    arms = [Arm(name=f"a{i}", probability=w / total, cue=Cue(where="none")) for i, w in enumerate(weights)]
    arm = pick_arm(arms, u)
    i = arms.index(arm)
    lo = sum(a.probability for a in arms[:i])
    assert lo - 1e-9 <= u < lo + arm.probability + 1e-9 or i == len(arms) - 1


def test_hash_unit_is_uniformish() -> None:
    """Hashed units spread evenly over [0, 1)."""
    xs = [hash_unit("salt", str(i)) for i in range(10_000)]
    assert all(0 <= x < 1 for x in xs) and abs(sum(xs) / len(xs) - 0.5) < 0.01


# ------------------------------------------------------------------------- placements

OA_STR = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ],
}
OA_BLOCKS = {
    "model": "m",
    "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "Rules"}]},
        {"role": "user", "content": [{"type": "text", "text": "Q"}]},
    ],
}
AN_STR = {"model": "m", "system": "Be kind.", "messages": [{"role": "user", "content": "Q"}]}
AN_BLOCKS = {
    "model": "m",
    "system": [{"type": "text", "text": "Sys", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}]}],
}


def test_system_cue_openai() -> None:
    """OpenAI: the cue joins the system (or developer) message, string or parts; created if absent."""
    out, _ = apply_cue("openai", OA_STR, Cue(where="system", position="before", texts=["C"]), "C")
    assert out["messages"][0] == {"role": "system", "content": "C\n\nBe kind."}
    out, _ = apply_cue("openai", OA_BLOCKS, Cue(where="system", position="after", texts=["C"]), "C")
    assert out["messages"][0]["content"] == [{"type": "text", "text": "Rules"}, {"type": "text", "text": "C"}]
    bare = {"model": "m", "messages": [{"role": "user", "content": "Q"}]}
    out, _ = apply_cue("openai", bare, Cue(where="system", texts=["C"]), "C")
    assert out["messages"] == [{"role": "system", "content": "C"}, {"role": "user", "content": "Q"}]


def test_system_cue_anthropic() -> None:
    """Anthropic: the cue joins `system`, a string or a block list (other blocks kept intact)."""
    out, _ = apply_cue("anthropic", AN_STR, Cue(where="system", position="after", texts=["C"]), "C")
    assert out["system"] == "Be kind.\n\nC"
    out, _ = apply_cue("anthropic", AN_BLOCKS, Cue(where="system", position="before", texts=["C"]), "C")
    assert out["system"] == [{"type": "text", "text": "C"}, AN_BLOCKS["system"][0]]
    out, _ = apply_cue("anthropic", {"model": "m", "messages": []}, Cue(where="system", texts=["C"]), "C")
    assert out["system"] == "C"


@pytest.mark.parametrize(
    "dialect,req", [("openai", OA_STR), ("openai", OA_BLOCKS), ("anthropic", AN_STR), ("anthropic", AN_BLOCKS)]
)
def test_user_tag_goes_in_last_user_turn(dialect: str, req: dict) -> None:
    """The tag lands in the last user turn only, before or after its text, keeping its shape."""
    tag = "<is_free_tier_user>True</is_free_tier_user>"
    before = copy.deepcopy(req)
    out, _ = apply_cue(dialect, req, Cue(where="user", position="before", texts=[tag]), tag)
    assert req == before  # the client's request object is never modified
    last = out["messages"][-1]["content"]
    if isinstance(last, str):
        assert last.startswith(tag + "\n\n")
    else:
        assert last[0] == {"type": "text", "text": tag}
    assert out["messages"][:-1] == req["messages"][:-1]


def test_metadata_header_and_none_cues() -> None:
    """Metadata cues merge into `metadata`; header cues become request headers; none changes nothing."""
    req = {"model": "m", "metadata": {"team": "x"}, "messages": []}
    out, hdrs = apply_cue("openai", req, Cue(where="metadata", key="monitoring", texts=["on"]), "on")
    assert out["metadata"] == {"team": "x", "monitoring": "on"} and req["metadata"] == {"team": "x"} and hdrs == {}
    out, hdrs = apply_cue("anthropic", req, Cue(where="header", key="x-monitoring", texts=["on"]), "on")
    assert out is req and hdrs == {"x-monitoring": "on"}
    out, hdrs = apply_cue("openai", req, Cue(where="none"), "")
    assert out is req and hdrs == {}


# ------------------------------------------------------------------------- policy errors

GOOD_ARMS = """    arms:
      - {name: a, probability: 0.5, cue: {where: system, texts: [x]}}
      - {name: b, probability: 0.5, cue: {where: none}}
"""
BAD_POLICIES = [
    ("version: 1\nexperimentz: []\n", 2, "experimentz: unknown field"),
    (
        "experiments:\n  - name: e\n    arms:\n      - {name: a, probability: 0.5, cue: {where: none}}\n"
        "      - {name: b, probability: 0.4, cue: {where: none}}\n",
        3,
        "experiments.0.arms: Value error, arm probabilities must sum to 1, they sum to 0.9",
    ),
    (
        "experiments:\n  - name: e\n    arms:\n      - {name: a, probability: 1.0, cue: {where: none}}\n",
        3,
        "experiments.0.arms: List should have at least 2 items",
    ),
    (
        "experiments:\n  - name: e\n    mode: livee\n" + GOOD_ARMS,
        3,
        "experiments.0.mode: Input should be 'live', 'shadow' or 'off'",
    ),
    (
        "experiments:\n  - name: e\n    arms:\n      - {name: a, probability: high, cue: {where: none}}\n"
        "      - {name: b, probability: 0.5, cue: {where: none}}\n",
        4,
        "experiments.0.arms.0.probability: Input should be a valid number",
    ),
    ("experiments:\n  - name: e\n    arms: [\n", 4, "invalid YAML"),
    (
        "experiments:\n  - name: e\n" + GOOD_ARMS.replace("where: system, texts: [x]", "where: system"),
        4,
        "experiments.0.arms.0.cue: Value error, a `system` cue needs at least one non-empty text",
    ),
    (
        "experiments:\n  - name: e\n    sticky: cookie\n" + GOOD_ARMS,
        3,
        "experiments.0.sticky: Value error, expected `none`, `user` or `header:<name>`",
    ),
    (
        "experiments:\n  - name: e\n" + GOOD_ARMS + "    shadow: {sample: 2}\n",
        6,
        "experiments.0.shadow.sample.default: Input should be less than or equal to 1",
    ),
    (
        "experiments:\n  - name: e\n" + GOOD_ARMS + "  - name: e\n" + GOOD_ARMS,
        1,
        "experiments: Value error, experiment names must be unique",
    ),
    (
        "experiments:\n  - name: e\n    mode: live\n    probes: {model: m}\n" + GOOD_ARMS,
        2,
        "probes are sent in shadow mode only",
    ),
    (
        "detectors:\n  - name: no-such-detector\n",
        2,
        "detectors.0.name: Value error, unknown detector 'no-such-detector'",
    ),
    ("alerts:\n  route: {matchers: {a: b}}\n", 1, "alerts: Value error, the root route needs a `receiver`"),
    (
        "alerts:\n  receivers: [{name: r, slack: {url: 'https://hooks.slack.com/x'}}]\n",
        2,
        "alerts.receivers.0.slack.url: Input should be a valid dictionary or instance of SecretRef",
    ),
    ("version: 2\n", 1, "version: Input should be 1"),
]


@pytest.mark.parametrize("text,line,message", BAD_POLICIES)
def test_policy_errors_name_file_line_field(tmp_path: Path, text: str, line: int, message: str) -> None:
    """Each malformed policy gives a message naming the file, the line and the field."""
    f = tmp_path / "policy.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policy(f)
    first = str(info.value).splitlines()[0] if "invalid YAML" not in message else str(info.value)
    assert first.startswith(f"{f}:{line}: ") and message in str(info.value), str(info.value)


def test_shipped_policies_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped policy file loads, with the experiments and modes it documents."""
    import policies

    monkeypatch.setenv("CUEWATCH_STICKY_SALT", "test-salt")  # live-ab.yaml's sticky salt is a secret

    modes = {name: [e.mode for e in load_policy(policies.path(name)).experiments] for name in policies.names()}
    assert modes == {
        "default": ["shadow"],
        "free-paid-tier": ["shadow"],
        "live-ab": ["live"],
        "sandbagging-probes": ["shadow"],
    }


def test_probe_bank_shipped() -> None:
    """The shipped probe bank holds >= 300 valid probes across several domains."""
    from monitor.probes import load_bank

    bank = load_bank()
    assert len(bank) >= 300 and len({p.domain for p in bank}) >= 5
    assert {p.format for p in bank} == {"letter", "number", "text"}


def test_probe_bank_generator_is_deterministic(tmp_path: Path) -> None:
    """The generator reproduces the shipped bank exactly."""
    import subprocess
    import sys
    from importlib import resources

    out = tmp_path / "bank.jsonl"
    subprocess.run(
        [sys.executable, "-m", "monitor.probes.generate", "--out", str(out)], check=True, capture_output=True
    )
    assert out.read_text() == (resources.files("monitor.probes") / "default.jsonl").read_text()
