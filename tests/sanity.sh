#!/usr/bin/env bash
# ansible-test sanity on a copy of the tracked files at ansible_collections/cloudops/ecr_replication.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/cloudops/ecr_replication"
mkdir -p "$dest"
# tracked + untracked-but-not-ignored files, as the next commit would have them
git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$dest/" 2>/dev/null || true
# The dependencies (amazon.aws, community.aws) beside it, for the import and validate-modules tests.
site=$("$root/.venv/bin/python" -c 'import ansible_collections.amazon.aws as m, os; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))' 2>/dev/null || true)
if [ -z "$site" ]; then site=$("$root/.venv/bin/python" -c 'import ansible, os; print(os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)), "ansible_collections"))'); fi
ln -s "$site/amazon" "$work/ansible_collections/amazon"
ln -s "$site/community" "$work/ansible_collections/community"
cd "$dest"
git init -q . && git add -A >/dev/null 2>&1
# ansible-test installs the pinned linters its sanity tests need; keep them out of the project venv.
sanity_venv="$root/.venv-sanity"
if [ ! -x "$sanity_venv/bin/ansible-test" ]; then
  "$root/.venv/bin/python" -m venv "$sanity_venv"
  "$sanity_venv/bin/pip" install -q --disable-pip-version-check "$(grep -E '^ansible-core==' "$root/requirements.txt" | head -1 | cut -d';' -f1)" boto3 botocore
fi
# ansible-test bootstraps pip in each test venv with a script from a host we cannot reach: provide ours.
pip_version=$("$sanity_venv/bin/python" - <<'PY'
import pathlib, re, ansible_test
text = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
mkdir -p ~/.ansible/test/cache
cp "$root/tests/sanity_support/get_pip.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
PYVER=$("$sanity_venv/bin/python" -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')
"$sanity_venv/bin/ansible-test" sanity --requirements --python "$PYVER" --color no "$@"
