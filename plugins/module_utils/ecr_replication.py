# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ECR's own replication: the registry's replication configuration and replication backfills.

Plain typed Python in the shape of ``module_utils/ecr.py``: the configuration helpers are pure functions on the
``replicationConfiguration`` dict of ``DescribeRegistry``/``PutReplicationConfiguration``; the API helpers take a
boto3 ECR client, retry throttling and raise :class:`AnsibleECRError`; bad input raises
:class:`~validation.OptionError` before any call that changes something.

A destination is ``{"region": ..., "registryId": ...}``. A rule replicates the repositories matched by its
``PREFIX_MATCH`` filters (every repository when it has none) to each of its destinations. ECR's limits: 10 rules,
25 unique destinations over all rules, 100 filters per rule. A backfill copies, server-side, every existing image
that the configuration covers for one destination; one can be in progress per destination region, 10 per registry.
"""

from __future__ import annotations

import copy
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Tuple

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import ECR_THROTTLING_CODES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import AnsibleECRError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import ECRErrorHandler
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import _registry
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import ecr_retry
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.iam_policies import validate_repository_prefixes
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_account_id
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_region

# ECR quotas of the replication configuration (user guide, "Private registry settings").
MAX_RULES = 10
MAX_DESTINATIONS = 25
MAX_FILTERS_PER_RULE = 100
MIN_FILTER_LENGTH = 2  # RepositoryFilterValue: 2 to 256 characters
MAX_BACKFILLS_IN_PROGRESS = 10
FILTER_TYPE = "PREFIX_MATCH"

BACKFILL_RESULTS_PAGE_SIZE = 1000  # DescribeReplicationBackfillResults: maxResults 1..1000
LIST_BACKFILLS_PAGE_SIZE = 50  # ListReplicationBackfills: maxResults 1..50
BACKFILL_ACTIVE = frozenset(("PREPARING", "IN_PROGRESS", "STOPPING"))
BACKFILL_TERMINAL = frozenset(("COMPLETE", "FAILED", "STOPPED"))
# StopReplicationBackfill is accepted in these states only.
BACKFILL_STOPPABLE = frozenset(("PREPARING", "IN_PROGRESS"))

Configuration = Dict[str, Any]
Destination = Dict[str, str]

# For StartReplicationBackfill, LimitExceededException is the 10-backfills-per-registry quota, not throttling:
# retrying it for minutes would hide the real answer, so the backfill calls retry only the throttling codes.
_BACKFILL_THROTTLING_CODES = [code for code in ECR_THROTTLING_CODES if code != "LimitExceededException"]


def backfill_retry():
    """``AWSRetry.jittered_backoff`` for the backfill calls: ECR's throttling codes without LimitExceeded."""
    return AWSRetry.jittered_backoff(catch_extra_error_codes=_BACKFILL_THROTTLING_CODES)


# --------------------------------------------------------------------------------------------------------------
# The replication configuration (pure functions)


def destination(region: Any, registry_id: Any, option_prefix: str = "destination_") -> Destination:
    """A validated destination; errors name ``<option_prefix>region`` / ``<option_prefix>registry_id``."""
    return {
        "region": validate_region(region, f"{option_prefix}region"),
        "registryId": validate_account_id(registry_id, f"{option_prefix}registry_id"),
    }


def validate_prefixes(prefixes: Any, option: str = "repository_prefixes") -> List[str]:
    """Repository name prefixes for ``PREFIX_MATCH`` filters: sorted, without those a shorter one covers.

    An empty list means every repository (a rule without filters). ``*`` is refused: ECR's filters are prefixes,
    not globs, and a rule for everything is asked for with an empty list."""
    if prefixes is None or prefixes == []:
        return []
    result = validate_repository_prefixes(prefixes, False, option)
    for prefix in result:
        if len(prefix) < MIN_FILTER_LENGTH:
            raise OptionError(option, f"{prefix!r}: ECR's repository filters are {MIN_FILTER_LENGTH} to 256 characters")
    return result


