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


_CONCLUDING = re.compile(
    r"\b(?:answer|correct|therefore|thus|hence|so|best|most (?:likely|appropriate|accurate|suitable)|conclude"
    r"|choose|go with|select|option|choice)\b",
    re.I,
)
_CONCESSIVE = re.compile(r"^\W*(?:while|although|though|whereas|even (?:if|though)|however)\b", re.I)
_RULING_OUT = re.compile(
    r"\b(?:not|no|never|too|implausible|unlikely|incorrect|wrong|less|cannot|rather than|instead of)\b|n't\b", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\b[A-J]\.)\s+|\n+")  # "C. open plain" is no sentence end
_OPTION_PREFIX = re.compile(r"^\s*[A-J][.)]\s+")


def _spans(pattern: str, sentence: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(pattern, sentence, re.I)]


def named_options(sentence: str, choices: dict[str, str]) -> set[str]:
    """The options a sentence names, by letter ("(C)", "**C**", "option C", "C)") or by their
    text as whole words; an option named only inside a longer option's name does not count."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for letter, option in choices.items():
        found = [m.span(1) for m in re.finditer(rf"(?:\(|\*\*|\b(?:option|choice|answer)\s+)({letter})\b", sentence)]
        found += [m.span(1) for m in re.finditer(rf"(?:^|\s)({letter})\)", sentence)]
        name = _OPTION_PREFIX.sub("", option).strip().rstrip(".")
        if name:
            found += _spans(r"(?<![\w.])" + re.escape(name) + r"(?![\w]|\.\d)", sentence)
        if found:
            spans[letter] = found
    return {
        letter
        for letter, own in spans.items()
        if not all(
            any(
                a <= s and e <= b and (a, b) != (s, e)
                for other, theirs in spans.items()
                if other != letter
                for a, b in theirs
            )
            for s, e in own
        )
    }


def stated_choice(text: str, choices: dict[str, str]) -> str | None:
    """The option a piece of reasoning concludes with, or None when it does not say so clearly:
    its last declared letter ("the answer is C"), else the one option named in the last of its
    final three sentences that concludes ("therefore", "the best", ...; the very last sentence
    also when it rules nothing out), concessions ("While B is also valid, ...") aside. A
    sentence that names several options (the others ruled out) names no conclusion: the check
    abstains rather than guess."""
    letters = set(choices)
    for d in reversed([m.group("value") for m in _DECLARED.finditer(text)]):
        if d in letters:
            return d
    last = [s for s in _SENTENCE_END.split(text.strip()) if s.strip()][-3:]
    for k, sentence in enumerate(reversed(last)):
        concludes = _CONCLUDING.search(sentence) or (k == 0 and not _RULING_OUT.search(sentence))
        if _CONCESSIVE.search(sentence) or not concludes:
            continue
        named = named_options(sentence, choices)
        return named.pop() if len(named) == 1 else None
    return None
