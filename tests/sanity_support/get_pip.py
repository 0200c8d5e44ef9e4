"""Offline stand-in for the get-pip.py that ansible-test downloads from ci-files.testing.ansible.com.

That host is not reachable from this project's machines (only PyPI is). ansible-test runs the script
with pip-install arguments in a fresh virtual environment; this bootstraps pip from the interpreter's
own ``ensurepip`` and then lets that pip install what was asked for, from the package index.
"""

import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
