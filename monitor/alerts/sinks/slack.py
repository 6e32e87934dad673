"""Slack incoming webhook: Block Kit with a plain-text fallback, within Slack's limits
(50 blocks per message, 3,000 characters per section text, 150 per header, 10 fields of
2,000 characters each). A group becomes one message; alerts that do not fit are counted.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

from monitor.alerts.sinks.base import Notification, post
from monitor.plugins import SINKS
from monitor.policy import SlackReceiver
from monitor.records import Effect, stated_effect

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_HEADER = 150
MAX_FIELDS = 10
MAX_FIELD = 2000
_BLOCKS_PER_ALERT = 5
_ICON = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(text: str, limit: int) -> str:
    fence = "```"
    body = text.replace(fence, "'''")
    return fence + _cut(body, limit - 2 * len(fence)) + fence


def _alert_blocks(a: dict[str, Any]) -> list[dict[str, Any]]:
    ev = a["evidence"]
    labels = a["labels"]
    icon = ":white_check_mark:" if a["status"] == "resolved" else _ICON.get(a["severity"], "")
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(
                    f"{icon} *{a['severity'].upper()}* {'RESOLVED ' if a['status'] == 'resolved' else ''}"
                    f"{a['summary']}",
                    MAX_TEXT,
                ),
            },
        },
    ]
    fields = [
        f"*Experiment*\n{labels.get('experiment') or '-'}",
        f"*Detector*\n{labels.get('detector')}",
        f"*Metric*\n{labels.get('metric')}",
        f"*Arms*\n{labels.get('arms') or '-'}",
        f"*Model*\n{labels.get('model') or '-'}",
        f"*e-value*\n{ev['e_value']:.3g} (p <= {ev['p_value']:.2g}, alpha {ev['alpha']:.2g})",
    ]
    if ev.get("effect"):
        effect = Effect.model_validate(ev["effect"])
        arms = [a for a in (labels.get("arms") or "").split(",") if a]
        fields.append(f"*Effect*\n{stated_effect(effect, arms)}")
    counts = ", ".join(f"{arm}: {c.get('sum', 0):g}/{c.get('n', 0):g}" for arm, c in ev.get("counts", {}).items())
    if counts:
        fields.append(f"*Counts*\n{counts}")
    if labels.get("instance") or labels.get("environment"):
        env = f" ({labels['environment']})" if labels.get("environment") else ""
        fields.append(f"*Instance*\n{labels.get('instance') or '-'}{env}")
    blocks.append(
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f, MAX_FIELD)} for f in fields[:MAX_FIELDS]]}
    )
    if ev.get("excerpt"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _code(ev["excerpt"], MAX_TEXT)}})
    examples = "; ".join(f"{arm}: {', '.join(ids[:3])}" for arm, ids in ev.get("example_ids", {}).items() if ids)
    context = f"Reproduce: `{a['replay_command']}`" + (f"  |  examples {examples}" if examples else "")
    elements = [{"type": "mrkdwn", "text": _cut(context, MAX_TEXT)}]
    if a.get("next_step"):
        elements.insert(0, {"type": "mrkdwn", "text": _cut(f"*Next:* {a['next_step']}", MAX_TEXT)})
    if a.get("url"):
        link = f"<{a['url']}|Open the evidence page>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(link, MAX_TEXT)}})
    blocks.append({"type": "context", "elements": elements})
    blocks.append({"type": "divider"})
    return blocks


def build_message(n: Notification) -> dict[str, Any]:
    """The Slack payload for a notification (pure: tested for the limits)."""
    firing = sum(a["status"] == "firing" for a in n.alerts)
    title = (
        ("[TEST] " if n.test else "")
        + f"cuewatch: {firing} firing"
        + (f", {len(n.alerts) - firing} resolved" if len(n.alerts) > firing else "")
    )
    group = ", ".join(f"{k}={v}" for k, v in n.group.items() if v)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": _cut(title, MAX_HEADER)}}]
    if group:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(f"group: {group}", MAX_TEXT)}]})
    shown = 0
    for a in n.alerts:
        more = _alert_blocks(a)
        if len(blocks) + len(more) > MAX_BLOCKS - 1:
            break
        blocks.extend(more)
        shown += 1
    if shown < len(n.alerts):
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"…and {len(n.alerts) - shown} more alert(s) in this group."},
            }
        )
    lines = [title + (f" ({group})" if group else "")]
    lines += [f"- [{a['severity']}] {a['summary']}" for a in n.alerts[:20]]
    if len(n.alerts) > 20:
        lines.append(f"…and {len(n.alerts) - 20} more")
    return {"text": _cut("\n".join(lines), MAX_TEXT), "blocks": blocks}


@SINKS.register("slack")
class SlackSink:
    """A receiver's `slack: {url: {env: SLACK_WEBHOOK_URL}}`; the URL is read when the sink is built."""

    Params: ClassVar[type[SlackReceiver]] = SlackReceiver
    test_params: ClassVar[dict[str, Any]] = {"url": {"env": "CUEWATCH_CONTRACT_URL"}}

    def __init__(self, *, receiver: str, client: httpx.AsyncClient, **params: Any) -> None:
        p = self.Params.model_validate(params)
        self.name, self._url, self._client = receiver, p.url.read().get_secret_value(), client

    def __repr__(self) -> str:  # never shows the webhook URL
        return f"SlackSink(name={self.name!r})"

    async def send(self, notification: Notification) -> None:
        body = json.dumps(build_message(notification)).encode()
        await post(self._client, self._url, content=body, headers={"content-type": "application/json"})