def normalize_configuration(configuration: Optional[Configuration]) -> Configuration:
    """``{"rules": [...]}`` with every rule's lists in a stable order (for comparisons and diffs).

    The order of the rules is kept: ECR keeps it, and it is what a person reads."""
    rules = []
    for rule in (configuration or {}).get("rules") or []:
        normal: Dict[str, Any] = {
            "destinations": sorted(
                ({"region": d["region"], "registryId": d["registryId"]} for d in rule.get("destinations") or []),
                key=lambda d: (d["region"], d["registryId"]),
            )
        }
        filters = rule.get("repositoryFilters") or []
        if filters:
            normal["repositoryFilters"] = sorted(
                ({"filter": f["filter"], "filterType": f.get("filterType", FILTER_TYPE)} for f in filters),
                key=lambda f: (f["filter"], f["filterType"]),
            )
        if "deleteReplication" in rule:
            normal["deleteReplication"] = dict(rule["deleteReplication"])
        rules.append(normal)
    return {"rules": rules}


def configurations_equal(a: Optional[Configuration], b: Optional[Configuration]) -> bool:
    return normalize_configuration(a) == normalize_configuration(b)


def _same(a: Destination, b: Destination) -> bool:
    return a["region"] == b["region"] and a["registryId"] == b["registryId"]


def _has(rule: Dict[str, Any], dest: Destination) -> bool:
    return any(_same(d, dest) for d in rule.get("destinations") or [])


def _filters(rule: Dict[str, Any]) -> List[str]:
    return [f["filter"] for f in rule.get("repositoryFilters") or [] if f.get("filterType", FILTER_TYPE) == FILTER_TYPE]


def _own_rule_index(rules: List[Dict[str, Any]], dest: Destination) -> Optional[int]:
    """The first rule that replicates to ``dest`` only and has filters: the one this collection edits.

    Rules shared with other destinations, and rules for every repository, belong to whoever wrote them; editing
    them would change what other destinations receive."""
    for index, rule in enumerate(rules):
        destinations = rule.get("destinations") or []
        if len(destinations) == 1 and _same(destinations[0], dest) and _filters(rule):
            return index
    return None


def _covered_by(
    configuration: Optional[Configuration], dest: Destination, repository: str
) -> Optional[Tuple[int, str]]:
    """(rule index, matching filter or "" for a rule without filters) of the first rule that replicates
    ``repository`` (a name or a prefix) to ``dest``; None when none does."""
    for index, rule in enumerate((configuration or {}).get("rules") or []):
        if not _has(rule, dest):
            continue
        if not rule.get("repositoryFilters"):
            return index, ""
        for prefix in _filters(rule):
            if repository.startswith(prefix):
                return index, prefix
    return None


def merge_destination(
    configuration: Optional[Configuration], dest: Destination, prefixes: Iterable[str]
) -> Configuration:
    """The configuration with ``dest`` replicating every repository under ``prefixes`` (all when empty).

    Prefixes some rule already replicates to ``dest`` add nothing; the others go into the destination's own rule
    (a rule for ``dest`` alone), which is created at the end when there is none. Every other rule is untouched.
    The result is validated (:func:`validate_configuration`)."""
    result = copy.deepcopy(normalize_configuration(configuration))
    rules = result["rules"]
    prefixes = list(prefixes)
    if not prefixes:
        if not any(_has(rule, dest) and not rule.get("repositoryFilters") for rule in rules):
            own = _own_rule_index(rules, dest)
            if own is not None:
                rules[own].pop("repositoryFilters", None)
            else:
                rules.append({"destinations": [dict(dest)]})
    else:
        missing = [p for p in prefixes if _covered_by(result, dest, p) is None]
        if missing:
            own = _own_rule_index(rules, dest)
            if own is None:
                rules.append({"destinations": [dict(dest)], "repositoryFilters": []})
                own = len(rules) - 1
            filters = rules[own].setdefault("repositoryFilters", [])
            filters.extend({"filter": p, "filterType": FILTER_TYPE} for p in missing)
    result = normalize_configuration(result)
    validate_configuration(result)
    return result


