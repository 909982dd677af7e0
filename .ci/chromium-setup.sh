#!/usr/bin/env bash
# Installs Debian's chromium for upstream's real-browser consent test
# (TestConsentInRealBrowser, driven over the DevTools protocol; no npm browser
# download). Idempotent: does nothing when chromium is already on PATH.
# Needs root and the Debian archive. Run as: bash .ci/chromium-setup.sh
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium-setup: $(chromium --version 2>/dev/null || echo chromium present)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium-setup: installed $(chromium --version 2>/dev/null)"
