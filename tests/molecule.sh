#!/usr/bin/env bash
# Run the Molecule scenarios of extensions/molecule/ (roles source_codebuild, target_role, replicate) against the
# local sandbox. Expects the sandbox environment exported (`source .sandbox/env`, as tests/run_tests.sh does):
# it refuses to run unless AWS_ENDPOINT_URL points at 127.0.0.1, so it can never act on real AWS.
#   tests/molecule.sh                 every scenario
#   tests/molecule.sh target_role     one scenario
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

case "${AWS_ENDPOINT_URL:-}" in
  http://127.0.0.1:*|https://127.0.0.1:*|http://localhost:*|https://localhost:*) ;;
  *) echo "tests/molecule.sh: AWS_ENDPOINT_URL is not the local sandbox (source .sandbox/env first); refusing to run" >&2
     exit 2 ;;
esac
for var in AWS_CONFIG_FILE SANDBOX_SOURCE_ACCOUNT SANDBOX_TARGET_ACCOUNT; do
  if [ -z "${!var:-}" ]; then
    echo "tests/molecule.sh: $var is not set (source .sandbox/env first)" >&2
    exit 2
  fi
done

VENV_BIN="${VENV_BIN:-$ROOT/.venv/bin}"
export PATH="$VENV_BIN:$PATH"  # molecule runs ansible-playbook / ansible-config from the venv
# The collection as ansible_collections/cloudops/ecr_replication (what `make collection` does).
COLLECTIONS="$ROOT/.ansible/collections"
mkdir -p "$COLLECTIONS/ansible_collections/cloudops"
[ -e "$COLLECTIONS/ansible_collections/cloudops/ecr_replication" ] ||
  ln -sfn "$ROOT" "$COLLECTIONS/ansible_collections/cloudops/ecr_replication"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"
export ANSIBLE_LOCAL_TEMP="${ANSIBLE_LOCAL_TEMP:-$ROOT/.ansible/tmp}"
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}" PY_COLORS="${PY_COLORS:-0}" NO_COLOR="${NO_COLOR:-1}"

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  scenarios=(source_codebuild target_role replicate)
fi
status=0
for scenario in "${scenarios[@]}"; do
  echo "== molecule test -s $scenario"
  if ! molecule test -s "$scenario"; then
    echo "molecule scenario $scenario FAILED" >&2
    status=1
  fi
done
exit $status
