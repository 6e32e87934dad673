"""The data builds' held-out check (bench/data/heldout.py), on a fingerprint file made here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench.data import heldout

SECRET = (
    "the quick brown fox jumps over the lazy dog while seven tired owls watch from an old oak tree "
    "near the river bank at dusk"
)


def _fingerprints(tmp_path: Path, text: str) -> Path:
    words = text.split()
    prints = {
        hashlib.sha1(heldout.SALT + " ".join(words[i : i + 12]).encode(), usedforsecurity=False).hexdigest()[:16]
        for i in range(len(words) - 11)
    }
    path = tmp_path / "fingerprints.txt"
    path.write_text("# test\n" + "\n".join(sorted(prints)) + "\n")
    return path


def test_rows_sharing_twelve_words_are_found_in_any_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUEWATCH_HELDOUT_FINGERPRINTS", str(_fingerprints(tmp_path, SECRET)))
    words = SECRET.split()
    rows = [
        {"text": "An unrelated prompt about gardening and tomatoes."},
        {"prompt": "Q?", "response": "Well: " + " ".join(words[3:15]).upper() + "!"},  # case, punctuation
        {"meta": {"turns": ["x", " ".join(words[5:17])]}},  # nested
        {"text": " ".join(words[:11])},  # eleven words: too short to see
        {"a": " ".join(words[:6]), "b": " ".join(words[6:12])},  # split across fields, read together
    ]
    assert heldout.held_rows(rows) == {1, 2, 4}


def test_building_without_the_fingerprints_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUEWATCH_HELDOUT_FINGERPRINTS", str(tmp_path / "absent.txt"))
    with pytest.raises(FileNotFoundError, match="refusing to build"):
        heldout.held_rows([{"text": "anything"}])
