# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the collection's controller-side action plugins share: AWS clients from the usual amazon.aws options.

An action plugin runs in the controller's worker process, so it can loop for hours, print a line per poll through
Ansible's display and call the collection's module_utils directly. Its AWS options are those of every amazon.aws
module (``region``, ``profile``, ``access_key``, ..., ``endpoint_url``, ``aws_ca_bundle``), with the same
environment fallbacks, and ``module_defaults: group/cloudops.ecr_replication.aws`` applies to it as to a module.
Clients come from amazon.aws's own ``AWSPluginBase`` (the base of its lookup and inventory plugins).
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec
from ansible_collections.amazon.aws.plugins.plugin_utils.base import AWSPluginBase

display = Display()
AWS_OPTIONS = tuple(aws_argument_spec())


class AWSActionBase(ActionBase, AWSPluginBase):
    """``validate(spec, task_vars)`` checks the task's arguments (plus the AWS options) and keeps them for
    ``client()``; failures raise ``AnsibleActionFail`` with the option named."""

    TRANSFERS_FILES = False
    _requires_connection = False

    _options: Dict[str, Any] = {}

    def validate(self, argument_spec: Dict[str, Any]) -> Dict[str, Any]:
        spec = aws_argument_spec()
        spec.update(argument_spec)
        _result, args = self.validate_argument_spec(argument_spec=spec)
        self._options = args
        return args

    def get_options(self) -> Dict[str, Any]:
        return self._options

    def _do_fail(self, message: str):
        raise AnsibleActionFail(message)

    def session_credentials(self):
        """The botocore credentials of the task's AWS options (for a local copy run's own identity), or None."""
        import boto3

        from ansible_collections.amazon.aws.plugins.module_utils.botocore import _aws_connection_info

        _region, _endpoint, params = _aws_connection_info(self._options)
        session = boto3.session.Session(
            profile_name=params.get("profile_name"),
            aws_access_key_id=params.get("aws_access_key_id"),
            aws_secret_access_key=params.get("aws_secret_access_key"),
            aws_session_token=params.get("aws_session_token"),
        )
        return session.get_credentials()

    def endpoint_and_ca_bundle(self) -> tuple:
        from ansible_collections.amazon.aws.plugins.module_utils.botocore import _aws_connection_info

        _region, endpoint, params = _aws_connection_info(self._options)
        verify: Optional[Any] = params.get("verify")
        return endpoint, verify if isinstance(verify, str) else None


def progress(message: str) -> None:
    """One line on the console (and in AWX's job output), whatever the verbosity."""
    display.display(message)
