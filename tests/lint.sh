#!/usr/bin/env bash
# ansible-lint (production profile) on roles and playbooks, and the changelog fragments.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.ansible/collections"
targets=()
for path in roles playbooks extensions/molecule; do
  [ -d "$path" ] && [ -n "$(ls -A "$path" 2>/dev/null)" ] && targets+=("$path")
done
if [ ${#targets[@]} -gt 0 ]; then
  ansible-lint --offline --profile production "${targets[@]}"
fi
antsibull-changelog lint
