"""Red flags in a model's reasoning (scratchpad, chain of thought): extraction with offsets,
per-category scoring in tiers (lexical patterns, a local semantic model with a small trained
head, an optional LLM judge), and the live detector.

Nothing is loaded at import time; the semantic model loads on the first semantic score.
"""

CATEGORIES = (
    "alignment_faking",
    "monitoring_awareness",
    "oversight_subversion",
    "self_exfiltration",
    "sandbagging_intent",
    "deception",
)
