#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecr_replication_backfill
version_added: 0.1.0
short_description: Copy existing Amazon ECR images to a replication destination with a replication backfill
description:
  - Starts an ECR replication backfill (C(StartReplicationBackfill)) to one destination of the registry's replication
    configuration, or attaches to the one already in progress for that destination (one being stopped is waited for,
    then a new one starts); ECR then copies, server-side and
    without any build, every existing image that the configuration's rules cover for that destination, with its
    digest and tags.
  - Waits for its end (O(wait)), and returns its progress and per-image results. A backfill that ends C(FAILED) or
    C(STOPPED), or with failed replications, fails the task with the failure codes.
  - When O(wait_timeout) passes, or the run is interrupted, the backfill is stopped (C(StopReplicationBackfill));
    what was copied stays, nothing keeps copying unobserved.
  - The destination must be in the registry's replication configuration
    (M(cloudops.ecr_replication.ecr_replication_configuration)); this is checked first, and the repositories the
    backfill will cover are returned. ECR runs one backfill per destination region and 10 per registry at a time.
  - Source tags are never deleted or moved.
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  destination_region:
    description: The region of the destination.
    type: str
    required: true
  destination_registry_id:
    description: The account id of the destination registry.
    type: str
    required: true
  state:
    description:
      - V(present) starts a backfill (or attaches to the running one); V(absent) stops the one in progress for the
        destination, if any.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Wait for the backfill to end (O(state=present)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before stopping the backfill and failing.
    type: int
    default: 3600
  poll_interval:
    description: Seconds between two progress polls.
    type: int
    default: 15
  results:
    description: Return the per-image results once the backfill has ended (every page).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details:
      - Checks the destination and lists the repositories the backfill would cover; starts or stops nothing.
  diff_mode:
    support: none
extends_documentation_fragment:
  - cloudops.ecr_replication.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Copy every image the replication rules cover to Seoul, and wait
  cloudops.ecr_replication.ecr_replication_backfill:
    region: ap-south-1
    destination_region: ap-northeast-2
    destination_registry_id: "222222222222"
    wait_timeout: 7200
  register: backfill

- name: Stop the backfill to Seoul
  cloudops.ecr_replication.ecr_replication_backfill:
    region: ap-south-1
    destination_region: ap-northeast-2
    destination_registry_id: "222222222222"
    state: absent
"""

RETURN = r"""
backfill:
  description: The backfill's last known state (none in check mode or when there was nothing to stop).
  returned: when there is one
  type: dict
  contains:
    replication_backfill_id:
      description: Its id.
      type: str
      sample: 0f6c6c1e-8f1b-4b55-9a39-2b7c0c0f5a01
    status:
      description: PREPARING, IN_PROGRESS, COMPLETE, FAILED, STOPPING or STOPPED.
      type: str
      sample: COMPLETE
    failure_code:
      description: Why the backfill failed.
      type: str
      returned: when it failed
    progress:
      description: Total, completed and failed replications (one per image and tag), distinct failure codes.
      type: dict
      sample: {total_replication_count: 40, completed_replication_count: 40, failed_replication_count: 0,
               failure_codes: []}
attached:
  description: The backfill was already in progress for this destination (not started by this task).
  returned: when O(state=present) and not in check mode
  type: bool
timed_out:
  description: O(wait_timeout) passed; the backfill was stopped.
  returned: when waited
  type: bool
results:
  description: Per-image results (repository, image id, status COMPLETE or FAILED, failure code).
  returned: when waited and O(results)
  type: list
  elements: dict
  sample:
    - repository_name: team-a/api
      image_id: {image_digest: "sha256:4f...", image_tag: "1.0"}
      status: COMPLETE
polls:
  description: How many times the progress was read while waiting.
  returned: when waited
  type: int
  sample: 12
covered_repositories:
  description: The source repositories a rule replicates to the destination (the backfill's scope).
  returned: always
  type: list
  elements: str
  sample: [team-a/api, team-a/web]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication as er
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import AnsibleECRError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import describe_repositories
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_int


def _snake(value):
    return camel_dict_to_snake_dict(value) if value else value


def _failure_message(outcome):
    progress = outcome.get("progress") or {}
    codes = sorted(
        set(progress.get("failureCodes") or []) | ({outcome["failureCode"]} if outcome.get("failureCode") else set())
    )
    if outcome.get("timed_out"):
        return "wait_timeout: backfill %s did not end in time and was stopped (%s)" % (
            outcome.get("replicationBackfillId"),
            er.progress_line(outcome),
        )
    if outcome.get("status") != "COMPLETE":
        return "backfill %s ended %s (failure codes: %s)" % (
            outcome.get("replicationBackfillId"),
            outcome.get("status"),
            ", ".join(codes) or "none given",
        )
    if progress.get("failedReplicationCount"):
        return "backfill %s: %d of %d replications failed (failure codes: %s)" % (
            outcome.get("replicationBackfillId"),
            progress["failedReplicationCount"],
            progress.get("totalReplicationCount", 0),
            ", ".join(codes),
        )
    return None


def main():
    argument_spec = dict(
        destination_region=dict(type="str", required=True),
        destination_registry_id=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
        poll_interval=dict(type="int", default=15),
        results=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        dest = er.destination(params["destination_region"], params["destination_registry_id"])
        wait_timeout = validate_int(params["wait_timeout"], "wait_timeout", 1, 7 * 24 * 3600)
        poll_interval = validate_int(params["poll_interval"], "poll_interval", 1, 3600)
    except OptionError as e:
        module.fail_json(msg=str(e), option=e.option)

    client = module.client("ecr")
    result = dict(changed=False)
    try:
        registry_id, configuration = er.describe_registry(client)
        names = [r["repositoryName"] for r in describe_repositories(client)]
        covered = er.coverage(configuration, names, dest["region"], dest["registryId"])
        result["covered_repositories"] = sorted(name for name, c in covered.items() if c["covered"])
        running = er.active_backfill(client, dest)

        if params["state"] == "absent":
            if running is not None and running["status"] in er.BACKFILL_STOPPABLE:
                result["changed"] = True
                if not module.check_mode:
                    running = er.stop_backfill(client, running["replicationBackfillId"])
            result["backfill"] = _snake(running)
            module.exit_json(**result)

        if er.destination_prefixes(configuration, dest) == []:
            raise OptionError(
                "destination_region",
                "no replication rule of registry %s replicates to %s in %s; add one first "
                "(cloudops.ecr_replication.ecr_replication_configuration)"
                % (registry_id, dest["registryId"], dest["region"]),
            )
        if module.check_mode:
            result["changed"] = running is None
            result["backfill"] = _snake(running)
            module.exit_json(**result)

        if running is not None and running["status"] == "STOPPING":
            # Someone stopped it: let it end, then start a new one rather than report its STOPPED end as ours.
            er.BackfillWatcher(
                client,
                running["replicationBackfillId"],
                poll_interval=poll_interval,
                timeout=wait_timeout,
                stop_on_timeout=False,
            ).wait(results=False)
            running = None
        started = running if running is not None else er.start_backfill(client, dest)
        attached = running is not None or started.get("attached", False)
        result.update(changed=not attached, attached=attached, backfill=_snake(started))
        if not params["wait"]:
            module.exit_json(**result)

        watcher = er.BackfillWatcher(
            client, started["replicationBackfillId"], poll_interval=poll_interval, timeout=wait_timeout
        )
        outcome = watcher.wait(results=params["results"])
    except OptionError as e:
        module.fail_json(msg=str(e), option=e.option, **result)
    except AnsibleECRError as e:
        module.fail_json_aws_error(e)

    details = {k: v for k, v in outcome.items() if k not in ("results", "timed_out", "stopped")}
    result.update(
        backfill=_snake(details),
        timed_out=outcome["timed_out"],
        results=[_snake(r) for r in outcome.get("results") or []],
        polls=watcher.polls,
    )
    failure = _failure_message(outcome)
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