def remove_destination(
    configuration: Optional[Configuration], dest: Destination, prefixes: Iterable[str] = ()
) -> Configuration:
    """The configuration without replication of ``prefixes`` to ``dest``, or without ``dest`` at all.

    With prefixes: those filters leave the rules that replicate to ``dest`` alone (a rule left without filters is
    removed, never turned into a rule for every repository); rules shared with other destinations are untouched.
    Without prefixes: ``dest`` leaves every rule, and rules left without a destination are removed."""
    result = copy.deepcopy(normalize_configuration(configuration))
    prefixes = set(prefixes)
    kept = []
    for rule in result["rules"]:
        destinations = rule["destinations"]
        if not _has(rule, dest):
            kept.append(rule)
        elif not prefixes:
            rule["destinations"] = [d for d in destinations if not _same(d, dest)]
            if rule["destinations"]:
                kept.append(rule)
        elif len(destinations) == 1 and rule.get("repositoryFilters"):
            rule["repositoryFilters"] = [f for f in rule["repositoryFilters"] if f["filter"] not in prefixes]
            if rule["repositoryFilters"]:
                kept.append(rule)
        else:
            kept.append(rule)
    result["rules"] = kept
    validate_configuration(result)
    return result


def destination_prefixes(configuration: Optional[Configuration], dest: Destination) -> Optional[List[str]]:
    """The prefixes replicated to ``dest`` (sorted), ``[]`` when none, None when every repository is."""
    prefixes = set()
    for rule in (configuration or {}).get("rules") or []:
        if not _has(rule, dest):
            continue
        if not rule.get("repositoryFilters"):
            return None
        prefixes.update(_filters(rule))
    return sorted(prefixes)


def validate_configuration(
    configuration: Configuration,
    source_region: Optional[str] = None,
    source_registry_id: Optional[str] = None,
    option: str = "repository_prefixes",
    destination_option: str = "destination_region",
) -> None:
    """Raise :class:`OptionError` when ECR would refuse the configuration: more than 10 rules, 25 unique
    destinations or 100 filters in a rule, a filter that is not a prefix, a rule without destination, or (when the
    source is given) a destination that is the source registry itself."""
    rules = configuration.get("rules") or []
    if len(rules) > MAX_RULES:
        raise OptionError(
            option,
            f"the replication configuration would have {len(rules)} rules; ECR allows {MAX_RULES} "
            "(add the prefixes to an existing rule of this destination, or remove a rule first)",
        )
    unique = {(d["region"], d["registryId"]) for rule in rules for d in rule.get("destinations") or []}
    if len(unique) > MAX_DESTINATIONS:
        raise OptionError(
            destination_option,
            f"the replication configuration would have {len(unique)} destinations; ECR allows {MAX_DESTINATIONS}",
        )
    for index, rule in enumerate(rules):
        if not rule.get("destinations"):
            raise OptionError(destination_option, f"rule {index + 1} has no destination")
        filters = rule.get("repositoryFilters") or []
        if len(filters) > MAX_FILTERS_PER_RULE:
            raise OptionError(
                option,
                f"rule {index + 1} would have {len(filters)} repository filters; ECR allows {MAX_FILTERS_PER_RULE} a "
                "rule (use shorter prefixes that cover several repositories)",
            )
        validate_prefixes([f["filter"] for f in filters], option)
        for dest in rule["destinations"]:
            if (
                source_region
                and source_registry_id
                and (dest["region"], dest["registryId"])
                == (
                    source_region,
                    source_registry_id,
                )
            ):
                raise OptionError(
                    destination_option,
                    f"{source_registry_id} in {source_region} is the source registry; a registry cannot replicate "
                    "into itself",
                )


