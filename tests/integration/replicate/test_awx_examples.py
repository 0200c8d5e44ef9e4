# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""examples/awx stays in step with the role: survey variables are role arguments, both files carry one survey.

No sandbox needed.
"""

from __future__ import annotations

import json

import yaml

from .conftest import REPO_ROOT

AWX = REPO_ROOT / "examples" / "awx"
SPEC = yaml.safe_load((REPO_ROOT / "roles" / "replicate" / "meta" / "argument_specs.yml").read_text())
OPTIONS = SPEC["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((REPO_ROOT / "roles" / "replicate" / "defaults" / "main.yml").read_text())
SURVEY = json.loads((AWX / "survey.json").read_text())


def test_survey_variables_are_role_arguments():
    variables = [q["variable"] for q in SURVEY["spec"]]
    assert len(variables) == len(set(variables))
    assert set(variables) <= set(OPTIONS), set(variables) - set(OPTIONS)
    # what the issue asks the survey to cover
    for needed in (
        "replicate_dest_region",
        "replicate_dest_account",
        "replicate_source_account",
        "replicate_repositories",
        "replicate_tag_regex",
        "replicate_strategy",
        "replicate_dry_run",
    ):
        assert needed in variables


def test_survey_choices_and_types_fit_the_role():
    for question in SURVEY["spec"]:
        option = OPTIONS[question["variable"]]
        if option.get("choices"):
            assert question["type"] == "multiplechoice" and set(question["choices"]) == set(option["choices"])
        if option["type"] == "bool":
            assert question["type"] == "multiplechoice" and set(question["choices"]) == {"true", "false"}
        if option["type"] == "int":
            assert question["type"] == "integer"
        if question["variable"] == "replicate_external_id":
            assert question["type"] == "password"  # a secret: AWX masks it
        default = DEFAULTS[question["variable"]]
        if question["type"] != "multiplechoice" or option["type"] != "str":
            assert str(question["default"]).lower() == str(default if default != [] else "").lower(), question


def test_job_template_carries_the_same_survey():
    templates = yaml.safe_load((AWX / "job_template.yml").read_text())["job_templates"]
    assert len(templates) == 1
    template = templates[0]
    assert template["playbook"] == "playbooks/replicate.yml"
    assert (REPO_ROOT / template["playbook"]).is_file()
    assert template["survey_enabled"] is True
    assert template["related"]["survey_spec"] == SURVEY


def test_argument_specs_and_defaults_agree():
    assert set(OPTIONS) == set(DEFAULTS)
    for name, option in OPTIONS.items():
        assert name.startswith("replicate_")
        assert "type" in option and option.get("description"), name
        assert option.get("default") == DEFAULTS[name], name
