#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: replication_report
version_added: 0.1.0
short_description: Write the JSON and Markdown report of an ECR replication run
description:
  - The last step of the replication flow (facts, plan, execute, verify, report).
  - Gives every image of every destination one outcome, V(copied), V(present) (nothing to do), V(planned) (dry run),
    V(tag_conflict) (a destination tag points to another digest and was not overwritten) or V(failed), and writes
    them as a JSON file (for programs) and a Markdown file (summary table, failures with reasons, tag conflicts,
    per-repository counts, builds) in O(report_dir).
  - An image is only V(copied) when the verification listing (O(destinations[].verified)) shows it V(present) in the
    destination. A copy that reports success but is not found there is V(failed), with the reason.
  - The module does not fail when images failed; it returns RV(summary.success) so that a play can write the report
    first and fail afterwards.
  - Runs on the controller or any host with Python; it makes no AWS call.
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  report_dir:
    description:
      - Directory for the two files. Created (mode C(0755)) when missing.
    type: path
    required: true
  name:
    description:
      - File name of the report without extension; the module writes C(<name>.json) and C(<name>.md).
    type: str
    default: ecr-replication-report
  source:
    description:
      - Where the images come from; shown in the report.
    type: dict
    default: {}
    suboptions:
      region:
        description: Source region.
        type: str
      account:
        description: Source account ID.
        type: str
  destinations:
    description:
      - One entry per destination, in the order they were replicated.
    type: list
    elements: dict
    required: true
    suboptions:
      region:
        description: Destination region.
        type: str
        required: true
      account:
        description: Destination account ID.
        type: str
      role_arn:
        description: The role used to reach the destination (shown in the report; the external ID never is).
        type: str
      planned:
        description:
          - RV(cloudops.ecr_replication.ecr_image_info#module:images) as listed with C(compare_to) this destination
            before the copy. Each entry needs C(repository), C(digest) and C(destination_status).
        type: list
        elements: dict
        required: true
      results:
        description:
          - The per-image RV(cloudops.ecr_replication.codebuild_replicate#module:results) of the copy
            (C(repository), C(digest), C(status), C(error), ...). Empty when nothing was copied.
        type: list
        elements: dict
        default: []
      verified:
        description:
          - RV(cloudops.ecr_replication.ecr_image_info#module:images) listed again with C(compare_to) this destination
            after the copy. Omit it (or pass null) when the verification did not run; every image that needed a copy
            is then V(failed).
        type: list
        elements: dict
      builds:
        description: The RV(cloudops.ecr_replication.codebuild_replicate#module:builds) of the copy.
        type: list
        elements: dict
        default: []
      error:
        description: An error of the execute step for this destination (for example a build that could not start).
        type: str
      paths:
        description:
          - Per repository, C(path) (V(backfill), ECR's own replication, or V(copy)) and C(reason), as
            M(cloudops.ecr_replication.replicate_images) chooses them with C(strategy=auto) or C(backfill).
        type: dict
        default: {}
  strategy:
    description: The strategy that was used (shown in the report).
    type: str
    default: codebuild
  dry_run:
    description: The run only planned; images that need a copy are V(planned), not V(failed).
    type: bool
    default: false
  force_tags:
    description: Whether the copy was allowed to move destination tags (a V(tag_conflict) image is then a work item).
    type: bool
    default: false
  started_at:
    description: When the run started (ISO 8601); shown in the report.
    type: str
extends_documentation_fragment:
  - cloudops.ecr_replication.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the report is built and returned, and nothing is written.
  diff_mode:
    support: none
notes:
  - The JSON and Markdown files contain repository names, digests, tags, account IDs and role ARNs; never credentials
    or external IDs.
  - The report contains timestamps, so writing it reports C(changed) on every run. Roles that want a no-op re-run to
    be C(changed=0) set C(changed_when) to V(false) on this task (the report is a record of the run, not managed
    state).
"""

EXAMPLES = r"""
- name: Write the report of a run to one destination
  cloudops.ecr_replication.replication_report:
    report_dir: "{{ playbook_dir }}/reports"
    source:
      region: ap-south-1
      account: "111111111111"
    destinations:
      - region: ap-northeast-2
        account: "222222222222"
        planned: "{{ facts_before.images }}"
        results: "{{ copy.results }}"
        builds: "{{ copy.builds }}"
        verified: "{{ facts_after.images }}"
  register: report

- name: Fail after the report is written when an image failed
  ansible.builtin.fail:
    msg: "{{ report.summary.failed }} image(s) failed, see {{ report.markdown_path }}"
  when: not report.summary.success
"""

RETURN = r"""
json_path:
  description: Absolute path of the JSON report.
  returned: always
  type: str
  sample: /home/user/reports/ecr-replication-report.json
markdown_path:
  description: Absolute path of the Markdown report.
  returned: always
  type: str
  sample: /home/user/reports/ecr-replication-report.md
markdown:
  description: The Markdown report.
  returned: always
  type: str
summary:
  description: Totals over every destination (what a role publishes with C(set_stats)).
  returned: always
  type: dict
  contains:
    dry_run:
      description: Whether the run only planned.
      type: bool
    strategy:
      description: The strategy.
      type: str
    source_region:
      description: Source region.
      type: str
    source_account:
      description: Source account ID.
      type: str
    destinations:
      description: C(<account>/<region>) of each destination.
      type: list
      elements: str
    repositories:
      description: Number of distinct repositories.
      type: int
    images:
      description: Number of image entries (images times destinations).
      type: int
    copied:
      description: Images copied and verified present.
      type: int
    present:
      description: Images that were already present (nothing to do).
      type: int
    planned:
      description: Images a dry run would copy.
      type: int
    tag_conflict:
      description: Images with a destination tag pointing to another digest, not overwritten.
      type: int
    failed:
      description: Images that needed a copy and are not present in the destination afterwards.
      type: int
    bytes_copied:
      description: Sum of the sizes of the copied images.
      type: int
    bytes_planned:
      description: Sum of the sizes of the planned images.
      type: int
    builds:
      description: Number of builds (or local runs) started.
      type: int
    errors:
      description: Execute-step errors per destination.
      type: list
      elements: str
    success:
      description: No image failed and no destination reported an error.
      type: bool
  sample:
    {dry_run: false, strategy: codebuild, source_region: ap-south-1, source_account: "111111111111",
     destinations: ["222222222222/ap-northeast-2"], repositories: 3, images: 12, copied: 5, present: 7, planned: 0,
     tag_conflict: 0, failed: 0, bytes_copied: 52428800, bytes_planned: 0, builds: 1, errors: [], success: true}
failures:
  description: The image entries whose outcome is V(failed), with their reason.
  returned: always
  type: list
  elements: dict
failure_messages:
  description: "One line per failed image: C(<account>/<region> <repository>@<digest>: <reason>)."
  returned: always
  type: list
  elements: str
  sample: ["222222222222/ap-northeast-2 app/web@sha256:3f1c...: manifest unknown"]
report:
  description:
    - The whole report as written to RV(json_path) (C(schema_version), C(source), C(destinations) with their
      summaries, builds and per-repository counts, C(images) with one entry per image and destination, C(summary)).
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import report as report_utils


def main():
    destination_spec = dict(
        region=dict(type="str", required=True),
        account=dict(type="str"),
        role_arn=dict(type="str"),
        planned=dict(type="list", elements="dict", required=True),
        results=dict(type="list", elements="dict", default=[]),
        verified=dict(type="list", elements="dict"),
        builds=dict(type="list", elements="dict", default=[]),
        error=dict(type="str"),
        paths=dict(type="dict", default={}),
    )
    module = AnsibleModule(
        argument_spec=dict(
            report_dir=dict(type="path", required=True),
            name=dict(type="str", default="ecr-replication-report"),
            source=dict(type="dict", default={}, options=dict(region=dict(type="str"), account=dict(type="str"))),
            destinations=dict(type="list", elements="dict", required=True, options=destination_spec),
            strategy=dict(type="str", default="codebuild"),
            dry_run=dict(type="bool", default=False),
            force_tags=dict(type="bool", default=False),
            started_at=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        json_path, md_path = report_utils.report_paths(params["report_dir"], params["name"])
        report = report_utils.build_report(
            source=params["source"] or {},
            destinations=params["destinations"],
            strategy=params["strategy"],
            dry_run=params["dry_run"],
            force_tags=params["force_tags"],
            started_at=params["started_at"],
        )
    except report_utils.ReportError as e:
        module.fail_json(msg=f"replication_report: {e}")

    markdown = report_utils.render_markdown(report)
    result = dict(
        changed=False,
        json_path=json_path,
        markdown_path=md_path,
        markdown=markdown,
        summary=report["summary"],
        failures=report_utils.failures(report),
        failure_messages=report_utils.failure_messages(report),
        report=report,
    )
    json_text = report_utils.render_json(report)
    directory = os.path.dirname(json_path)
    if module.check_mode:
        result["changed"] = report_utils.differs(json_path, json_text) or report_utils.differs(md_path, markdown)
        module.exit_json(**result)
    try:
        _json, _md, changed = report_utils.write_report(params["report_dir"], params["name"], report)
    except OSError as e:
        module.fail_json(msg=f"report_dir: cannot write the report to {directory}: {e}")
    result["changed"] = changed
    module.exit_json(**result)


if __name__ == "__main__":
    main()
