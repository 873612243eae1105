#!/usr/bin/env bash
# Installs everything qemu-kernel-debug needs on Debian 12 and builds it. Safe to re-run:
# each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

APT_PACKAGES=(qemu-system-x86 linux-source-6.1 busybox-static build-essential flex bison bc libelf-dev libssl-dev xz-utils cpio gdb binutils util-linux git)
# The aarch64 and riscv64 sample guests: QEMU (riscv's OpenSBI firmware is in qemu-system-data),
# cross compilers (riscv64 busybox is cross-built statically, hence its libc), gdb as the oracle,
# and what src/guest/busybox.ts uses to fetch Debian's busybox through apt.
APT_PACKAGES+=(qemu-system-arm qemu-system-misc qemu-system-data gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu libc6-dev-riscv64-cross gdb-multiarch dpkg-dev debian-archive-keyring)
# The benchmarks time whole processes with GNU time (peak RSS).
APT_PACKAGES+=(time)
# Module tests: modinfo (kmod) and zstd check the module reader against the real tools.
APT_PACKAGES+=(kmod zstd gzip)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1 || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  say "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all present"
fi

lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f node_modules/.qkd-lock-hash ] || [ "$(cat node_modules/.qkd-lock-hash)" != "$lock_hash" ]; then
  say "Installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.qkd-lock-hash
else
  say "npm packages: up to date"
fi

say "Building dist/ (esbuild)"
node scripts/build.mjs
