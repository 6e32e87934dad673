"""Train and judge the request and response classifiers on third-party data, split by source.

    .venv/bin/python bench/train_classifiers.py eval harmful      # leave-one-source-out figures
    .venv/bin/python bench/train_classifiers.py eval refusal
    .venv/bin/python bench/train_classifiers.py ship [harmful|refusal] [--encoder E]
                                                  # fit on every source (both encoders), write detectors/models/

    .venv/bin/python bench/train_classifiers.py eval harmful --encoder hashed+minilm   # the semantic tier
    .venv/bin/python bench/train_classifiers.py shipped harmful --sources a,b  # shipped model, unseen sources

Models: hashed word 1-2-grams (the semantic tier: beside MiniLM sentence embeddings) and a logistic layer
(`detectors/textclf.py`), with the same text views as the live features (`request_windows`: user
turn without the cue, in windows: a model learns from each prompt's first window and scores a
prompt by its most harmful window, as the live feature does; `answer_view`: the final answer's
start and end). Sources weigh the same
within a class, so a big source cannot teach its style as the sign of its class; sources that
share text are held out together (FAMILIES). Nothing is tuned on a source that is scored:

- `eval`: for each source, the model is fitted on the *other* sources; its calibration (Platt /
  temperature) and the `harmful` threshold come from out-of-fold predictions over those training
  sources (folds by source); then the held-out source is scored once.
- `ship`: the same recipe on every source; the weights and the provenance (sources, rows,
  calibration, threshold) go to `detectors/models/<name>.npz`.

Sources kept only to score (`EVAL_ONLY_PROMPTS`, `EVAL_ONLY_ANSWERS`) never enter a model's rows.

Disclosed: the threshold rule was changed twice after looking at held-out figures of the hashed
model (95% out-of-fold recall, then Youden's J, flagged 40-90% of held-out benign sources); the
rule kept ("at most 5% of ordinary benign prompts out of fold") is the product's own requirement.
Encoder and regularisation were compared once across held-out sources (docs/benchmarks.md), and so
were three ways of reading requests in parts (scored with the first-window threshold, calibrated on
parts, benign parts trained on; the last shipped), and whether SQuAD's passages vote in the threshold
(they do not: with a vote, the semantic tier flagged 5.4% of held-out ordinary benign prompts).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.external import rows, sources  # noqa: E402
from detectors import textclf  # noqa: E402
from detectors.features import answer_view, request_view, request_windows  # noqa: E402
from detectors.scratchpad.extract import without_reasoning  # noqa: E402

N_FEATURES = 2**19
NGRAMS = (1, 2)
EMBED_DIM = textclf.EMBED_DIM
C = {"hashed": 4.0, "minilm": 1.0, "hashed+minilm": 4.0}  # inverse L2 strength per encoder
# The semantic tier: hashed n-grams and MiniLM side by side (2026-12-07; MiniLM alone before, see
# docs/benchmarks.md); `--encoder minilm` still trains and evaluates MiniLM alone.
SEMANTIC, SEMANTIC_ENCODER = "semantic", "hashed+minilm"
MAX_BENIGN_FPR = 0.05  # the `harmful` threshold: this share of ordinary benign prompts flagged out of fold
MIN_CATEGORY_ROWS = 40
OUT = ROOT / "detectors" / "models"
# Sources that share text or derive from one another are held out together (docs/data.md):
# JailbreakBench and StrongREJECT draw on AdvBench; HarmBench on the TDC 2023 red-teaming set;
# CoCoNot's and the safety-tuned-llamas' harmful and contrast halves; Alpaca and AlpacaEval;
# CyberSecEval's and LLM-Safeguard's harmful and harmless halves.
FAMILIES = {
    "strongreject": "advbench",
    "jbb_harmful": "advbench",
    "tdc2023": "harmbench",
    "coconot_unsafe": "coconot",
    "coconot_contrast": "coconot",
    "stl_harmful": "stl",
    "stl_physical_safe": "stl",
    "alpaca_eval": "alpaca",
    "cyberseceval_interpreter": "cyberseceval",
    "cyberseceval_frr": "cyberseceval",
    "safeguard_harmful": "safeguard",
    "safeguard_harmless": "safeguard",
    "wildguard_harmful": "wildguard",
    "wildguard_benign": "wildguard",
}
# Scored, never trained on: WildGuardTest, a modern human-labelled benchmark of vanilla and adversarial
# prompts, kept as a clean held-out figure for every shipped model (docs/benchmarks.md).
EVAL_ONLY_PROMPTS = {"wildguard_harmful", "wildguard_benign"}
# Benign sources that train the models but have no vote in the `harmful` threshold: SQuAD's pasted
# passages teach that a document read alone is not a request, and are easy for that reason; with a
# vote, an easy source loosens the threshold for every other source (all ordinary sources weigh the
# same), which its first run did (docs/benchmarks.md).
NO_THRESHOLD_VOTE = {"squad"}


def family(source: str) -> str:
    return FAMILIES.get(source, source)


def trainable(data: list[dict[str, Any]], idx: list[int]) -> list[int]:
    """The rows of `idx` a harmful or category model may learn from (not a scored-only source)."""
    return [i for i in idx if data[i]["source"] not in EVAL_ONLY_PROMPTS]


# ---------------------------------------------------------------------------- fitting


def _weights(labels: list[str], groups: list[str]) -> np.ndarray:
    """Each source weighs the same within a class, and each class the same in all: a big source
    cannot teach its own style as the sign of its class."""
    cells = Counter(zip(labels, groups, strict=False))
    per_class = Counter(labels)
    sources_in = {c: len({g for (lab, g) in cells if lab == c}) for c in per_class}
    w = np.asarray([1.0 / (cells[(lab, g)] * sources_in[lab]) for lab, g in zip(labels, groups, strict=True)])
    return w * len(labels) / w.sum()


def encode(texts: list[str], encoder: str) -> Any:
    """All rows encoded once (sentence embeddings are cached on disk by text digest)."""
    if encoder == "hashed":
        return textclf.vectorizer(N_FEATURES, NGRAMS).transform(texts)
    if encoder == "hashed+minilm":
        return textclf.stack(encode(texts, "hashed"), encode(texts, "minilm"))
    from detectors import semantic

    cache_path = ROOT / "bench" / "results" / "embeddings.npz"
    cache: dict[str, np.ndarray] = {}
    if cache_path.exists():
        with np.load(cache_path) as z:
            cache = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
    keys = [hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest() for t in texts]
    todo = list(dict.fromkeys(k for k in keys if k not in cache))
    if todo:
        first = {k: t for k, t in zip(keys, texts, strict=True)}
        print(f"embedding {len(todo):,} texts ...", file=sys.stderr, flush=True)
        for k, v in zip(todo, semantic.embed([first[k] for k in todo], batch_size=128), strict=True):
            cache[k] = v
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_path, keys=np.asarray(list(cache)), vecs=np.asarray(list(cache.values()), np.float32))
    return np.asarray([cache[k] for k in keys], np.float32)


def windowed(clf: textclf.TextClassifier, prompts: list[str], encoder: str) -> np.ndarray:
    """P(harmful) of each prompt as the live feature scores it: the highest over its windows
    (`request_windows`; a model is trained on each prompt's first window)."""
    windows = [request_windows(t) for t in prompts]
    p = clf.probs_of(encode([w for ws in windows for w in ws], encoder))[:, 1]
    out = np.full(len(prompts), -np.inf)
    np.maximum.at(out, np.repeat(np.arange(len(prompts)), [len(ws) for ws in windows]), p)
    return out


def later_parts(data: list[dict[str, Any]], encoder: str) -> tuple[Any, np.ndarray]:
    """Every prompt's parts after the first (`request_windows`), encoded, and the row of each: what
    out-of-fold scoring adds so that a model's calibration and threshold see prompts as the live
    feature scores them."""
    parts = [(i, w) for i, r in enumerate(data) for w in request_windows(r["text"])[1:]]
    return encode([w for _, w in parts], encoder), np.asarray([i for i, _ in parts], dtype=np.int64)


def _vstack(a: Any, b: Any) -> Any:
    """Rows of `b` under those of `a` (sparse or dense alike)."""
    import scipy.sparse as sp

    return sp.vstack([a, b], format="csr") if sp.issparse(a) else np.vstack([a, b])


def _encoder_of(x: Any) -> str:
    """The encoder that made rows `x`, from their width."""
    return {N_FEATURES: "hashed", EMBED_DIM: "minilm", N_FEATURES + EMBED_DIM: "hashed+minilm"}[x.shape[1]]


def _fit_linear(
    x: Any, labels: list[str], classes: tuple[str, ...], groups: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_features, k) and intercepts (k,): logistic layers (liblinear) with sources and
    classes balanced, one for two classes (the first class is the zero reference), one per class
    otherwise."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray([classes.index(label) for label in labels])
    weight = _weights(labels, groups)
    targets = [1] if len(classes) == 2 else list(range(len(classes)))
    coef = np.zeros((len(classes), x.shape[1]), np.float32)
    icpt = np.zeros(len(classes), np.float32)
    for k in targets:
        lr = LogisticRegression(C=C[_encoder_of(x)], solver="liblinear", max_iter=500)
        lr.fit(x, (y == k).astype(int), sample_weight=weight)
        coef[k], icpt[k] = lr.coef_[0], lr.intercept_[0]
    return coef.T.copy(), icpt


def _calibrate(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """scale and per-class bias minimising log loss of softmax(scale * z + bias) (a grid on the
    scale, gradient steps on the bias). With more than two classes the bias stays 0 (temperature
    scaling): the top class of the class-balanced layer is kept, not pulled toward the classes
    the training sources happen to hold most of."""
    best: tuple[float, float, np.ndarray] | None = None
    k = logits.shape[1]
    onehot = np.eye(k)[y]
    for scale in np.geomspace(0.05, 5.0, 21):
        bias = np.zeros(k)
        for _ in range(150 if k == 2 else 0):
            z = scale * logits + bias
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            bias -= 0.5 * (p - onehot).mean(axis=0)
        z = scale * logits + bias
        z -= z.max(axis=1, keepdims=True)
        loss = float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())
        if best is None or loss < best[0]:
            best = (loss, float(scale), bias - bias[0])
    assert best is not None
    return best[1], best[2].astype(np.float32)


def _oof_logits(
    x: Any, labels: list[str], groups: list[str], classes: tuple[str, ...], later: tuple[Any, np.ndarray] | None = None
) -> np.ndarray:
    """Out-of-fold logits, folds by source (at most 5), for calibration and thresholds; with a
    single training source, 5 folds of its rows (seeded), the best that one source allows.
    `later` (two classes only): more parts of the rows, (features, row of each); a row's logit is
    then that of its part with the highest logit of the second class, as the live feature reads."""
    n = x.shape[0]
    names = sorted(set(groups))
    if len(names) > 1:
        folds = [[i for i, g in enumerate(groups) if g in names[j::5]] for j in range(min(5, len(names)))]
    else:
        order = np.random.default_rng(0).permutation(n)
        folds = [sorted(order[j::5].tolist()) for j in range(5)]
    out = np.zeros((n, len(classes)), np.float32)
    for held in folds:
        chosen = set(held)
        kept = [i for i in range(n) if i not in chosen]
        if not held or len({labels[i] for i in kept}) < len(classes):
            continue
        w, b = _fit_linear(x[kept], [labels[i] for i in kept], classes, [groups[i] for i in kept])
        out[held] = np.asarray(x[held] @ w) + b
        if later is not None:  # with two classes the first logit is 0: the second decides
            sel = np.flatnonzero(np.isin(later[1], held))
            z = (np.asarray(later[0][sel] @ w) + b)[:, 1].astype(out.dtype)
            np.maximum.at(out[:, 1], later[1][sel], z)
    return out


def fit_model(
    name: str,
    x: Any,
    labels: list[str],
    groups: list[str],
    classes: tuple[str, ...],
    encoder: str,
    calibrate: bool = True,
    later: tuple[Any, np.ndarray] | None = None,
) -> tuple[textclf.TextClassifier, np.ndarray]:
    """The calibrated model on all rows, and the calibrated out-of-fold probabilities (without
    `calibrate`, the raw model: enough where only the top class is read, in evaluations);
    `later`: see `_oof_logits`."""
    y = np.asarray([classes.index(label) for label in labels])
    n = (len(y), len(classes))
    oof = _oof_logits(x, labels, groups, classes, later) if calibrate else np.zeros(n, np.float32)
    scale, bias = _calibrate(oof, y) if calibrate else (1.0, np.zeros(len(classes), np.float32))
    w, b = _fit_linear(x, labels, classes, groups)
    dims, ngrams = {
        "hashed": (N_FEATURES, NGRAMS),
        "minilm": (EMBED_DIM, (0, 0)),
        "hashed+minilm": (N_FEATURES + EMBED_DIM, NGRAMS),
    }[encoder]
    clf = textclf.TextClassifier(name, classes, dims, ngrams, w, b, scale, bias, encoder=encoder)
    z = scale * oof + bias
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return clf, p


# ---------------------------------------------------------------------------- tasks


def harmful_data() -> tuple[list[str], list[str], list[str], list[dict[str, Any]]]:
    """Every prompt: the text the live feature reads, benign/harmful, the source family, the row."""
    data = [r for r in rows("prompts") if request_view(r["text"])]
    texts = [request_view(r["text"]) for r in data]
    labels = ["harmful" if r["label"] == "harmful" else "benign" for r in data]
    return texts, labels, [family(r["source"]) for r in data], data


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


NEAR_JACCARD = 0.6  # two prompts whose word sets overlap this much are one text, lightly edited
_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=2)
def near_duplicates(texts: tuple[str, ...]) -> tuple[frozenset[int], ...]:
    """For each text, the others whose word sets have a Jaccard similarity >= NEAR_JACCARD.
    Candidates are pairs sharing a word that at most 200 texts hold (a sparse product), then
    scored on their whole word sets: seconds for the ~20,000 prompts."""
    import scipy.sparse as sp

    vocab: dict[str, int] = {}
    cells = [(i, vocab.setdefault(w, len(vocab))) for i, t in enumerate(texts) for w in set(_WORD.findall(t.lower()))]
    r, c = np.asarray(cells, dtype=np.int64).reshape(-1, 2).T
    x = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(texts), len(vocab)))
    size = np.asarray(x.sum(axis=1)).ravel()
    rare = (x @ sp.diags((np.asarray(x.sum(axis=0)).ravel() <= 200).astype(np.float32))).tocsr()
    near: list[set[int]] = [set() for _ in texts]
    for start in range(0, len(texts), 4000):
        shared = (rare[start : start + 4000] @ rare.T).tocoo()
        i, j = shared.row + start, shared.col
        i, j = i[i < j], j[i < j]
        common = np.asarray(x[i].multiply(x[j]).sum(axis=1)).ravel()
        close = common / np.maximum(size[i] + size[j] - common, 1) >= NEAR_JACCARD
        for a, b in zip(i[close].tolist(), j[close].tolist(), strict=True):
            near[a].add(b)
            near[b].add(a)
    return tuple(frozenset(n) for n in near)


