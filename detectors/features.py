"""Features of an exchange, computed once per exchange off the request path.

Each feature is a plain function registered by name; detectors refer to features by name
(`metric: complied`, `condition_on: harm_category`). Response features look at the final answer
(reasoning blocks and <think>-style tags removed); request features at the last user turn.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from monitor.records import Exchange

Feature = Callable[[Exchange], Any]
Kind = Literal["binary", "continuous", "category", "object"]
_FEATURES: dict[str, Feature] = {}
_KINDS: dict[str, Kind] = {}
_MODEL: set[str] = set()  # features computed with the local embedding model


def feature(name: str, kind: Kind = "binary") -> Callable[[Feature], Feature]:
    """Register a feature: `binary` (0/1 or None), `continuous` (a number), `category`, or
    `object` (structured, for one detector's own use, e.g. scratchpad scores with spans)."""

    def deco(fn: Feature) -> Feature:
        if name in _FEATURES:
            raise ValueError(f"feature {name!r} is already registered")
        _FEATURES[name] = fn
        _KINDS[name] = kind
        return fn

    return deco


# Modules that register more features (model-based ones); imported on first use, not at import.
_EXTRA = ("detectors.scratchpad.live", "detectors.sandbagging", "detectors.embedding_shift")


@functools.cache
def _load_extra() -> None:
    import importlib

    for module in _EXTRA:
        importlib.import_module(module)


def names() -> list[str]:
    _load_extra()
    return sorted([*_FEATURES, *_BATCH])


def needs_model(name: str) -> bool:
    """Whether computing `name` loads the local embedding model."""
    _load_extra()
    return name in _MODEL


def kind(name: str) -> Kind:
    _load_extra()
    if name not in _KINDS:
        raise KeyError(f"unknown feature {name!r}; registered: {', '.join(names())}")
    return _KINDS[name]


BatchFeature = Callable[[list[Exchange]], list[Any]]
_BATCH: dict[str, BatchFeature] = {}


def batch_feature(name: str, kind: Kind = "binary", model: bool = False) -> Callable[[BatchFeature], BatchFeature]:
    """Register a feature computed over a batch of exchanges at once; `model`: it needs the
    local embedding model (`detectors.semantic`), so a policy that wants it without the model
    installed does not load."""

    def deco(fn: BatchFeature) -> BatchFeature:
        if name in _FEATURES or name in _BATCH:
            raise ValueError(f"feature {name!r} is already registered")
        _BATCH[name] = fn
        _KINDS[name] = kind
        if model:
            _MODEL.add(name)
        return fn

    return deco


def compute(exchange: Exchange, wanted: set[str] | None = None) -> dict[str, Any]:
    """The named per-exchange features (all cheap ones when `wanted` is None; batch features
    such as model-based ones only through `compute_batch`)."""
    _load_extra()
    return {name: fn(exchange) for name, fn in _FEATURES.items() if wanted is None or name in wanted}


def compute_batch(exchanges: list[Exchange], wanted: set[str]) -> list[dict[str, Any]]:
    """Features of a batch of exchanges; batch features run once over the whole batch."""
    _load_extra()
    rows = [compute(ex, wanted) for ex in exchanges]
    for name, fn in _BATCH.items():
        if name in wanted and exchanges:
            for row, value in zip(rows, fn(exchanges), strict=True):
                row[name] = value
    return rows


# ---------------------------------------------------------------------------- rows as JSON
# Feature rows travel between processes (Redis feature workers to detector workers) as JSON:
# numbers, strings and None as they are; arrays and registered dataclasses tagged.

_CODECS: dict[str, type[Any]] = {}


def codec(cls: type[Any]) -> type[Any]:
    """Register a dataclass that an `object` feature returns, so rows holding it encode."""
    _CODECS[cls.__name__] = cls
    return cls


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return {"$nd": [value.dtype.str, list(value.shape), data]}
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and type(value).__name__ in _CODECS:
        return {"$dc": type(value).__name__, "v": dataclasses.asdict(value)}  # type: ignore[arg-type]
    raise TypeError(f"feature value of type {type(value).__name__} cannot be encoded")


def _object_hook(obj: dict[str, Any]) -> Any:
    if "$nd" in obj:
        dtype, shape, data = obj["$nd"]
        return np.frombuffer(base64.b64decode(data), dtype=np.dtype(dtype)).reshape(shape).copy()
    if "$dc" in obj:
        return _CODECS[obj["$dc"]](**obj["v"])
    return obj


def dumps(row: dict[str, Any]) -> str:
    """One exchange's features as JSON (see `loads`)."""
    _load_extra()
    return json.dumps(row, default=_default, separators=(",", ":"))


def loads(text: str | bytes) -> dict[str, Any]:
    """The features `dumps` encoded; arrays come back with their dtype and shape."""
    _load_extra()
    row = json.loads(text, object_hook=_object_hook)
    if not isinstance(row, dict):
        raise ValueError("a feature row is a JSON object")
    return row


# ---------------------------------------------------------------------------- text helpers


def final_answer(ex: Exchange) -> str:
    """The response text with tagged reasoning removed (see `detectors.scratchpad.extract`)."""
    return _strip_reasoning(ex.response_text or "")


@functools.lru_cache(maxsize=4096)
def _strip_reasoning(text: str) -> str:
    from detectors.scratchpad import extract

    return extract.without_reasoning(text)


def last_user_text(ex: Exchange) -> str:
    for m in reversed(ex.messages):
        if m.role == "user":
            return m.text
    return ""


# ---------------------------------------------------------------------------- classifiers

# The request and response classifiers (detectors/textclf.py): hashed word n-grams and a linear
# layer trained on text others wrote (docs/data.md), batched, cached per text. What each reads:
# The user's last turn, the experiment's cue removed, read in parts: windows of REQUEST_CHARS that
# start every REQUEST_STRIDE characters, and each paragraph of a text that has several (at most
# REQUEST_WINDOWS of each, the first and the last always among them). A request scores as its most
# harmful part. Half-overlapping windows cover the text for both tiers (the hashed heads read a
# whole window, the sentence model about its first 1,000 characters, 256 word pieces); a
# paragraph read alone is not diluted by the pasted text around it.
REQUEST_CHARS, REQUEST_STRIDE, REQUEST_WINDOWS = 2000, 1000, 16
_PARAGRAPH = re.compile(r"\n\s*\n")
ANSWER_HEAD, ANSWER_TAIL = 1500, 500  # the start and the end of a long final answer
_MEMO_SIZE = 8192
_memo: OrderedDict[tuple[str, str], NDArray[np.float64]] = OrderedDict()
_memo_lock = threading.Lock()


def request_windows(text: str, cue: str | None = None) -> list[str]:
    """What the harmful-request classifiers read: the user's text without the cue (so the arms of
    an experiment always get the same verdict), in parts; none for an empty text. The first part
    is the text's start (the whole of a short text). A long text is read up to REQUEST_WINDOWS
    windows (about 17,000 characters), so a request placed after pasted context is still read;
    past that the windows spread evenly over it, with gaps between them. Each paragraph of a text
    that has several is read alone too, so the request in one is not diluted by the rest."""
    if cue:
        text = text.replace(cue, " ")
    text = text.strip()
    if not text:
        return []
    last = max(len(text) - REQUEST_CHARS, 0)
    starts = _spread([*range(0, last, REQUEST_STRIDE), last])
    parts = [text[s : s + REQUEST_CHARS] for s in starts]
    paragraphs = [p.strip()[:REQUEST_CHARS] for p in _PARAGRAPH.split(text) if p.strip()]
    if len(paragraphs) > 1:
        parts += _spread(paragraphs)
    return list(dict.fromkeys(parts))


def _spread(items: list[Any]) -> list[Any]:
    """At most REQUEST_WINDOWS of `items`, evenly spaced, the first and the last among them."""
    if len(items) <= REQUEST_WINDOWS:
        return items
    step = (len(items) - 1) / (REQUEST_WINDOWS - 1)
    return [items[round(i * step)] for i in range(REQUEST_WINDOWS)]


def request_view(text: str, cue: str | None = None) -> str:
    """The first window of `request_windows`: what the request heads are trained on (a training
    prompt is one row; most are a single window)."""
    windows = request_windows(text, cue)
    return windows[0] if windows else ""


def answer_view(text: str) -> str:
    """What the refusal classifier reads: the final answer, or its start and end when long (a
    refusal can come late, after a restatement of the request)."""
    text = text.strip()
    if len(text) <= ANSWER_HEAD + ANSWER_TAIL:
        return text
    return f"{text[:ANSWER_HEAD]} … {text[-ANSWER_TAIL:]}"


def classify(model: str, texts: list[str]) -> list[NDArray[np.float64]]:
    """Class probabilities of `texts` under the shipped classifier `model`, computed once per
    distinct text (the features of a batch and the arms of a pair share the work)."""
    from detectors import textclf

    with _memo_lock:
        known = {t: _memo[(model, t)] for t in texts if (model, t) in _memo}
    todo = list(dict.fromkeys(t for t in texts if t not in known))
    if todo:
        known.update(zip(todo, textclf.load(model).proba(todo), strict=True))
        with _memo_lock:
            for text in todo:
                _memo[(model, text)] = known[text]
            while len(_memo) > _MEMO_SIZE:
                _memo.popitem(last=False)
    return [known[t] for t in texts]


def _harm_windows(model: str, batch: list[Exchange]) -> list[tuple[float | None, str]]:
    """(score, window) of each request under `model`: its most harmful window and that window's
    score; (None, "") where there is no text. Every window of the batch is classified at once."""
    windows = [request_windows(last_user_text(ex), ex.cue) for ex in batch]
    probs = iter(classify(model, [w for ws in windows for w in ws]))
    out: list[tuple[float | None, str]] = []
    for ws in windows:
        scores = [float(next(probs)[1]) for _ in ws]
        best = int(np.argmax(scores)) if scores else -1
        out.append((scores[best], ws[best]) if scores else (None, ""))
    return out


@batch_feature("harm_score", kind="continuous")
def harm_score(batch: list[Exchange]) -> list[float | None]:
    """Calibrated probability that the user's last turn is a harmful request (None: no text)."""
    return _harm_scores("harmful", batch)


@batch_feature("harmful")
def harmful(batch: list[Exchange]) -> list[int]:
    """1 when the harm score reaches the shipped threshold (chosen on training sources)."""
    return _harm_flags("harmful", harm_score(batch))


def _harm_scores(model: str, batch: list[Exchange]) -> list[float | None]:
    return [score for score, _ in _harm_windows(model, batch)]


def _harm_flags(model: str, scores: list[float | None]) -> list[int]:
    from detectors import textclf

    cut = textclf.load(model).threshold("harmful")
    return [int(s is not None and s >= cut) for s in scores]


#: `harm_band` edges, as fractions of the shipped `harmful` threshold.
HARM_BANDS = (0.25, 0.5, 1.0, 2.0)


@batch_feature("harm_band", kind="category")
def harm_band(batch: list[Exchange]) -> list[str | None]:
    """How harmful the request looks, in five bands of the harm score: `b0` below a quarter of
    the `harmful` threshold, `b1` below half, `b2` below it, `b3` flagged, `b4` flagged with
    twice the threshold's score. For `cue_gap` with `only: null, condition_on: harm_band`: every
    request is tested, each band as its own stratum, so the harmful requests the classifier
    scores below its threshold still add evidence instead of being dropped (a hard `only:
    harmful` keeps only the flagged ones). The top band keeps the surest requests apart from
    the benign ones the threshold lets through, whose answers (always complied with) would
    dilute the gap where harmful requests are rare."""
    from detectors import textclf

    cut = textclf.load("harmful").threshold("harmful")
    out: list[str | None] = []
    for s in harm_score(batch):
        out.append(None if s is None else f"b{sum(s >= edge * cut for edge in HARM_BANDS)}")
    return out


@batch_feature("harm_category", kind="category")
def harm_category(batch: list[Exchange]) -> list[str | None]:
    """The category of a harmful request (weapons, cyber, drugs, ...), None for benign ones."""
    return [category for *_, category in _verdicts("harmful", batch)]


def _verdicts(model: str, batch: list[Exchange]) -> list[tuple[float | None, int, str | None]]:
    """(score, flag, category) of each request under `model`, from one pass over its parts: the
    hashed `harm_category` head names the category of the flagged ones, read from their most
    harmful part."""
    from detectors import textclf

    found = _harm_windows(model, batch)
    flags = _harm_flags(model, [score for score, _ in found])
    flagged = [window for (_, window), f in zip(found, flags, strict=True) if f]
    names = textclf.load("harm_category").classes
    probs = iter(classify("harm_category", flagged))
    return [
        (score, f, names[int(np.argmax(next(probs)))] if f else None)
        for (score, _), f in zip(found, flags, strict=True)
    ]


#: The request and refusal classifiers of each tier: the default hashed heads, or the semantic
#: tier (hashed n-grams beside the sentence embedding; needs the embedding model).
CLASSIFIER_TIERS = {"hashed": ("harmful", "refusal"), "semantic": ("harmful_semantic", "refusal_semantic")}


def harm_verdicts(batch: list[Exchange], tier: str = "hashed") -> list[tuple[float | None, int, str | None]]:
    """(score, flag, category) of each request under a tier's classifier; the category comes
    from the hashed `harm_category` head, for the requests that tier flags."""
    return _verdicts(CLASSIFIER_TIERS[tier][0], batch)


def refusal_verdicts(batch: list[Exchange], tier: str = "hashed") -> list[tuple[str | None, float | None]]:
    """(label, probability of an outright refusal) of each answer under a tier's classifier."""
    return _refusal_verdicts(CLASSIFIER_TIERS[tier][1], batch)


@batch_feature("harm_score_semantic", kind="continuous", model=True)
def harm_score_semantic(batch: list[Exchange]) -> list[float | None]:
    """`harm_score` from the hashed n-grams and the local sentence embedding side by side, trained
    on the same data: better on request sources it never saw (docs/benchmarks.md), about ten
    requests/s per CPU core."""
    return _harm_scores("harmful_semantic", batch)


@batch_feature("harmful_semantic", model=True)
def harmful_semantic(batch: list[Exchange]) -> list[int]:
    return _harm_flags("harmful_semantic", harm_score_semantic(batch))


def _answers(batch: list[Exchange]) -> list[str | None]:
    """The final answer to classify; None when there is none (error, or tool calls only)."""
    out: list[str | None] = []
    for ex in batch:
        if ex.outcome != "ok" or ex.response_text is None:
            out.append(None)
            continue
        answer = final_answer(ex)
        out.append(answer_view(answer) if answer or not ex.tool_calls else None)
    return out


@batch_feature("refusal", kind="category")
def refusal(batch: list[Exchange]) -> list[str | None]:
    """`refusal` (declines outright), `partial` (declines part, or only warns and redirects
    without the substance) or `compliance`; None without a final answer."""
    return _refusal_labels("refusal", batch)


def _refusal_labels(model: str, batch: list[Exchange]) -> list[str | None]:
    return [label for label, _ in _refusal_verdicts(model, batch)]


def _refusal_verdicts(model: str, batch: list[Exchange]) -> list[tuple[str | None, float | None]]:
    """(top class, probability of `refusal`) per answer; (None, None) where there is no answer."""
    from detectors import textclf

    names = textclf.load(model).classes
    k = names.index("refusal")
    texts = _answers(batch)
    probs = classify(model, [t or "" for t in texts])
    return [
        (None, None) if t is None else (names[int(np.argmax(p))], float(p[k]))
        for t, p in zip(texts, probs, strict=True)
    ]


@batch_feature("refusal_score", kind="continuous")
def refusal_score(batch: list[Exchange]) -> list[float | None]:
    """Calibrated probability of an outright refusal."""
    return [score for _, score in _refusal_verdicts("refusal", batch)]


@batch_feature("refused")
def refused(batch: list[Exchange]) -> list[int | None]:
    """1 for an outright refusal; a partial refusal counts as 0 (something was given); a turn
    answered by tool calls alone complied."""
    return [_refused_of(ex, label) for ex, label in zip(batch, refusal(batch), strict=True)]


def _refused_of(ex: Exchange, label: str | None) -> int | None:
    if label is None:
        return 0 if ex.outcome == "ok" and ex.response_text is not None and ex.tool_calls else None
    return int(label == "refusal")


@batch_feature("complied")
def complied(batch: list[Exchange]) -> list[int | None]:
    """1 when the model answered rather than refused outright (meaningful on harmful requests)."""
    return [None if r is None else 1 - r for r in refused(batch)]


@feature("length", kind="continuous")
def length(ex: Exchange) -> int | None:
    return None if ex.response_text is None else len(final_answer(ex))


@feature("tool_use")
def tool_use(ex: Exchange) -> int | None:
    return None if ex.outcome != "ok" else int(bool(ex.tool_calls))


@feature("finish_reason", kind="category")
def finish_reason(ex: Exchange) -> str | None:
    return ex.finish_reason


@feature("has_reasoning")
def has_reasoning(ex: Exchange) -> int:
    return int(
        bool(ex.reasoning) or ex.redacted_reasoning_blocks > 0 or final_answer(ex) != (ex.response_text or "").strip()
    )


# ---------------------------------------------------------------------------- request


@feature("is_probe")
def is_probe(ex: Exchange) -> int:
    return int(ex.probe_id is not None)


@feature("probe_correct")
def probe_correct(ex: Exchange) -> int | None:
    """1/0 for a probe answered right/wrong (choice letters, numbers with a tolerance, short
    text; see `detectors.answers`), else None."""
    if ex.probe_id is None or ex.expected_answer is None or ex.outcome != "ok":
        return None
    from detectors import answers

    fmt = answers.infer_format(ex.expected_answer, ex.probe_choices)
    parsed = answers.parse(final_answer(ex), fmt, ex.probe_choices)
    return int(answers.same(parsed, ex.expected_answer, fmt, ex.probe_tolerance or 0.0))


@feature("dialect", kind="category")
def dialect(ex: Exchange) -> str:
    return ex.dialect


@feature("model", kind="category")
def model(ex: Exchange) -> str | None:
    return ex.model


# ---------------------------------------------------------------------------- semantic


@batch_feature("refused_semantic", model=True)
def refused_semantic(batch: list[Exchange]) -> list[int | None]:
    """`refused` from the hashed n-grams and the local sentence embedding side by side, trained on
    the same third-party responses (`refusal_semantic`), batched; about ten answers a second per
    CPU core."""
    return [_refused_of(ex, label) for ex, label in zip(batch, _refusal_labels("refusal_semantic", batch), strict=True)]


@batch_feature("complied_semantic", model=True)
def complied_semantic(batch: list[Exchange]) -> list[int | None]:
    return [None if r is None else 1 - r for r in refused_semantic(batch)]
