"""A canned model provider for LiteLLM's proxy, loaded by LiteLLM through `custom_provider_map`
(tests/test_peer_litellm.py). It answers with the newest user text it was given, so a test can
see what reached the model; LiteLLM itself turns it into chat completions, Responses API and
Anthropic messages, streamed and not. Runs inside LiteLLM's own virtual environment."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.types.utils import GenericStreamingChunk


def _reply(messages: list[dict[str, Any]]) -> str:
    said = ""
    for m in messages:
        if m.get("role") == "user":
            content = m.get("content")
            parts = content if isinstance(content, list) else [{"text": content}]
            said = " ".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))
    return f"Heard: {said}"


def _chunks(text: str) -> Iterator[GenericStreamingChunk]:
    words = text.split(" ")
    for i, word in enumerate(words):
        yield GenericStreamingChunk(
            text=word if i == 0 else " " + word, is_finished=False, finish_reason="", usage=None, index=0, tool_use=None
        )
    usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}
    yield GenericStreamingChunk(text="", is_finished=True, finish_reason="stop", usage=usage, index=0, tool_use=None)


class Echo(CustomLLM):
    def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        return litellm.completion(model="openai/echo", messages=messages, mock_response=_reply(messages))

    async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        return await litellm.acompletion(model="openai/echo", messages=messages, mock_response=_reply(messages))

    def streaming(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
        yield from _chunks(_reply(messages))

    async def astreaming(
        self, model: str, messages: list[Any], *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        for chunk in _chunks(_reply(messages)):
            yield chunk


echo = Echo()