def outside(data: list[dict[str, Any]], held: set[str], key: str = "source") -> list[int]:
    """Rows outside the held-out families, without any text that also occurs in them. Prompts
    also lose their near duplicates of held-out text (sources that compile earlier sets edit
    some prompts lightly); answers do not, since refusals are formulaic and alike across
    models without being copies."""
    fam = [family(r[key]) if key == "source" else r[key] for r in data]
    text_key = "text" if "text" in data[0] else "response"
    banned = {_norm(r[text_key]) for r, f in zip(data, fam, strict=True) if f in held}
    close: set[int] = set()
    if text_key == "text":
        near = near_duplicates(tuple(r["text"] for r in data))
        close = {j for i, f in enumerate(fam) if f in held for j in near[i]}
    return [
        i
        for i, (r, f) in enumerate(zip(data, fam, strict=True))
        if f not in held and _norm(r[text_key]) not in banned and i not in close
    ]


def train_harmful(
    x: Any,
    labels: list[str],
    groups: list[str],
    data: list[dict[str, Any]],
    idx: list[int],
    encoder: str,
    later: tuple[Any, np.ndarray] | None = None,
) -> textclf.TextClassifier:
    """The harmful-request model on rows `idx` (each prompt's first part); the threshold flags at
    most MAX_BENIGN_FPR of ordinary benign prompts out of fold (each source weighing the same).
    `later` (`later_parts` of all rows): every part of a benign prompt is benign, so its later
    parts train as benign rows of its source too (a paragraph of pasted text read alone must
    not look harmful), and calibration and threshold score a prompt by its most harmful part,
    as the live feature does. A harmful prompt's later parts are not labelled (the request may
    sit in any one of them) and only score."""
    idx = trainable(data, idx)
    lab, grp = [labels[i] for i in idx], [groups[i] for i in idx]
    name = "harmful" if encoder == "hashed" else f"harmful_{SEMANTIC}"
    n = len(idx)
    rows, mine = x[idx], None
    if later is not None:
        local = np.full(len(data), -1, dtype=np.int64)
        local[idx] = np.arange(n)
        keep = np.flatnonzero(local[later[1]] >= 0)
        owner = local[later[1][keep]]
        mine = (later[0][keep], owner)
        benign = keep[np.asarray([lab[o] == "benign" for o in owner], dtype=bool)]
        rows = _vstack(rows, later[0][benign])
        lab += ["benign"] * len(benign)
        grp += [groups[i] for i in later[1][benign]]
    clf, oof = fit_model(name, rows, lab, grp, ("benign", "harmful"), encoder, later=mine)
    oof, lab, grp = oof[:n], lab[:n], grp[:n]  # the prompts themselves, each scored as a whole
    y = np.asarray(lab) == "harmful"
    ordinary = np.asarray([data[i]["label"] == "benign" and data[i]["source"] not in NO_THRESHOLD_VOTE for i in idx])
    weight = _weights(lab, grp)
    grid = np.unique(np.round(oof[:, 1], 4))
    fpr = np.asarray([(weight[ordinary] * (oof[ordinary, 1] >= t)).sum() / weight[ordinary].sum() for t in grid])
    cut = float(grid[np.flatnonzero(fpr <= MAX_BENIGN_FPR)[0]])
    clf.meta["sources"] = dict(sorted(Counter(data[i]["source"] for i in idx).items()))  # the rows it saw
    clf.meta["thresholds"] = {"harmful": cut}
    clf.meta["threshold_sources"] = sorted({data[i]["source"] for i, o in zip(idx, ordinary, strict=True) if o})
    clf.meta["scored_by"] = "first part" if later is None else "most harmful part"  # as calibrated
    clf.meta["benign_parts"] = rows.shape[0] - n  # later parts of benign prompts, trained on as rows
    clf.meta["oof"] = {
        "recall": round(float((oof[y, 1] >= cut).mean()), 4),
        "ordinary_benign_fpr": round(float((oof[ordinary, 1] >= cut).mean()), 4),
    }
    return clf


