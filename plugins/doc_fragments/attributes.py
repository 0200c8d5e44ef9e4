# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The shape of community.general's private ``_attributes`` fragment, kept here so that our modules can
# declare check mode / diff mode support without depending on a fragment that is private to another collection.
#
# Usage in a module:
#   extends_documentation_fragment:
#     - cloudops.ecr_replication.attributes              # the descriptions of check_mode and diff_mode
#     - cloudops.ecr_replication.attributes.info_module  # read-only modules: check_mode full, diff_mode N/A
#   or, for a module that changes things, ``attributes: {check_mode: {support: full}, diff_mode: {support: none}}``
#   in its own DOCUMENTATION together with the first fragment.

from __future__ import annotations


class ModuleDocFragment:
    # Standard fragment: the descriptions. Each module states its own ``support``.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Returns details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
"""

    # Read-only modules (``*_info``): use together with the standard fragment.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
"""
