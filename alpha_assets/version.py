"""The code version: a hash of the source that computes things, so a soak can vouch for it."""

from __future__ import annotations

import functools
import hashlib

from alpha_assets.paths import REPO_ROOT

SOURCE_DIRS = ("alpha_assets", "executors")


@functools.cache
def code_version() -> str:
    digest = hashlib.sha256()
    for folder in SOURCE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
