"""Incremental parser for Server-Sent Events (the WHATWG event-stream format).

Used off the request path to turn a teed byte stream back into events, and by the tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched SSE event."""

    event: str
    data: str
    id: str | None = None


class SSEParser:
    """Feed bytes in any chunking; get complete events out.

    >>> p = SSEParser()
    >>> p.feed(b"event: ping\\ndata: {}\\n\\nda")
    [Event(event='ping', data='{}', id=None)]
    >>> p.feed(b"ta: x\\n\\n")
    [Event(event='message', data='x', id=None)]
    """

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """The events `chunk` completes. One pass over the bytes (a whole captured stream is fed
        at once, up to the record's size); a last line not ending in \\n is kept for the next
        chunk: it may be cut short, and a lone \\r at the end may be the start of \\r\\n."""
        buf = self._buf + chunk
        if buf.endswith(b"\n"):
            self._buf = b""
        else:
            cut = max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1)) + 1
            buf, self._buf = buf[:cut], buf[cut:]
        events: list[Event] = []
        for raw in buf.splitlines():  # the two commonest lines handled inline, the rest by _line
            if raw.startswith(b"data:"):
                value = raw[5:].decode("utf-8", "replace")
                self._data.append(value[1:] if value.startswith(" ") else value)
            elif not raw and self._data:
                events.append(self._dispatch())
            elif (event := self._line(raw.decode("utf-8", "replace"))) is not None:
                events.append(event)
        return events

    def close(self) -> list[Event]:
        """Flush a final event that lacked its trailing blank line (a truncated stream)."""
        events: list[Event] = []
        if self._buf:
            event = self._line(self._buf.rstrip(b"\r").decode("utf-8", "replace"))
            self._buf = b""
            if event is not None:
                events.append(event)
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> Event | None:
        if line == "":
            if self._data:
                return self._dispatch()
            self._event = ""  # an empty event is discarded (WHATWG: no data, no dispatch)
            return None
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        return None

    def _dispatch(self) -> Event:
        ev = Event(self._event or "message", "\n".join(self._data), self._id)
        self._event, self._data = "", []
        return ev


def parse_events(chunks: Iterable[bytes]) -> list[Event]:
    """Parse a whole captured stream into its events."""
    parser = SSEParser()
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events