def train_category(
    x: Any, groups: list[str], data: list[dict[str, Any]], idx: list[int], encoder: str, calibrate: bool = True
) -> textclf.TextClassifier:
    """The category model on the harmful rows of `idx` whose category has MIN_CATEGORY_ROWS rows."""
    idx = trainable(data, idx)
    cats = Counter(data[i]["category"] for i in idx if data[i]["label"] == "harmful" and data[i].get("category"))
    keep = tuple(sorted(c for c, n in cats.items() if n >= MIN_CATEGORY_ROWS))
    sel = [i for i in idx if data[i]["label"] == "harmful" and data[i].get("category") in keep]
    cat_clf, _ = fit_model(
        "harm_category",
        x[sel],
        [data[i]["category"] for i in sel],
        [groups[i] for i in sel],
        keep,
        encoder,
        calibrate,
    )
    cat_clf.meta["sources"] = dict(sorted(Counter(data[i]["source"] for i in sel).items()))
    return cat_clf


def refusal_data() -> tuple[list[str], list[str], list[str], list[dict[str, Any]]]:
    data = rows("responses")
    texts = [answer_view(without_reasoning(r["response"])) for r in data]
    return texts, [r["label"] for r in data], [r["source"] for r in data], data


REFUSAL_CLASSES = ("compliance", "partial", "refusal")
# Scored, never trained on: an LLM judge's harmful/harmless verdicts, whose "harmless" also covers
# safe completions and support messages; trained on, it moved 66 of do-not-answer's 665 disclaimed
# answers (action 3, compliance) to refusal (docs/benchmarks.md).
EVAL_ONLY_ANSWERS = {"sorry-bench-answers"}
PLAIN = {0, 2, 5}  # do-not-answer actions read alike under any definition of a refusal


