#!/usr/bin/env bash
# What the end-to-end tier needs besides the repo's own npm packages: Debian's Chromium, and
# code-server (the real VS Code workbench, served to that Chromium) with the Node 24 it
# requires. code-server is ~500 MB with native modules built for Node 24, so it lives in a
# cache outside the clone, keyed by the pinned versions, and CI reruns reuse it.
# Prints the cache directory on stdout (progress goes to stderr). Safe to re-run.
# With --dir-only it prints that directory and installs nothing (the tests ask it where to look).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
APT_PACKAGES=(chromium libkrb5-dev)

root="${QKD_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-kernel-debug/e2e}"
dir="$root/node-$NODE_VERSION-code-server-$CODE_SERVER_VERSION"
if [ "${1:-}" = "--dir-only" ]; then echo "$dir"; exit 0; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  say "Installing Debian packages for the E2E tier: ${missing[*]}"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
else
  say "E2E Debian packages: all present"
fi

if [ -f "$dir/.complete" ]; then
  say "code-server $CODE_SERVER_VERSION (Node $NODE_VERSION): cached in $dir"
else
  # A half-finished install (interrupted, or a failed native build) is started over.
  rm -rf "$dir"
  mkdir -p "$dir/node" "$dir/code-server"
  say "Installing Node $NODE_VERSION for code-server (npm package 'node', into $dir)"
  npm install --prefix "$dir/node" --no-audit --no-fund --loglevel=error --no-save "node@$NODE_VERSION" >&2
  # The 'node' package installs the platform package (binary and headers) beside itself.
  node_home="$(dirname "$(find "$dir/node/node_modules" -path '*/node-linux-*/include/node/node_api.h' -print -quit)")"
  node_home="${node_home%/include/node}"
  [ -f "$node_home/include/node/node_api.h" ] || { echo "Node $NODE_VERSION has no headers at $node_home/include/node" >&2; exit 1; }
  ln -sfn "$node_home" "$dir/node-home"
  say "Installing code-server $CODE_SERVER_VERSION (native modules built against Node $NODE_VERSION; several minutes)"
  # code-server's postinstall builds VS Code's native modules with node-gyp for the Node it
  # runs under; nodedir points node-gyp at that Node's headers so nothing is downloaded.
  (
    cd "$dir/code-server"
    export PATH="$dir/node-home/bin:$PATH"
    export npm_config_nodedir="$dir/node-home"
    npm install --prefix "$dir/code-server" --no-audit --no-fund --loglevel=error --no-save "code-server@$CODE_SERVER_VERSION" >&2
  )
  "$dir/node-home/bin/node" "$dir/code-server/node_modules/code-server/out/node/entry.js" --version >&2
  touch "$dir/.complete"
fi
echo "$dir"
