# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The "report" step of the flow: one outcome per image and destination, as JSON, Markdown and a summary.

Plain Python (no Ansible, no boto3), so it is unit-testable on its own. The inputs are what the other steps
return, unchanged:

- ``planned``: the ``images`` list of ``ecr_image_info`` with ``compare_to`` *before* the copy (each image has
  ``repository``, ``digest``, ``tags``, ``size_bytes`` and ``destination_status``);
- ``results``: the per-image ``results`` of ``codebuild_replicate`` (``repository``, ``digest``, ``status``
  ``copied|present|tag_conflict|failed``, ``error``, ``seconds``, ...);
- ``verified``: the ``images`` list of ``ecr_image_info`` with ``compare_to`` *after* the copy.

An image is only ever reported ``copied`` when the verification listing shows it ``present`` in the destination
(same digest, every tag): a build that says it copied an image is not enough.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.image_catalog import needs_copy

SCHEMA_VERSION = 1

# destination_status values of ecr_image_info
STATUS_PRESENT = "present"
STATUS_MISSING = "missing"
STATUS_MISSING_TAGS = "missing_tags"
STATUS_TAG_CONFLICT = "tag_conflict"

# outcomes, in the order they are shown
OUTCOME_COPIED = "copied"
OUTCOME_PRESENT = "present"
OUTCOME_PLANNED = "planned"
OUTCOME_TAG_CONFLICT = "tag_conflict"
OUTCOME_FAILED = "failed"
OUTCOMES = (OUTCOME_COPIED, OUTCOME_PRESENT, OUTCOME_PLANNED, OUTCOME_TAG_CONFLICT, OUTCOME_FAILED)

_OUTCOME_TITLES = {
    OUTCOME_COPIED: "Copied",
    OUTCOME_PRESENT: "Already present",
    OUTCOME_PLANNED: "Would copy",
    OUTCOME_TAG_CONFLICT: "Tag conflicts",
    OUTCOME_FAILED: "Failed",
}


class ReportError(ValueError):
    """Bad input for a report (the message names the offending field)."""


def image_key(image: Mapping[str, Any]) -> tuple[str, str]:
    """The identity of an image: (repository, digest)."""
    try:
        return str(image["repository"]), str(image["digest"])
    except KeyError as e:
        raise ReportError(f"image entry without {e.args[0]!r}: {dict(image)!r}") from None


def _index(images: Iterable[Mapping[str, Any]] | None, what: str) -> dict[tuple[str, str], Mapping[str, Any]]:
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for image in images or ():
        if not isinstance(image, Mapping):
            raise ReportError(f"{what}: expected a list of dicts, got an item of type {type(image).__name__}")
        out[image_key(image)] = image
    return out


def _tags(image: Mapping[str, Any] | None) -> list[str]:
    return sorted(str(t) for t in (image or {}).get("tags") or ())


def _size(image: Mapping[str, Any]) -> int:
    for key in ("size_bytes", "image_size_in_bytes", "bytes"):
        value = image.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def _missing_tags(planned: Mapping[str, Any], verified: Mapping[str, Any] | None) -> list[str]:
    """Tags that the verification listing still reports missing or conflicting for this image."""
    if verified is None:
        return _tags(planned)
    return _tag_names(verified, "missing_tags", "conflicting_tags", "tag_conflicts")


def _tag_names(image: Mapping[str, Any], *keys: str) -> list[str]:
    """Tag names listed under any of ``keys`` (plain strings or dicts with a ``tag`` key)."""
    names: set[str] = set()
    for key in keys:
        for item in image.get(key) or ():
            names.add(str(item.get("tag")) if isinstance(item, Mapping) else str(item))
    return sorted(names)


