# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``RESULT {json}`` line ``buildspec.yml`` prints once per image, and reading it back from build logs.

Format: one line, ``RESULT `` then a JSON object with ``repository``, ``digest``, ``tags``, ``status``
(``copied`` | ``present`` | ``tag_conflict`` | ``failed``), ``bytes``, ``seconds``, ``error`` and optionally
``tags_applied``, ``conflicts`` (tag -> destination digest), ``attempts``. The emitter is inlined into
``buildspec.yml``; the parser is used by ``codebuild_replicate``.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Tuple

# bundle:start results
import json

RESULT_PREFIX = "RESULT "
STATUSES = ("copied", "present", "tag_conflict", "failed")


def format_result(result):
    """One log line; JSON without newlines so a log line is always a whole result."""
    return RESULT_PREFIX + json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)


# bundle:end results

REQUIRED = ("repository", "digest", "status")


def parse_line(line: str) -> Optional[Dict[str, Any]]:
    """The result in one log line, or None. Leading text (timestamps, CodeBuild prefixes) is ignored."""
    if not isinstance(line, str):
        return None
    pos = line.find(RESULT_PREFIX + "{")
    if pos < 0 or (pos > 0 and not line[pos - 1].isspace()):
        return None
    text = line[pos + len(RESULT_PREFIX) :].strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or any(not isinstance(data.get(k), str) for k in REQUIRED):
        return None
    if data["status"] not in STATUSES:
        return None
    data.setdefault("tags", [])
    data.setdefault("bytes", 0)
    data.setdefault("seconds", 0)
    data.setdefault("error", None)
    return data


def parse_lines(lines: Iterable[str]) -> List[Dict[str, Any]]:
    """Every result in a log, in order. Multi-line chunks (CloudWatch events can hold several lines) are split."""
    results = []
    for chunk in lines:
        for line in (chunk or "").splitlines():
            parsed = parse_line(line)
            if parsed is not None:
                results.append(parsed)
    return results


def latest_by_image(results: Iterable[Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """{(repository, digest): last result} — a retried build overrides the earlier attempt."""
    by_image: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for result in results:
        by_image[(result["repository"], result["digest"])] = result
    return by_image


def complete_results(
    planned: Iterable[Dict[str, Any]], reported: Dict[Tuple[str, str], Dict[str, Any]], missing_reason: str
) -> List[Dict[str, Any]]:
    """One result per planned image: the reported one, or ``failed`` with ``missing_reason``."""
    results = []
    for image in planned:
        key = (image["repository"], image["digest"])
        result = reported.get(key)
        if result is None:
            result = {
                "repository": image["repository"],
                "digest": image["digest"],
                "tags": list(image.get("tags") or []),
                "status": "failed",
                "bytes": 0,
                "seconds": 0,
                "error": missing_reason,
            }
        results.append(result)
    return results


def summarize(results: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """Counts per status, bytes copied, and the failed images with their errors."""
    summary: Dict[str, Any] = {status: 0 for status in STATUSES}
    summary.update({"images": 0, "bytes_copied": 0, "failures": []})
    for result in results:
        summary["images"] += 1
        summary[result["status"]] = summary.get(result["status"], 0) + 1
        if result["status"] == "copied":
            summary["bytes_copied"] += int(result.get("bytes") or 0)
        if result["status"] == "failed":
            summary["failures"].append(
                {"repository": result["repository"], "digest": result["digest"], "error": result.get("error")}
            )
    return summary
