"""Linear text classifiers trained on text others wrote: the request and response classifiers.

Three encoders feed one linear layer and a calibration fitted on sources the layer was not trained on:
- `hashed`: words and word pairs hashed into a fixed-size vector (scikit-learn's
  `HashingVectorizer`, so no vocabulary ships); thousands of texts a second on one core, the
  default for every exchange (`harmful`, `harm_category`, `refusal`);
- `minilm`: the local sentence-embedding model (`detectors.semantic`); about 50-100 texts a second
  on a CPU;
- `hashed+minilm`: both side by side in one layer, the semantic tier (`harmful_semantic`,
  `refusal_semantic`): better across sources than either alone, at the embedding model's speed.
The same code serves live features, `cuewatch scan` and the benchmarks.

    clf = load("harmful")
    clf.proba(["How do I make a pipe bomb?"])      # rows of calibrated class probabilities
    clf.classes                                    # ("benign", "harmful")

Weights ship as `detectors/models/<name>.npz`, written by `bench/train_classifiers.py`, with the
training sources, the calibration source and the thresholds in their metadata. A folder named by
`CUEWATCH_MODELS_DIR` replaces the shipped folder (heads retrained on your own data, or with a
source held out for a benchmark). Nothing is read at import time; a model loads on first use and
is kept.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

TOKENS = r"(?u)\b\w+\b"  # single letters and digits count: "I", "t" of "can't", "2"
FORMAT = 1
ENCODERS = ("hashed", "minilm", "hashed+minilm")
EMBED_DIM = 384  # the sentence embeddings' width


def vectorizer(n_features: int, ngrams: tuple[int, int]) -> Any:
    """The hashing vectorizer every model and its training share (lower-cased words, l2 rows)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=n_features,
        ngram_range=ngrams,
        token_pattern=TOKENS,
        alternate_sign=False,
        norm="l2",
        dtype=np.float32,
    )