def coverage(
    configuration: Optional[Configuration], repository_names: Iterable[str], dest_region: str, dest_account: str
) -> Dict[str, Dict[str, Any]]:
    """Per repository: does a rule replicate it to (``dest_region``, ``dest_account``), and if not, why.

    ``{name: {"covered": bool, "rule": index or None, "filter": matching prefix ("" for a rule without filters)
    or None, "reason": str}}``; ``reason`` says which rule covers it, or that there is no rule for this destination,
    or which prefixes the destination's rules have and that none matches."""
    dest = {"region": dest_region, "registryId": dest_account}
    rules_for_dest = [r for r in (configuration or {}).get("rules") or [] if _has(r, dest)]
    known = destination_prefixes(configuration, dest)
    result: Dict[str, Dict[str, Any]] = {}
    for name in repository_names:
        found = _covered_by(configuration, dest, name)
        if found is not None:
            index, prefix = found
            what = f"prefix {prefix!r}" if prefix else "every repository"
            result[name] = {
                "covered": True,
                "rule": index,
                "filter": prefix,
                "reason": f"rule {index + 1} replicates {what} to {dest_account} in {dest_region}",
            }
        elif not rules_for_dest:
            result[name] = {
                "covered": False,
                "rule": None,
                "filter": None,
                "reason": f"no replication rule for {dest_account} in {dest_region}",
            }
        else:
            result[name] = {
                "covered": False,
                "rule": None,
                "filter": None,
                "reason": f"no prefix filter of the rules for {dest_account} in {dest_region} matches "
                f"(prefixes: {', '.join(known or [])})",
            }
    return result


# --------------------------------------------------------------------------------------------------------------
# The registry's replication configuration (API)


@ECRErrorHandler.common_error_handler("describe the registry")
@ecr_retry()
def describe_registry(client) -> Tuple[str, Configuration]:
    """(registry id, replication configuration) of the caller's registry in the client's region."""
    answer = client.describe_registry()
    return answer.get("registryId", ""), answer.get("replicationConfiguration") or {"rules": []}


@ECRErrorHandler.common_error_handler("put the replication configuration")
@ecr_retry()
def put_replication_configuration(client, configuration: Configuration) -> Configuration:
    answer = client.put_replication_configuration(replicationConfiguration=configuration)
    return answer.get("replicationConfiguration") or configuration


@ECRErrorHandler.list_error_handler("describe the replication status of {repository_name}", [])
@ecr_retry()
def image_replication_status(
    client, repository_name: str, image_id: Dict[str, str], registry_id: Optional[str] = None
) -> List[Dict[str, Any]]:
    """``replicationStatuses`` of one image (region, registryId, status, failureCode); [] when it is not there."""
    params: Dict[str, Any] = {"repositoryName": repository_name, "imageId": image_id}
    if registry_id:
        params["registryId"] = registry_id
    return client.describe_image_replication_status(**params).get("replicationStatuses", [])


# --------------------------------------------------------------------------------------------------------------
# Backfills


@backfill_retry()
def _backfill_call(client, operation: str, **params) -> Dict[str, Any]:
    """One backfill API call (``operation``: the client method name), retried on throttling only."""
    return getattr(client, operation)(**params)


