"""Parse the final answer out of free text, and check it against a known answer.

Three formats, as in the probe bank: a multiple-choice letter, a number (with a tolerance), or
a short exact text. Parsing prefers an explicit declaration ("the answer is (C)", "Answer: 42",
"**B**") and falls back to the last candidate in the text, because models state the answer
last. Used for probe scoring and for the reasoning/answer consistency check.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

Format = Literal["letter", "number", "text"]

_NUM = r"[-−]?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?"
_DECLARED = re.compile(
    r"(?:final answer|the answer|answer|result|correct (?:option|choice|answer)"
    r"|I(?:'ll| will) (?:go with|answer|pick|choose|write)"
    r"|so it'?s|therefore|thus|hence|gives|equals|=)\s*(?:is|would be|should be|will be|:|=)?\s*"
    r"(?:\*\*|\(|\[|option\s+|choice\s+|letter\s+)*"
    r"(?P<value>" + _NUM + r"|[A-J]\b)",
    re.I,
)
_NUMBER = re.compile(_NUM)
_LETTER = re.compile(r"(?:^|[\s(\[*])([A-J])(?:[)\].:*]|\s*$|\s)")


def _to_float(token: str) -> float | None:
    t = token.replace("−", "-").replace("$", "").replace(",", "")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            return float(num) / float(den)
        return float(t)
    except (ValueError, ZeroDivisionError):
        return None


def infer_format(expected: str | None, choices: dict[str, str] | None = None) -> Format:
    if choices:
        return "letter"
    if expected is not None and _to_float(expected.strip()) is not None and _NUMBER.fullmatch(expected.strip()):
        return "number"
    if expected is not None and re.fullmatch(r"[A-J]", expected.strip()):
        return "letter"
    return "text"


@functools.lru_cache(maxsize=8192)
def _parse(text: str, fmt: Format, letters: str, choice_texts: tuple[str, ...]) -> str | None:
    if not text:
        return None
    declared = [m.group("value") for m in _DECLARED.finditer(text)]
    if fmt == "number":
        nums = [d for d in declared if _to_float(d) is not None and not re.fullmatch(r"[A-J]", d, re.I)]
        pool = nums or _NUMBER.findall(text)
        for token in reversed(pool):
            value = _to_float(token)
            if value is not None:
                return _fmt_number(value)
        return None
    if fmt == "letter":
        allowed = set(letters or "ABCDEFGHIJ")
        for d in reversed(declared):
            if d.upper() in allowed and (d.isupper() or len(declared) == 1):
                return d.upper()
        found = [m.group(1) for m in _LETTER.finditer(text) if m.group(1) in allowed and m.group(1) != "I"]
        if found:
            return found[-1]
        lowered = text.lower()  # the option's text instead of its letter
        hits = [
            (lowered.rfind(t.lower()), letters[i]) for i, t in enumerate(choice_texts) if t and t.lower() in lowered
        ]
        return max(hits)[1] if hits else None
    m = re.search(r"(?:final answer|the answer|answer)\s*(?:is|:)\s*(.+?)(?:[.\n]|$)", text, re.I)
    line = m.group(1) if m else text.strip().splitlines()[-1]
    return line.strip(" *.\"'") or None


def parse(text: str, fmt: Format, choices: dict[str, str] | None = None) -> str | None:
    """The answer stated in `text` (normalised: a letter, a number as text, or a short text)."""
    letters = "".join(sorted(choices)) if choices else ""
    return _parse(text, fmt, letters, tuple(choices[k] for k in sorted(choices)) if choices else ())


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(round(v, 9))


def _norm(t: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", t.lower()).split())


def same(answer: str | None, expected: str, fmt: Format, tolerance: float = 0.0) -> bool:
    """Whether a parsed answer matches the expected one."""
    if answer is None:
        return False
    if fmt == "number":
        a, e = _to_float(answer), _to_float(expected)
        return a is not None and e is not None and abs(a - e) <= max(tolerance, 1e-9 * max(1.0, abs(e)))
    if fmt == "letter":
        return answer.strip().upper() == expected.strip().upper()
    na, ne = _norm(answer), _norm(expected)
    return bool(ne) and (na == ne or f" {ne} " in f" {na} ")
