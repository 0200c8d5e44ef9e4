#!/usr/bin/env bash
# make demo: a fresh sandbox is up (the Makefile started it); run what a user runs against it.
set -euo pipefail
cd "$(dirname "$0")/../.."
set -a; source .sandbox/env; set +a
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.ansible/collections"
export ANSIBLE_LOCAL_TEMP="$PWD/.ansible/tmp"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Seeded source registry ($SANDBOX_SOURCE_ACCOUNT, $SANDBOX_SOURCE_REGION), as the AWS CLI sees it"
for repo in $(aws ecr describe-repositories --query 'repositories[].repositoryName' --output text); do
  printf '  %-22s %3s images\n' "$repo" "$(aws ecr describe-images --repository-name "$repo" --query 'length(imageDetails)' --output text)"
done

dest=(-e dest_region="$SANDBOX_DEST_REGION" -e dest_account="$SANDBOX_TARGET_ACCOUNT")
reports="$PWD/reports"
rm -rf "$reports"

say "1. Provision: CodeBuild project + service role (source), assumable role (target $SANDBOX_TARGET_ACCOUNT)"
ansible-playbook playbooks/provision.yml "${dest[@]}" -e dest_profile=target -e all_repositories=true

say "2. Dry run: facts and plan only, nothing copied"
ansible-playbook playbooks/replicate.yml "${dest[@]}" -e dry_run=true -e report_dir="$reports/dry-run"

say "3. Replicate Mumbai ($SANDBOX_SOURCE_REGION) -> Seoul ($SANDBOX_DEST_REGION), across accounts"
ansible-playbook playbooks/replicate.yml "${dest[@]}" -e poll_interval=5 -e report_dir="$reports"

say "4. Re-run: nothing missing, no build, changed=0"
ansible-playbook playbooks/replicate.yml "${dest[@]}" -e report_dir="$reports/rerun" | tee "$reports/rerun.log" | tail -n 4

say "Report of the copy"
cat "$reports/ecr-replication-report.md"
say "Reports: $reports/ecr-replication-report.md (Markdown) and $reports/ecr-replication-report.json (JSON)"
say "Sandbox left running: 'source .sandbox/env' to explore it, 'make sandbox-down' to stop it."