def image_outcome(
    planned: Mapping[str, Any],
    result: Mapping[str, Any] | None,
    verified: Mapping[str, Any] | None,
    *,
    dry_run: bool,
    force_tags: bool = False,
    verification_ran: bool = True,
    destination_error: str | None = None,
) -> dict[str, Any]:
    """The outcome of one image for one destination, with a reason when it is not plainly ok."""
    repository, digest = image_key(planned)
    before = str(planned.get("destination_status", STATUS_MISSING))
    entry: dict[str, Any] = {
        "repository": repository,
        "digest": digest,
        "tags": _tags(planned),
        "size_bytes": _size(planned),
        "status_before": before,
        "status_after": None,
        "outcome": None,
        "reason": None,
        "build_id": (result or {}).get("build_id"),
        "seconds": (result or {}).get("seconds"),
    }
    if verified is not None:
        entry["status_after"] = str(verified.get("destination_status", STATUS_MISSING))

    if not needs_copy(planned, force_tags):
        if before == STATUS_PRESENT:
            entry["outcome"] = OUTCOME_PRESENT
        elif (result or {}).get("status") == "failed":  # the copy also tried the other tags, and failed
            entry["outcome"] = OUTCOME_FAILED
            entry["reason"] = str(result.get("error") or "copy failed")
        else:  # a tag conflict nobody asked us to overwrite
            entry["outcome"] = OUTCOME_TAG_CONFLICT
            entry["reason"] = _conflict_reason(planned)
        return entry

    if dry_run:
        entry["outcome"] = OUTCOME_PLANNED
        entry["reason"] = f"destination status {before}"
        return entry

    result_status = str((result or {}).get("status") or "")
    result_error = (result or {}).get("error")
    if verified is not None and entry["status_after"] == STATUS_PRESENT:
        entry["outcome"] = OUTCOME_COPIED
        if force_tags and planned.get("conflicting_tags"):
            # what force_tags overwrote, so that it can be put back: the digest each tag named before this run
            entry["moved_tags"] = [
                {"tag": str(c["tag"]), "previous_digest": str(c["destination_digest"])}
                for c in planned["conflicting_tags"]
                if isinstance(c, Mapping) and c.get("tag") and c.get("destination_digest")
            ]
        return entry
    if result_status == STATUS_TAG_CONFLICT or (
        not force_tags and entry["status_after"] == STATUS_TAG_CONFLICT and result_status != "failed"
    ):
        entry["outcome"] = OUTCOME_TAG_CONFLICT
        entry["reason"] = str(result_error) if result_error else _conflict_reason(verified or planned)
        return entry

    entry["outcome"] = OUTCOME_FAILED
    if result_error:
        entry["reason"] = str(result_error)
    elif result is None and destination_error and not verification_ran:
        entry["reason"] = f"not copied: {destination_error}"
    elif not verification_ran:
        entry["reason"] = "not verified: the verification listing did not run"
    elif verified is None:
        entry["reason"] = "not verified: image not found in the verification listing of the source"
    elif result is None and destination_error:
        entry["reason"] = f"not copied ({destination_error}); the destination status is {entry['status_after']}"
    elif result is None:
        entry["reason"] = f"the copy reported no result; the destination status is {entry['status_after']}"
    else:
        reported = f"the copy reported {result_status or 'nothing'}"
        missing = _missing_tags(planned, verified)
        if entry["status_after"] == STATUS_MISSING:
            entry["reason"] = f"{reported}, but the digest is not in the destination"
        elif entry["status_after"] == STATUS_MISSING_TAGS and missing:
            entry["reason"] = f"{reported}, but tags are missing in the destination: {', '.join(missing)}"
        else:
            entry["reason"] = f"{reported}, but the destination status is {entry['status_after']}"
    return entry


def _conflict_reason(image: Mapping[str, Any]) -> str:
    conflicts = _tag_names(image, "conflicting_tags", "tag_conflicts")
    which = f" ({', '.join(conflicts)})" if conflicts else ""
    return f"a destination tag points to another digest{which}; not overwritten (set force_tags to overwrite)"


def _empty_counts() -> dict[str, int]:
    counts = {outcome: 0 for outcome in OUTCOMES}
    counts.update(images=0, bytes_copied=0, bytes_planned=0)
    return counts