def train_refusal(x: Any, labels: list[str], groups: list[str], idx: list[int], encoder: str) -> textclf.TextClassifier:
    idx = [i for i in idx if groups[i] not in EVAL_ONLY_ANSWERS]
    lab = [labels[i] for i in idx]
    classes = tuple(c for c in REFUSAL_CLASSES if c in lab)
    name = "refusal" if encoder == "hashed" else f"refusal_{SEMANTIC}"
    clf, _ = fit_model(name, x[idx], lab, [groups[i] for i in idx], classes, encoder)
    clf.meta["sources"] = dict(sorted(Counter(groups[i] for i in idx).items()))  # groups: the answers' sources
    return clf


# ---------------------------------------------------------------------------- reports


def eval_harmful(encoder: str) -> None:
    texts, labels, groups, data = harmful_data()
    x, later = encode(texts, encoder), later_parts(data, encoder)
    print(f"encoder {encoder}; threshold: at most {MAX_BENIGN_FPR:.0%} of ordinary benign prompts out of fold\n")
    print("| held-out source | kind | rows | flagged | threshold (from training sources) |")
    print("|---|---|---|---|---|")
    summary: dict[str, list[float]] = {"harmful": [], "benign": [], "confusable": [], "voting": []}
    pooled: list[tuple[str, str, float]] = []  # (kind, source, held-out score) of the sources in the means
    for fam in sorted(set(groups)):
        train = outside(data, {fam})
        clf = train_harmful(x, labels, groups, data, train, encoder, later)
        cat_clf = train_category(x, groups, data, train, encoder, calibrate=False)
        print(f"held out {fam}: out-of-fold on the training sources {clf.meta['oof']}", file=sys.stderr, flush=True)
        held = [i for i, g in enumerate(groups) if g == fam]
        p = windowed(clf, [data[i]["text"] for i in held], encoder)
        cut = clf.threshold("harmful")
        for src, kind in sorted({(data[i]["source"], data[i]["label"]) for i in held}):
            sel = np.asarray([data[i]["source"] == src and data[i]["label"] == kind for i in held])
            scored_only = src in EVAL_ONLY_PROMPTS  # reported, outside the means (its own shipped-model figure)
            if not scored_only:
                summary[kind].append(float((p[sel] >= cut).mean()))
                if kind == "benign" and src not in NO_THRESHOLD_VOTE:
                    summary["voting"].append(summary[kind][-1])
                pooled += [(kind, src, float(v)) for v in p[sel]]
            note = " (scored only, not in the means)" if scored_only else ""
            print(f"| {src}{note} | {kind} | {int(sel.sum())} | {(p[sel] >= cut).mean():.1%} | {cut:.3f} |")
        cat_rows = [i for i in held if data[i]["label"] == "harmful" and data[i].get("category") in cat_clf.classes]
        if cat_rows:
            q = cat_clf.probs_of(x[cat_rows])
            hit = np.mean(
                [cat_clf.classes[int(np.argmax(v))] == data[i]["category"] for v, i in zip(q, cat_rows, strict=False)]
            )
            print(f"| {fam} (family) | category accuracy | {len(cat_rows)} | {hit:.1%} | |")
        sys.stdout.flush()
    print(
        f"\nmean over held-out sources: harmful recall {np.mean(summary['harmful']):.1%}, ordinary benign flagged "
        f"{np.mean(summary['benign']):.1%} (the sources that set the threshold: {np.mean(summary['voting']):.1%}), "
        f"confusable benign flagged {np.mean(summary['confusable']):.1%}"
    )
    print(f"held-out AUROC, threshold-free (each source weighing the same): {_pooled_auroc(pooled)}")


