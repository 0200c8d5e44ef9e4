# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# tests/conftest.py puts the collection on sys.path; this keeps these tests runnable on their own too.
from __future__ import annotations

import pathlib
import sys

_COLLECTIONS = pathlib.Path(__file__).resolve().parents[5] / ".ansible" / "collections"
if _COLLECTIONS.is_dir() and str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))
