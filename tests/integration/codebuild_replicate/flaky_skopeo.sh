#!/usr/bin/env bash
# Test double in front of the real skopeo (the sandbox's registry proxy has no fault injection): the first
# `skopeo copy` of each destination reference listed in $FLAKY_STATE/fail-once fails like a registry that
# answered 503 in the middle of a blob upload; every other call runs the real skopeo unchanged.
set -euo pipefail
if [ "${2:-}" = "copy" ] || [ "${1:-}" = "copy" ]; then
  dest="${!#}"
  if [ -n "${FLAKY_STATE:-}" ] && [ -f "$FLAKY_STATE/fail-once" ] && grep -qxF -- "$dest" "$FLAKY_STATE/fail-once"; then
    marker="$FLAKY_STATE/failed-$(printf '%s' "$dest" | sha256sum | cut -c1-16)"
    if [ ! -e "$marker" ]; then
      : > "$marker"
      echo "time=\"$(date -u +%FT%TZ)\" level=fatal msg=\"writing blob: initiating layer upload to ${dest#docker://} in ${dest#docker://}: received unexpected HTTP status: 503 Service Unavailable\"" >&2
      exit 1
    fi
  fi
fi
exec skopeo "$@"