def _pooled_auroc(pooled: list[tuple[str, str, float]]) -> str:
    """AUROC of the held-out scores, harmful against ordinary benign and against confusable prompts,
    every source weighing the same (each fold's model scores only its own held-out family)."""
    from sklearn.metrics import roc_auc_score

    rows = Counter((kind, src) for kind, src, _ in pooled)
    per_kind = Counter(kind for kind, _ in rows)
    out = []
    for other in ("benign", "confusable"):
        sel = [(k, s, v) for k, s, v in pooled if k in ("harmful", other)]
        if not per_kind["harmful"] or not per_kind[other]:
            continue
        y = [k == "harmful" for k, _, _ in sel]
        w = [1.0 / (rows[(k, s)] * per_kind[k]) for k, s, _ in sel]
        out.append(f"harmful vs {other} {roc_auc_score(y, [v for *_, v in sel], sample_weight=w):.3f}")
    return ", ".join(out)


def _refusal_report(label: str, clf: textclf.TextClassifier, x: Any, truth: list[str]) -> None:
    pred = [clf.classes[int(np.argmax(v))] for v in clf.probs_of(x)]
    acc3 = np.mean([a == b for a, b in zip(pred, truth, strict=False)])
    acc2 = np.mean([(a == "refusal") == (b == "refusal") for a, b in zip(pred, truth, strict=False)])
    tp = sum(a == "refusal" and b == "refusal" for a, b in zip(pred, truth, strict=False))
    prec = tp / max(1, sum(a == "refusal" for a in pred))
    rec = tp / max(1, sum(b == "refusal" for b in truth))
    partial = [a for a, b in zip(pred, truth, strict=False) if b == "partial"]
    part = f"{sum(a == 'refusal' for a in partial)}/{len(partial)}" if partial else "-"
    counts = Counter(truth)
    print(
        f"| {label} | {len(truth)} | {counts['refusal']}/{counts['partial']}/{counts['compliance']} | {acc2:.3f} "
        f"| {prec:.2f} | {rec:.2f} | {acc3:.3f} | {part} |"
    )
    sys.stdout.flush()


