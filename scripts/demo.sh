#!/usr/bin/env bash
# The main job: build (or reuse) the sample guest, boot it under QEMU, stop at kernel_clone,
# print where it stopped and the registers, then end the guest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
printf '\033[1m==> %s\033[0m\n' "Sample guest (built once, then cached outside the clone)" >&2
node dist/cli.js guest build
printf '\033[1m==> %s\033[0m\n' "qkd debug --break kernel_clone" >&2
exec node dist/cli.js debug --break kernel_clone "$@"
