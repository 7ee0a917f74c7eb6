#!/usr/bin/env bash
# Packs the checkout as it is now into OUTDIR/actionqueue-storage-scm-1.src.rock, which
# `luarocks --lua-version 5.4 install --deps-mode none ./actionqueue-storage-scm-1.src.rock`
# installs offline. The rockspec's own source (a git URL) is replaced by a tarball of the
# checkout's files (tracked and new, not ignored), so uncommitted work is packed too.
# Usage: rockspec/pack.sh OUTDIR
set -euo pipefail
out=${1:?usage: rockspec/pack.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/actionqueue-storage"
cd "$root"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do if [ -f "$f" ]; then printf '%s\0' "$f"; fi; done \
  | tar --null -T - -cf - | tar -xf - -C "$work/actionqueue-storage"
(cd "$work" && tar -czf actionqueue-storage.tar.gz actionqueue-storage)
lua5.4 - rockspec/actionqueue-storage-scm-1.rockspec "$work/actionqueue-storage.tar.gz" \
  "$work/actionqueue-storage-scm-1.rockspec" <<'LUA'
local spec, tarball, dst = arg[1], arg[2], arg[3]
local f = assert(io.open(spec, "rb"))
local text = f:read("a")
f:close()
local source = string.format('\nsource = {\n  url = %q,\n  dir = "actionqueue-storage",\n}', "file://" .. tarball)
text = text:gsub("\nsource = %b{}", function() return source end, 1)
f = assert(io.open(dst, "wb"))
f:write(text)
f:close()
LUA
(cd "$work" && luarocks --lua-version 5.4 pack actionqueue-storage-scm-1.rockspec >/dev/null)
cp "$work/actionqueue-storage-scm-1.src.rock" "$out/"
echo "$out/actionqueue-storage-scm-1.src.rock"
