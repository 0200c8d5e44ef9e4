#!/usr/bin/env bash
# make test: one sandbox for the whole run (pytest + molecule), then lint and sanity.
# Every step runs; the script fails at the end if any did.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.ansible/collections"
export ANSIBLE_LOCAL_TEMP="$PWD/.ansible/tmp"
failed=()
step() {
  local name=$1; shift
  echo "==> $name"
  if "$@"; then echo "<== $name: ok"; else echo "<== $name: FAILED"; failed+=("$name"); fi
}

export SANDBOX_TEST_DIR="$PWD/.sandbox-test"
if [ -z "${SANDBOX_TEST_BASE_PORT:-}" ]; then
  SANDBOX_TEST_BASE_PORT=$(python -c 'from tests.sandbox.lifecycle import free_base_port; print(free_base_port(26000))')
fi
export SANDBOX_TEST_BASE_PORT
# Builds in tests use short CodeBuild "minutes" so that timeouts can be exercised in seconds.
export SANDBOX_CODEBUILD_MINUTE_SECONDS=${SANDBOX_CODEBUILD_MINUTE_SECONDS:-5}
python -m tests.sandbox stop --dir "$SANDBOX_TEST_DIR" --base-port "$SANDBOX_TEST_BASE_PORT" >/dev/null 2>&1 || true
rm -rf "$SANDBOX_TEST_DIR"
if ! python -m tests.sandbox start --profile small --dir "$SANDBOX_TEST_DIR" --base-port "$SANDBOX_TEST_BASE_PORT"; then
  echo "the test sandbox did not start" >&2
  exit 1
fi
trap 'python -m tests.sandbox stop --dir "$SANDBOX_TEST_DIR" --base-port "$SANDBOX_TEST_BASE_PORT" >/dev/null 2>&1' EXIT

# the reliability figures (tests/reliability.py): printed again as the last line of make test
export RELIABILITY_TALLY_FILE="$PWD/.ansible/reliability.json"
rm -f "$RELIABILITY_TALLY_FILE"
step "pytest (unit + sandbox integration)" python -m pytest -q -m "not slow" -p no:cacheprovider --durations=25 tests/unit tests/integration
if [ -f tests/molecule.sh ]; then
  step "molecule scenarios" bash -c "set -a; source '$SANDBOX_TEST_DIR/env'; set +a; bash tests/molecule.sh"
fi
# issue 13: make bench keeps working (small profile, its own sandbox on 27000-27099; results in a temp dir, not
# bench/results; no seed subset and no non-transfer measurement, the slow parts)
step "make bench (small profile)" python tests/benchmarks/bench.py --profile small --seed-images 0 --no-overhead \
  --out "$SANDBOX_TEST_DIR/bench"
step "ansible-lint (production profile) + changelog lint" bash tests/lint.sh
step "ansible-test sanity" bash tests/sanity.sh

tally_line() {
  python -c 'import json,sys; print(json.load(open(sys.argv[1]))["line"])' "$RELIABILITY_TALLY_FILE" 2>/dev/null ||
    echo "reliability: no figures (pytest did not finish)"
}
if [ ${#failed[@]} -gt 0 ]; then
  echo "make test: FAILED steps: ${failed[*]}"
  tally_line
  exit 1
fi
echo "make test: all steps passed"
tally_line