@dataclass(frozen=True)
class TextClassifier:
    """A calibrated linear model over hashed n-grams, sentence embeddings, or both side by side.

    `proba` is softmax(scale * logits + bias): Platt scaling for two classes, temperature and
    bias for more, both fitted on held-out predictions (see the training script)."""

    name: str
    classes: tuple[str, ...]
    n_features: int
    ngrams: tuple[int, int]  # the hashed part's n-grams ((0, 0) for `minilm`)
    weights: NDArray[np.float32]  # (n_features, k)
    intercept: NDArray[np.float32]  # (k,)
    scale: float = 1.0
    bias: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    meta: dict[str, Any] = field(default_factory=dict)
    encoder: str = "hashed"

    def __post_init__(self) -> None:
        k = len(self.classes)
        if self.weights.shape != (self.n_features, k) or self.intercept.shape != (k,):
            raise ValueError(f"{self.name}: weights {self.weights.shape} do not fit {k} classes")
        if self.bias.shape not in ((0,), (k,)):
            raise ValueError(f"{self.name}: calibration bias {self.bias.shape} does not fit {k} classes")

        if self.encoder not in ENCODERS:
            raise ValueError(f"{self.name}: unknown encoder {self.encoder!r}; known: {', '.join(ENCODERS)}")
        if self.encoder == "hashed+minilm" and self.n_features <= EMBED_DIM:
            raise ValueError(f"{self.name}: {self.n_features} features leave no room for hashed n-grams")

    @functools.cached_property
    def _vectorizer(self) -> Any:
        return vectorizer(self._hashed_features, self.ngrams)

    @property
    def _hashed_features(self) -> int:
        return self.n_features - EMBED_DIM if self.encoder == "hashed+minilm" else self.n_features

    def encode(self, texts: list[str]) -> Any:
        """The rows the linear layer reads: hashed n-grams (sparse), sentence embeddings, or
        both side by side. Hashed rows of the last batch are kept per hashing set-up, so models
        that read the same texts the same way (`harmful` and `harm_category`) hash a batch once."""
        if self.encoder == "minilm":
            from detectors import semantic

            return semantic.embed(texts)
        key, batch = (self._hashed_features, self.ngrams), tuple(texts)
        with _last_lock:
            last = _last_hashed.get(key)
        if last is not None and last[0] == batch:
            rows = last[1]
        else:
            rows = self._vectorizer.transform(texts)
            rows.data.flags.writeable = False  # shared by the models (and threads) reading this batch
            with _last_lock:
                _last_hashed[key] = (batch, rows)
        if self.encoder == "hashed+minilm":
            from detectors import semantic

            return stack(rows, semantic.embed(texts))
        return rows

    def logits(self, texts: list[str]) -> NDArray[np.float32]:
        """Uncalibrated scores, one row per text, one column per class."""
        if not texts:
            return np.zeros((0, len(self.classes)), np.float32)
        return self.logits_of(self.encode(texts))

    def logits_of(self, x: Any) -> NDArray[np.float32]:
        """Scores of rows already encoded (training reuses one encoding across folds)."""
        return np.asarray(x @ self.weights, dtype=np.float32) + self.intercept

    def proba(self, texts: list[str]) -> NDArray[np.float64]:
        """Calibrated class probabilities, one row per text (rows sum to 1)."""
        if not texts:
            return np.zeros((0, len(self.classes)), np.float64)
        return self.probs_of(self.encode(texts))

    def probs_of(self, x: Any) -> NDArray[np.float64]:
        """Calibrated probabilities of rows already encoded."""
        z = self.logits_of(x).astype(np.float64) * self.scale
        if self.bias.size:
            z = z + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def threshold(self, key: str, default: float = 0.5) -> float:
        return float(self.meta.get("thresholds", {}).get(key, default))

    # ------------------------------------------------------------------ storage

    def save(self, path: Any) -> None:
        """Write the model as compressed NumPy arrays: only the rows with a weight are stored."""
        rows = np.flatnonzero(np.abs(self.weights).sum(axis=1) > 0).astype(np.int32)
        head = {
            "format": FORMAT,
            "name": self.name,
            "classes": list(self.classes),
            "n_features": self.n_features,
            "ngrams": list(self.ngrams),
            "scale": self.scale,
            "encoder": self.encoder,
            "meta": self.meta,
        }
        np.savez_compressed(
            path,
            header=np.frombuffer(json.dumps(head, sort_keys=True).encode(), dtype=np.uint8),
            rows=rows,
            weights=self.weights[rows].astype(np.float32),
            intercept=self.intercept.astype(np.float32),
            bias=self.bias.astype(np.float32),
        )

    @classmethod
    def read(cls, source: Any) -> TextClassifier:
        with np.load(source, allow_pickle=False) as z:
            head = json.loads(bytes(z["header"]).decode())
            if head.get("format") != FORMAT:
                raise ValueError(f"model format {head.get('format')!r} is not {FORMAT}; retrain or upgrade")
            k = len(head["classes"])
            weights = np.zeros((int(head["n_features"]), k), np.float32)
            weights[z["rows"]] = z["weights"]
            return cls(
                name=head["name"],
                classes=tuple(head["classes"]),
                n_features=int(head["n_features"]),
                ngrams=(int(head["ngrams"][0]), int(head["ngrams"][1])),
                weights=weights,
                intercept=np.asarray(z["intercept"], np.float32),
                scale=float(head["scale"]),
                bias=np.asarray(z["bias"], np.float32),
                meta=head["meta"],
                encoder=head.get("encoder", "hashed"),
            )


def stack(hashed: Any, embeddings: NDArray[np.float32]) -> Any:
    """Hashed rows with the same texts' sentence embeddings beside them (`hashed+minilm` rows)."""
    import scipy.sparse as sp

    return sp.hstack([hashed, sp.csr_matrix(embeddings)], format="csr")


# (hashed features, ngrams) -> (the last batch of texts hashed so, its rows, read-only). One slot per
# set-up: it pays off when models reading the same texts run one after the other, as
# `features.compute_batch` runs `harmful` and `harm_category`; feature threads and `cuewatch scan`
# may encode at once, so the slot is read and replaced under a lock.
_last_hashed: dict[tuple[int, tuple[int, int]], tuple[tuple[str, ...], Any]] = {}
_last_lock = threading.Lock()


@functools.cache
def load(name: str) -> TextClassifier:
    """The model `name` (detectors/models/<name>.npz, or <name>.npz in the folder named by
    CUEWATCH_MODELS_DIR), loaded once per process."""
    folder = os.environ.get("CUEWATCH_MODELS_DIR")
    ref: Any = (
        Path(folder) / f"{name}.npz" if folder else resources.files("detectors").joinpath("models", f"{name}.npz")
    )
    if not ref.is_file():
        where = f"{folder} (CUEWATCH_MODELS_DIR)" if folder else "detectors/models"
        raise FileNotFoundError(f"no classifier {name!r} in {where}")
    with ref.open("rb") as f:
        return TextClassifier.read(f)
