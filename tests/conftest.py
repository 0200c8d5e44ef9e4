"""Shared pytest set-up: the collection on sys.path, and the sandbox fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS_PATH = REPO_ROOT / ".ansible" / "collections"
LINK = COLLECTIONS_PATH / "ansible_collections" / "cloudops" / "ecr_replication"

# Unit tests import `ansible_collections.cloudops.ecr_replication.plugins.module_utils.*` directly;
# `make collection` links the work tree there (done here too, for a bare `pytest`).
if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(REPO_ROOT)
if str(COLLECTIONS_PATH) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_PATH))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_PATH))
# The amazon.aws/community.aws bundled with the ansible package are importable from site-packages.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

pytest_plugins = ["tests.sandbox.fixtures", "tests.reliability"]