def eval_refusal(encoder: str) -> None:
    texts, labels, groups, data = refusal_data()
    x = encode(texts, encoder)
    head = "| rows | refusal/partial/compliance | refused accuracy | precision | recall | 3-class accuracy |"
    print(f"encoder {encoder}\n\n| held out {head} partial called refusal |")
    print("|---|---|---|---|---|---|---|---|")
    for src in sources(data):
        clf = train_refusal(x, labels, groups, outside(data, {src}), encoder)
        held = [i for i, g in enumerate(groups) if g == src]
        _refusal_report(f"source {src}", clf, x[held], [labels[i] for i in held])
    models = Counter(r["model"] for r in data)
    for model, n in sorted(models.items()):
        if n < 200 or model == "unknown":
            continue
        held = [i for i, r in enumerate(data) if r["model"] == model]
        clf = train_refusal(x, labels, groups, outside(data, {model}, key="model"), encoder)
        _refusal_report(
            f"model {model} (its responses held out; its sources kept)", clf, x[held], [labels[i] for i in held]
        )
        # the same model's do-not-answer answers whose annotation is unambiguous: "not willing to
        # answer" (refusal) vs "answers, with balance" / "follows the instruction" (compliance)
        plain = [i for i in held if data[i]["source"] == "do-not-answer" and data[i]["source_label"]["action"] in PLAIN]
        if plain:
            _refusal_report(f"model {model}, do-not-answer actions 0/2/5", clf, x[plain], [labels[i] for i in plain])


