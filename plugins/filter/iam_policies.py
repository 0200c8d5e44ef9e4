# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters that render the replication IAM policies.

Thin wrappers over ``plugins/module_utils/iam_policies.py`` (the one place the documents are
built): the input is a dict of the builder's keyword arguments; ``option_prefix`` turns the
argument name in an error message into the role variable the user set.
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies


def _wrap(builder):
    def _filter(arguments, option_prefix=""):
        if not isinstance(arguments, dict):
            raise AnsibleFilterError(f"{builder.__name__}: the input must be a dict of arguments")
        try:
            return builder(**arguments)
        except iam_policies.OptionError as e:
            raise AnsibleFilterError(f"{option_prefix}{e.option}: {e.message}") from None
        except TypeError as e:
            raise AnsibleFilterError(f"{builder.__name__}: {e}") from None

    _filter.__name__ = builder.__name__
    return _filter


class FilterModule:
    def filters(self):
        return {
            name: _wrap(getattr(iam_policies, name))
            for name in (
                "codebuild_trust_policy",
                "codebuild_service_policy",
                "codebuild_operator_policy",
                "target_trust_policy",
                "target_permissions_policy",
                "reader_trust_policy",
                "reader_permissions_policy",
                "registry_replication_statement",
            )
        }
