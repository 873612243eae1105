#!/usr/bin/env bash
# Fetches only the vmlinux out of Debian's linux-image-*-amd64-dbg package, the
# "full distribution vmlinux" the symbol benchmarks compare against gdb on.
# Prints the vmlinux path on stdout; progress goes to stderr. Cached by package version.
set -euo pipefail
cache="${QKD_CACHE_DIR:-$HOME/.cache/qemu-kernel-debug}/debian-vmlinux"
pkg="$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-dbg$' | awk '{print $1}' | sort -V | tail -1)"
if [ -z "$pkg" ]; then
  echo "fetch-debian-vmlinux: no linux-image-6.1.0-*-amd64-dbg package in apt's lists; run apt-get update" >&2
  exit 1
fi
version="$(apt-cache show "$pkg" | awk '/^Version:/{print $2; exit}')"
dir="$cache/$pkg-$version"
release="${pkg#linux-image-}"; release="${release%-dbg}"
out="$dir/vmlinux-$release"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$dir"
echo "fetch-debian-vmlinux: downloading $pkg $version (about 860 MB, once)…" >&2
( cd "$dir" && apt-get download "$pkg" >&2 )
deb="$(ls "$dir"/*.deb | head -1)"
echo "fetch-debian-vmlinux: extracting vmlinux-$release…" >&2
dpkg-deb --fsys-tarfile "$deb" | tar -x -O "./usr/lib/debug/boot/vmlinux-$release" > "$out.tmp"
mv "$out.tmp" "$out"
rm -f "$deb"
echo "$out"