@ECRErrorHandler.common_error_handler("list the replication backfills")
@backfill_retry()
def list_backfills(client, registry_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every backfill ECR still reports (terminal ones for 90 days), all pages."""
    paginator = client.get_paginator("list_replication_backfills")
    pages = paginator.paginate(PaginationConfig={"PageSize": LIST_BACKFILLS_PAGE_SIZE}, **_registry(registry_id))
    return pages.build_full_result().get("backfills", [])


def active_backfill(client, dest: Destination, registry_id: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The backfill in PREPARING/IN_PROGRESS/STOPPING for ``dest``, if any."""
    for backfill in list_backfills(client, registry_id):
        if backfill.get("status") in BACKFILL_ACTIVE and _same(backfill["destination"], dest):
            return backfill
    return None


@ECRErrorHandler.common_error_handler("start a replication backfill")
def start_backfill(client, dest: Destination, registry_id: Optional[str] = None) -> Dict[str, Any]:
    """Start a backfill to ``dest``, or attach to the one already running for it.

    Returns ``{"replicationBackfillId", "destination", "status", "startedAt", ..., "attached": bool}``. Raises
    :class:`AnsibleECRError` with a message that says what to do when ECR refuses: 10 backfills already in progress
    in the registry (``LimitExceededException``), or one in progress for another registry in that region (only one
    per destination region)."""
    try:
        answer = _backfill_call(client, "start_replication_backfill", destination=dict(dest), **_registry(registry_id))
    except is_boto3_error_code("ReplicationBackfillInProgressException") as e:
        running = active_backfill(client, dest, registry_id)
        if running is None:
            others = [
                b
                for b in list_backfills(client, registry_id)
                if b.get("status") in BACKFILL_ACTIVE and b["destination"]["region"] == dest["region"]
            ]
            detail = (
                f"backfill {others[0]['replicationBackfillId']} to {others[0]['destination']['registryId']} is in "
                "progress in that region"
                if others
                else "ECR reports one in progress but did not list it"
            )
            raise AnsibleECRError(
                message=f"Cannot start a replication backfill to {dest['registryId']} in {dest['region']}: only one "
                f"can run per destination region at a time ({detail}); wait for it or stop it",
                exception=e,
            ) from e
        return dict(running, attached=True)
    except is_boto3_error_code("LimitExceededException") as e:
        raise AnsibleECRError(
            message=f"Cannot start a replication backfill to {dest['registryId']} in {dest['region']}: the registry "
            f"already has {MAX_BACKFILLS_IN_PROGRESS} backfills in progress (ECR's limit); wait for one to end or "
            "stop one",
            exception=e,
        ) from e
    except (is_boto3_error_code("ValidationException"), is_boto3_error_code("InvalidParameterException")) as e:
        raise AnsibleECRError(
            message=f"ECR refused a replication backfill to {dest['registryId']} in {dest['region']} (is the "
            "destination in the registry's replication configuration?)",
            exception=e,
        ) from e
    answer = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    return dict(answer, attached=False)


@ECRErrorHandler.common_error_handler("describe replication backfill {backfill_id}")
def describe_backfill(
    client,
    backfill_id: str,
    registry_id: Optional[str] = None,
    results: bool = False,
    result_status: Optional[str] = None,
) -> Dict[str, Any]:
    """Status and progress of a backfill; with ``results`` also every per-image result (all pages, which ECR
    gives only once the backfill is terminal; ``result_status``: COMPLETE or FAILED).

    ``{"replicationBackfillId", "destination", "status", "failureCode"?, "progress", "startedAt", "endedAt"?,
    "results": [...]}`` (``results`` empty unless asked for)."""
    params: Dict[str, Any] = dict(replicationBackfillId=backfill_id, **_registry(registry_id))
    if result_status:
        params["resultStatusFilter"] = result_status
    first = _backfill_call(
        client,
        "describe_replication_backfill_results",
        maxResults=BACKFILL_RESULTS_PAGE_SIZE if results else 1,
        **params,
    )
    summary = {k: v for k, v in first.items() if k not in ("results", "nextToken", "ResponseMetadata")}
    summary["results"] = []
    if results:
        summary["results"].extend(first.get("results", []))
        token = first.get("nextToken")
        while token:
            page = _backfill_call(
                client,
                "describe_replication_backfill_results",
                maxResults=BACKFILL_RESULTS_PAGE_SIZE,
                nextToken=token,
                **params,
            )
            summary["results"].extend(page.get("results", []))
            token = page.get("nextToken")
    return summary


@ECRErrorHandler.common_error_handler("stop replication backfill {backfill_id}")
def stop_backfill(client, backfill_id: str, registry_id: Optional[str] = None) -> Dict[str, Any]:
    """Ask ECR to stop a backfill (replications already running finish; what was copied stays).

    Returns its summary; a backfill that has already ended is not an error (its summary is returned as is)."""
    try:
        answer = _backfill_call(
            client, "stop_replication_backfill", replicationBackfillId=backfill_id, **_registry(registry_id)
        )
    except is_boto3_error_code("ReplicationBackfillInvalidStatusException"):
        return describe_backfill(client, backfill_id, registry_id)
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def progress_line(backfill: Dict[str, Any]) -> str:
    """One line a person reads per poll: ``<id> IN_PROGRESS 12/40 replicated, 1 failed (CODE)``."""
    progress = backfill.get("progress") or {}
    line = (
        f"backfill {backfill.get('replicationBackfillId', '?')} to {backfill.get('destination', {}).get('registryId')}"
        f"/{backfill.get('destination', {}).get('region')}: {backfill.get('status')}"
    )
    if progress:
        line += f" {progress.get('completedReplicationCount', 0)}/{progress.get('totalReplicationCount', 0)} replicated"
        if progress.get("failedReplicationCount"):
            line += f", {progress['failedReplicationCount']} failed ({', '.join(progress.get('failureCodes') or [])})"
    if backfill.get("failureCode"):
        line += f" [{backfill['failureCode']}]"
    return line


class BackfillWatcher:
    """Follows one backfill to its end, polling ``DescribeReplicationBackfillResults``.

    ``clock`` (monotonic seconds) and ``sleep`` are injectable, so that tests run without real time. Each poll's
    summary goes to ``on_progress``. On timeout, or when the waiting is interrupted (KeyboardInterrupt, SystemExit:
    Ctrl-C, a killed job), the backfill is stopped, so that nothing keeps copying behind the operator's back; the
    interruption is then raised again."""

    def __init__(
        self,
        client,
        backfill_id: str,
        registry_id: Optional[str] = None,
        poll_interval: float = 15.0,
        timeout: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
        stop_on_timeout: bool = True,
    ) -> None:
        self.client = client
        self.backfill_id = backfill_id
        self.registry_id = registry_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.on_progress = on_progress
        self.stop_on_timeout = stop_on_timeout
        self.polls = 0

    def poll(self) -> Dict[str, Any]:
        self.polls += 1
        summary = describe_backfill(self.client, self.backfill_id, self.registry_id)
        if self.on_progress is not None:
            self.on_progress(summary)
        return summary

    def stop(self) -> Dict[str, Any]:
        return stop_backfill(self.client, self.backfill_id, self.registry_id)

    def wait(self, results: bool = True) -> Dict[str, Any]:
        """Poll until the backfill is terminal or ``timeout`` seconds have passed.

        Returns the last summary plus ``timed_out`` (bool), ``stopped`` (we asked ECR to stop it) and, when
        ``results`` and the backfill ended, its per-image ``results``."""
        deadline = self.clock() + self.timeout
        stopped = False
        try:
            while True:
                summary = self.poll()
                if summary.get("status") in BACKFILL_TERMINAL:
                    break
                remaining = deadline - self.clock()
                if remaining <= 0:
                    if self.stop_on_timeout and summary.get("status") in BACKFILL_STOPPABLE:
                        self.stop()
                        stopped = True
                        summary = describe_backfill(self.client, self.backfill_id, self.registry_id)
                    summary.update(timed_out=True, stopped=stopped)
                    return summary
                self.sleep(min(self.poll_interval, remaining))
        except (KeyboardInterrupt, SystemExit):
            # Stop what we started or attached to, then let the interruption end the run.
            try:
                self.stop()
            except AnsibleECRError:
                pass  # the interruption is what the caller must see; the backfill may already have ended
            raise
        if results:
            summary = describe_backfill(self.client, self.backfill_id, self.registry_id, results=True)
            if self.on_progress is not None:
                self.on_progress(summary)
        summary.update(timed_out=False, stopped=stopped)
        return summary