def eval_shipped(names: list[str], encoder: str) -> None:
    """Score the shipped `harmful` model (or the one `CUEWATCH_MODELS_DIR` names) on sources it was
    not trained on: the figure for sources added after the model was fitted."""
    name = "harmful" if encoder == "hashed" else f"harmful_{SEMANTIC}"
    clf = textclf.load(name)
    if clf.encoder != encoder:
        raise SystemExit(f"{name} reads {clf.encoder}, not {encoder}: pass --encoder {clf.encoder}")
    seen = {family(s) for s in clf.meta.get("sources", {})}
    if overlap := seen & {family(s) for s in names}:
        raise SystemExit(f"{name} was trained on the families {sorted(overlap)}: not a held-out figure")
    data = harmful_data()[3]
    unseen = set(outside(data, seen))  # neither its families nor a text they hold
    cut = clf.threshold("harmful")
    print(f"shipped {name} (trained {clf.meta.get('trained')}, threshold {cut:.3f}) on sources it never saw\n")
    print("| source | kind | rows | flagged |\n|---|---|---|---|")
    pooled: list[tuple[str, str, float]] = []
    for src in names:
        idx = [i for i in sorted(unseen) if data[i]["source"] == src]
        if not idx:
            raise SystemExit(f"no rows of source {src!r} (rebuild with bench/data/build_prompts.py)")
        p = windowed(clf, [data[i]["text"] for i in idx], clf.encoder)
        pooled += [(data[i]["label"], src, float(v)) for i, v in zip(idx, p, strict=True)]
        for kind in sorted({data[i]["label"] for i in idx}):
            sel = np.asarray([data[i]["label"] == kind for i in idx])
            print(f"| {src} | {kind} | {int(sel.sum())} | {(p[sel] >= cut).mean():.1%} |")
    if auroc := _pooled_auroc(pooled):
        print(f"\nAUROC, threshold-free (each source weighing the same): {auroc}")