def _count(counts: dict[str, int], entry: Mapping[str, Any]) -> None:
    counts["images"] += 1
    counts[entry["outcome"]] += 1
    if entry["outcome"] == OUTCOME_COPIED:
        counts["bytes_copied"] += entry["size_bytes"]
    elif entry["outcome"] == OUTCOME_PLANNED:
        counts["bytes_planned"] += entry["size_bytes"]


def destination_report(
    destination: Mapping[str, Any], *, dry_run: bool, force_tags: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One destination's summary and its image entries.

    ``destination`` holds ``region``, ``account``, optional ``role_arn``, ``planned``, ``results``, ``verified``
    (``None`` when the verification did not run), ``builds`` and ``error`` (an execute-step failure message).
    """
    region = destination.get("region")
    if not region:
        raise ReportError("destinations: every destination needs a region")
    planned = destination.get("planned")
    if planned is None:
        raise ReportError(f"destinations[{region}]: 'planned' (the facts images before the copy) is required")
    results = _index(destination.get("results"), f"destinations[{region}].results")
    verification_ran = destination.get("verified") is not None
    verified = _index(destination.get("verified"), f"destinations[{region}].verified")
    planned_index = _index(planned, f"destinations[{region}].planned")

    entries: list[dict[str, Any]] = []
    for key in sorted(planned_index):
        entry = image_outcome(
            planned_index[key],
            results.get(key),
            verified.get(key),
            dry_run=dry_run,
            force_tags=force_tags,
            verification_ran=verification_ran,
            destination_error=destination.get("error") or None,
        )
        entry["destination_region"] = str(region)
        entry["destination_account"] = str(destination.get("account") or "")
        entries.append(entry)

    counts = _empty_counts()
    repositories: dict[str, dict[str, int]] = {}
    for entry in entries:
        _count(counts, entry)
        _count(repositories.setdefault(entry["repository"], _empty_counts()), entry)
    builds = [_build_entry(b) for b in destination.get("builds") or ()]
    summary = {
        "region": str(region),
        "account": str(destination.get("account") or ""),
        "role_arn": destination.get("role_arn") or None,
        "repositories": len(repositories),
        # CodeBuild builds or local runs; ECR replication backfills are counted apart (they cost no build)
        "builds": sum(1 for b in builds if b.get("path") != "backfill"),
        "backfills": sum(1 for b in builds if b.get("path") == "backfill"),
        "error": destination.get("error") or None,
        **counts,
    }
    # strategy backfill/auto: per repository, ECR's own replication or a copy, and why
    paths = {name: dict(value) for name, value in (destination.get("paths") or {}).items()}
    return {"summary": summary, "builds": builds, "repositories": repositories, "paths": paths}, entries


def _build_entry(build: Mapping[str, Any]) -> dict[str, Any]:
    # error and round: why a build failed stays in the report after a later round copied its images
    keys = ("id", "status", "images", "round", "error", "duration_seconds", "log_link", "logs_url", "path")
    return {k: build.get(k) for k in keys if build.get(k) is not None}


def build_report(
    *,
    source: Mapping[str, Any],
    destinations: Sequence[Mapping[str, Any]],
    strategy: str,
    dry_run: bool,
    force_tags: bool = False,
    started_at: str | None = None,
    finished_at: str | None = None,
) -> dict[str, Any]:
    """The whole report: per-destination summaries, one entry per image and destination, and the totals."""
    if not destinations:
        raise ReportError("destinations: at least one destination is required")
    now = _utcnow()
    dest_reports: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for destination in destinations:
        dest_report, entries = destination_report(destination, dry_run=dry_run, force_tags=force_tags)
        dest_reports.append(dest_report)
        images.extend(entries)
    report = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": now,
        "started_at": started_at,
        "finished_at": finished_at or now,
        "dry_run": bool(dry_run),
        "strategy": strategy,
        "force_tags": bool(force_tags),
        "source": {"region": source.get("region"), "account": source.get("account")},
        "destinations": dest_reports,
        "images": images,
    }
    report["summary"] = summarize(report)
    return report


def summarize(report: Mapping[str, Any]) -> dict[str, Any]:
    """Totals over every destination: what ``set_stats`` publishes and what the role prints."""
    totals = _empty_counts()
    builds = backfills = 0
    repositories: set[str] = set()
    errors: list[str] = []
    for dest in report["destinations"]:
        summary = dest["summary"]
        for key in totals:
            totals[key] += summary[key]
        builds += summary["builds"]
        backfills += summary["backfills"]
        repositories.update(dest["repositories"])
        if summary.get("error"):
            errors.append(f"{summary['account']}/{summary['region']}: {summary['error']}")
    return {
        "dry_run": bool(report["dry_run"]),
        "strategy": report["strategy"],
        "source_region": report["source"]["region"],
        "source_account": report["source"]["account"],
        "destinations": [f"{d['summary']['account']}/{d['summary']['region']}" for d in report["destinations"]],
        "repositories": len(repositories),
        "builds": builds,
        "backfills": backfills,
        **totals,
        "errors": errors,
        "success": totals[OUTCOME_FAILED] == 0 and not errors,
    }


def failures(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The image entries that failed, for a final error message."""
    return [image for image in report["images"] if image["outcome"] == OUTCOME_FAILED]


def failure_messages(report: Mapping[str, Any]) -> list[str]:
    """One line per failed image: ``<account>/<region> <repository>@<digest>: <reason>``."""
    return [
        f"{i['destination_account']}/{i['destination_region']} {i['repository']}@{i['digest']}: {i['reason']}"
        for i in failures(report)
    ]


# ---------------------------------------------------------------------------------------------------------------
# rendering


def human_bytes(value: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _cell(value: Any) -> str:
    """A Markdown table cell: no newlines, pipes escaped."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return lines


def _short_digest(digest: str) -> str:
    algo, sep, hexpart = digest.partition(":")
    return f"{algo}{sep}{hexpart[:12]}" if hexpart else digest


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report a person reads: summary table, failures with reasons, tag conflicts, per-repository counts."""
    summary = report["summary"]
    source = report["source"]
    title = "ECR replication plan (dry run)" if report["dry_run"] else "ECR replication report"
    lines = [
        f"# {title}",
        "",
        f"- Source: account `{source.get('account')}`, region `{source.get('region')}`",
        f"- Strategy: `{report['strategy']}`" + (", tags forced" if report.get("force_tags") else ""),
        f"- Started: {report.get('started_at') or 'n/a'}; finished: {report.get('finished_at') or 'n/a'}",
        f"- Result: **{_verdict(summary)}**",
        "",
        "## Summary",
        "",
    ]
    header = ["Destination", "Repositories", "Images"] + [_OUTCOME_TITLES[o] for o in OUTCOMES]
    header += ["Bytes copied", "Bytes to copy", "Builds"]
    rows = []
    for dest in report["destinations"]:
        s = dest["summary"]
        rows.append(_summary_row(f"{s['account']} / {s['region']}", s))
    rows.append(_summary_row("**Total**", summary))
    lines += _table(header, rows)

    errors = summary.get("errors") or []
    if errors:
        lines += ["", "## Errors", ""] + [f"- {_cell(e)}" for e in errors]

    failed = [i for i in report["images"] if i["outcome"] == OUTCOME_FAILED]
    lines += ["", "## Failures", ""]
    if failed:
        lines += _table(["Destination", "Repository", "Digest", "Tags", "Reason"], (_image_row(i) for i in failed))
    else:
        lines.append("None.")

    conflicts = [i for i in report["images"] if i["outcome"] == OUTCOME_TAG_CONFLICT]
    if conflicts:
        lines += ["", "## Tag conflicts (not overwritten)", ""]
        lines += _table(["Destination", "Repository", "Digest", "Tags", "Reason"], (_image_row(i) for i in conflicts))

    moved = [(i, m) for i in report["images"] for m in i.get("moved_tags") or ()]
    if moved:
        lines += ["", "## Tags moved (force_tags): the digest each named before", ""]
        lines += _table(
            ["Destination", "Repository", "Tag", "Previous digest", "Now"],
            (
                [f"{i['destination_account']}/{i['destination_region']}", i["repository"], m["tag"],
                 m["previous_digest"], i["digest"]]
                for i, m in moved
            ),
        )

    lines += ["", "## Per repository", ""]
    with_paths = any(dest.get("paths") for dest in report["destinations"])
    repo_header = ["Destination", "Repository", "Images"] + [_OUTCOME_TITLES[o] for o in OUTCOMES]
    repo_header += ["Path", "Why"] if with_paths else []
    repo_rows = []
    for dest in report["destinations"]:
        s = dest["summary"]
        for name in sorted(dest["repositories"]):
            counts = dest["repositories"][name]
            path = (dest.get("paths") or {}).get(name) or {}
            repo_rows.append(
                [f"{s['account']} / {s['region']}", name, counts["images"]] + [counts[o] for o in OUTCOMES]
                + ([path.get("path") or "copy", path.get("reason") or ""] if with_paths else [])
            )
    if repo_rows:
        lines += _table(repo_header, repo_rows)
    else:
        lines.append("No images matched the filters.")

    builds = [(dest["summary"], b) for dest in report["destinations"] for b in dest["builds"]]
    if builds:
        lines += ["", "## Builds", ""]
        lines += _table(
            ["Destination", "Build", "Round", "Status", "Images", "Seconds", "Error", "Logs"],
            (
                [
                    f"{s['account']} / {s['region']}",
                    b.get("id"),
                    b.get("round"),
                    b.get("status"),
                    _count_images(b.get("images")),
                    b.get("duration_seconds"),
                    b.get("error"),
                    b.get("log_link") or b.get("logs_url"),
                ]
                for s, b in builds
            ),
        )
    return "\n".join(lines) + "\n"


def _count_images(images: Any) -> Any:
    return len(images) if isinstance(images, (list, tuple)) else images


def _verdict(summary: Mapping[str, Any]) -> str:
    if summary["dry_run"]:
        return f"dry run: {summary[OUTCOME_PLANNED]} image(s) to copy, nothing changed"
    if summary["success"]:
        return "success"
    return f"{summary[OUTCOME_FAILED]} image(s) failed" + ("; errors below" if summary.get("errors") else "")


def _summary_row(label: str, s: Mapping[str, Any]) -> list[Any]:
    return (
        [label, s["repositories"], s["images"]]
        + [s[o] for o in OUTCOMES]
        + [human_bytes(s["bytes_copied"]), human_bytes(s["bytes_planned"]), s["builds"]]
    )


def _image_row(image: Mapping[str, Any]) -> list[Any]:
    return [
        f"{image['destination_account']} / {image['destination_region']}",
        image["repository"],
        f"`{_short_digest(image['digest'])}`",
        ", ".join(image["tags"]) or "(untagged)",
        image.get("reason"),
    ]


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# files


def report_paths(directory: str, name: str) -> tuple[str, str]:
    """Where the JSON and the Markdown file go."""
    if not name or os.sep in name or name in (".", ".."):
        raise ReportError(f"name: must be a plain file name without extension, got {name!r}")
    base = os.path.join(os.path.abspath(os.path.expanduser(directory)), name)
    return base + ".json", base + ".md"


def differs(path: str, content: str) -> bool:
    """Whether writing ``content`` to ``path`` would change the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() != content
    except FileNotFoundError:
        return True


def write_if_changed(path: str, content: str) -> bool:
    """Write ``content`` atomically (temp file + rename in the same directory); return whether it changed."""
    if not differs(path, content):
        return False
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".report-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def write_report(report_dir: str, name: str, report: Mapping[str, Any]) -> tuple[str, str, bool]:
    """Write the JSON and Markdown files (directory created); returns their paths and whether either changed."""
    json_path, md_path = report_paths(report_dir, name)
    os.makedirs(os.path.dirname(json_path), mode=0o755, exist_ok=True)
    changed = write_if_changed(json_path, render_json(report))
    changed = write_if_changed(md_path, render_markdown(report)) or changed
    return json_path, md_path, changed


def _utcnow() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
