"""Logs that live elsewhere: `cuewatch replay` and `cuewatch show` accept URLs and object-store
paths (`https://host/logs/`, `s3://bucket/cuewatch-logs/`, `gs://...`) as well as local files.
Remote segments are copied into a local cache first (once: a copy of the same size is reused),
then read like any local log. fsspec does the reading; `s3://` needs `s3fs`, `gs://` `gcsfs`.

Example
-------
>>> is_remote("s3://bucket/logs/"), is_remote("cuewatch-logs"), is_remote("/var/log/cuewatch")
(True, False, False)
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import TextIO

from monitor.errors import ConfigError

SEGMENT = re.compile(r"\.jsonl(\.gz)?$")
EXTRAS = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def is_remote(location: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://", location) is not None


def default_cache() -> Path:
    return Path.home() / ".cache" / "cuewatch" / "logs"


def localise(locations: list[str], cache: Path | None = None, progress: TextIO | None = sys.stderr) -> list[Path]:
    """Local paths for `locations`: local ones as given, remote ones copied into `cache`."""
    out: list[Path] = []
    for loc in locations:
        if not is_remote(loc):
            out.append(Path(loc))
            continue
        out.append(_fetch(loc, cache or default_cache(), progress))
    return out


def _fetch(url: str, cache: Path, progress: TextIO | None) -> Path:
    try:
        import fsspec
    except ImportError as exc:
        raise ConfigError(f"reading {url} needs fsspec: pip install 'cuewatch[remote]'") from exc
    scheme = url.split("://", 1)[0]
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        extra = EXTRAS.get(scheme)
        hint = f": pip install {extra}" if extra else ""
        raise ConfigError(f"cannot read {scheme}:// locations{hint} ({exc})") from exc
    try:
        if fs.isdir(root):
            files = sorted(p for p in fs.find(root) if SEGMENT.search(p))
        elif fs.exists(root):
            files = [root]
        else:
            raise ConfigError(f"{url}: no such log file or folder")
    except OSError as exc:
        raise ConfigError(f"{url}: cannot list it: {exc}") from exc
    if not files:
        raise ConfigError(f"{url}: no log segments (*.jsonl, *.jsonl.gz) there")
    # one folder per location, named after it: the same URL always lands in the same place
    where = cache / (re.sub(r"[^A-Za-z0-9._-]+", "_", url)[:80] + "-" + hashlib.sha256(url.encode()).hexdigest()[:8])
    where.mkdir(parents=True, exist_ok=True)
    total = 0
    for i, remote in enumerate(files, start=1):
        name = remote.rstrip("/").rsplit("/", 1)[-1]
        local = where / name
        try:
            size = fs.size(remote)
            if not (local.exists() and size is not None and local.stat().st_size == size):
                tmp = local.with_name(local.name + ".part")
                fs.get_file(remote, str(tmp))
                tmp.replace(local)
        except OSError as exc:
            raise ConfigError(f"{url}: cannot copy {name}: {exc}") from exc
        total += local.stat().st_size
        if progress is not None:
            progress.write(f"\rfetch: {i}/{len(files)} segments, {total / 1e6:,.1f} MB from {url}")
            progress.flush()
    if progress is not None:
        progress.write(f"\nfetch: copied to {where}\n")
    return where