def ship(task: str | None = None, encoders: tuple[str, ...] = ("hashed", SEMANTIC_ENCODER)) -> None:
    """Fit the shipped models (both tasks, or one; both encoders, or one) on every source."""
    OUT.mkdir(parents=True, exist_ok=True)
    today = dt.date.today().isoformat()
    made: list[textclf.TextClassifier] = []  # each names the sources it saw in meta["sources"]
    if task in (None, "harmful"):
        ptexts, plabels, pgroups, pdata = harmful_data()
        for encoder in encoders:
            x = encode(ptexts, encoder)
            every = list(range(len(pdata)))
            made.append(train_harmful(x, plabels, pgroups, pdata, every, encoder, later_parts(pdata, encoder)))
            if encoder == "hashed":  # the category head is hashed only
                made.append(train_category(x, pgroups, pdata, every, encoder))
    if task in (None, "refusal"):
        rtexts, rlabels, rgroups, rdata = refusal_data()
        for encoder in encoders:
            x = encode(rtexts, encoder)
            made.append(train_refusal(x, rlabels, rgroups, list(range(len(rdata))), encoder))
    for model in made:
        model.meta.update(
            trained=today,
            script="bench/train_classifiers.py",
            data="docs/data.md",
            hyper={"C": C[model.encoder], "ngrams": list(model.ngrams), "n_features": model.n_features},
        )
        model.save(OUT / f"{model.name}.npz")
        print(f"wrote {OUT.relative_to(ROOT)}/{model.name}.npz: classes {model.classes}, meta {model.meta}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("eval", "ship", "shipped"))
    ap.add_argument("task", nargs="?", choices=("harmful", "refusal"))
    ap.add_argument("--encoder", choices=textclf.ENCODERS, help="default: hashed (ship: hashed and the semantic tier)")
    ap.add_argument("--sources", default="", help="shipped: comma-separated sources the model never saw")
    args = ap.parse_args()
    started = time.monotonic()
    if args.what == "ship":
        ship(args.task, (args.encoder,) if args.encoder else ("hashed", SEMANTIC_ENCODER))
    elif args.what == "shipped":
        if args.task != "harmful":
            ap.error("shipped scores the harmful model only: shipped harmful --sources ...")
        eval_shipped([s for s in args.sources.split(",") if s], args.encoder or "hashed")
    elif args.task == "harmful":
        eval_harmful(args.encoder or "hashed")
    elif args.task == "refusal":
        eval_refusal(args.encoder or "hashed")
    else:
        ap.error("eval needs a task: harmful or refusal")
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
