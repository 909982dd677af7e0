#!/usr/bin/env bash
# Installs Debian's redis-server for the real-Redis tests of upstream/redisstore
# and upstream (the tests start and stop their own instances on 127.0.0.1 ports;
# this script starts nothing). Idempotent: apt runs only when redis-server is not
# already on PATH or at MCPAUTH_REDIS_SERVER.
#
# Sourced, it exports MCPAUTH_REDIS_SERVER (the binary's path) into the calling
# shell and leaves its options alone:
#   . .ci/redis-setup.sh && CI=true go test ./upstream/redisstore/...
# Run directly, it prints the MCPAUTH_REDIS_SERVER=... line on stdout.

_mcpauth_redis_setup() {
  local bin sudo=""
  bin="${MCPAUTH_REDIS_SERVER:-}"
  if [ -z "${bin}" ] || [ ! -x "${bin}" ]; then
    bin="$(command -v redis-server 2>/dev/null || true)"
  fi
  if [ -z "${bin}" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      sudo="sudo"
    fi
    # The package lists of a fresh image are empty: update once, then install.
    if ! ${sudo} apt-get install -y --no-install-recommends redis-server >&2 2>/dev/null; then
      ${sudo} apt-get update >&2 || return 1
      ${sudo} apt-get install -y --no-install-recommends redis-server >&2 || return 1
    fi
    # The Debian package starts a system instance where an init system runs;
    # the tests do not use it (they start their own on free ports).
    bin="$(command -v redis-server 2>/dev/null || true)"
    if [ -z "${bin}" ] && [ -x /usr/bin/redis-server ]; then
      bin=/usr/bin/redis-server
    fi
  fi
  if [ -z "${bin}" ] || ! "${bin}" --version >/dev/null 2>&1; then
    echo "redis-setup: redis-server not installed" >&2
    return 1
  fi
  export MCPAUTH_REDIS_SERVER="${bin}"
}

if [ "${BASH_SOURCE[0]}" = "${0}" ]; then
  _mcpauth_redis_setup || exit 1
  echo "MCPAUTH_REDIS_SERVER=${MCPAUTH_REDIS_SERVER}"
else
  _mcpauth_redis_setup
fi
