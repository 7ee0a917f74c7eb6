#!/bin/sh
# `make demo`: a tour of aqstore on the bundled example queue.
# Builds a snapshot from examples/queue.lua, checks it, inspects it, shows one part,
# compares it with the JSON variant, and validates a deliberately broken example.
set -eu
cd "$(dirname "$0")/.."
AQ="${AQ:-scripts/aqstore}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/aqstore-demo.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT INT TERM
SNAP="$OUT/queue.snap"

heading() { printf '\n=== %s\n' "$*"; }
run() { printf '$ aqstore %s\n' "$*"; "$AQ" "$@"; }

heading "Build a snapshot from the Lua table in examples/queue.lua"
run build examples/queue.lua "$SNAP"

heading "Check it (frame, CRC, decode, validation)"
if "$AQ" check --help >/dev/null 2>&1; then run check "$SNAP"; else run verify "$SNAP"; fi

heading "Inspect: the one-screen summary"
run inspect "$SNAP"

heading "Statistics"
run stats "$SNAP"

heading "Show one part: the attempts of the running report"
run show "$SNAP" 'runs[2].attempts'

heading "The JSON variant (examples/queue.json) builds the same snapshot"
run build examples/queue.json "$OUT/from-json.snap"
run diff "$SNAP" "$OUT/from-json.snap"

heading "Validate a deliberately broken example: every violation with its path"
set +e
run validate --all examples/broken.lua
code=$?
set -e
if [ "$code" -ne 1 ]; then
  echo "demo: expected exit code 1 from validate, got $code" >&2
  exit 1
fi
echo "(exit code 1: the file is invalid, as intended)"

heading "Done"
echo "Try it yourself:  scripts/aqstore build examples/queue.lua /tmp/queue.snap"
echo "                  scripts/aqstore repl /tmp/queue.snap      (or: make repl FILE=/tmp/queue.snap)"
