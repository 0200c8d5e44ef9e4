#!/usr/bin/env bash
# make demo: the sandbox is up (Makefile started it); show the flow a user runs against it.
set -euo pipefail
cd "$(dirname "$0")/../.."
set -a; source .sandbox/env; set +a
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.ansible/collections"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Seeded source registry ($SANDBOX_SOURCE_ACCOUNT, $SANDBOX_SOURCE_REGION): repositories and image counts"
for repo in $(aws ecr describe-repositories --query 'repositories[].repositoryName' --output text); do
  printf '  %-22s %3s images\n' "$repo" "$(aws ecr describe-images --repository-name "$repo" --query 'length(imageDetails)' --output text)"
done

say "Copy one multi-arch image to the target account ($SANDBOX_TARGET_ACCOUNT, $SANDBOX_DEST_REGION) with skopeo and an assumed role"
repo=platform/base
digest=$(aws ecr describe-images --repository-name "$repo" --filter tagStatus=TAGGED \
  --query "imageDetails[?contains(imageManifestMediaType, 'index') || contains(imageManifestMediaType, 'list')] | [0].imageDigest" --output text)
tag=$(aws ecr describe-images --repository-name "$repo" --image-ids imageDigest="$digest" --query 'imageDetails[0].imageTags[0]' --output text)
src_host=$(aws ecr get-authorization-token --query 'authorizationData[0].proxyEndpoint' --output text | sed 's#^https://##')
dst_host=$(aws --profile target ecr get-authorization-token --region "$SANDBOX_DEST_REGION" --query 'authorizationData[0].proxyEndpoint' --output text | sed 's#^https://##')
aws --profile target ecr create-repository --region "$SANDBOX_DEST_REGION" --repository-name "demo/$repo" >/dev/null 2>&1 || true
# Tokens go to skopeo on stdin, into a private auth file that is removed afterwards.
authdir=$(mktemp -d); trap 'rm -rf "$authdir"' EXIT
export REGISTRY_AUTH_FILE="$authdir/auth.json"
aws ecr get-login-password | skopeo login --username AWS --password-stdin "$src_host" >/dev/null
aws --profile target ecr get-login-password --region "$SANDBOX_DEST_REGION" | skopeo login --username AWS --password-stdin "$dst_host" >/dev/null
skopeo copy --all --preserve-digests "docker://$src_host/$repo@$digest" "docker://$dst_host/demo/$repo:$tag"
say "Destination now has:"
aws --profile target ecr describe-images --region "$SANDBOX_DEST_REGION" --repository-name "demo/$repo" \
  --query 'imageDetails[].[imageDigest, join(`,`, imageTags || `[]`), imageManifestMediaType]' --output table
src_raw=$(skopeo inspect --raw "docker://$src_host/$repo@$digest" | sha256sum | cut -d' ' -f1)
dst_raw=$(skopeo inspect --raw "docker://$dst_host/demo/$repo:$tag" | sha256sum | cut -d' ' -f1)
[ "sha256:$src_raw" = "$digest" ] && [ "$src_raw" = "$dst_raw" ] && echo "digest preserved: $digest"

if [ -f playbooks/replicate.yml ] && [ -f tests/sandbox/demo_playbooks.sh ]; then
  bash tests/sandbox/demo_playbooks.sh
fi
say "Sandbox left running: 'source .sandbox/env' to explore it, 'make sandbox-down' to stop it."
