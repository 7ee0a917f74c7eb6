#!/bin/sh
# `make demo`: a tour of aqstore on the bundled example queue.
# Builds a snapshot from examples/queue.lua, checks it, inspects it, shows one part,
# compares it with the JSON variant, and validates a deliberately broken example; then
# writes the WAL events of examples/events.lua into a temp data dir, dumps, verifies,
# recovers and compacts it, repairs a torn tail, and runs a small parallel batch.
# Everything runs on bundled data only, in a temp dir removed at exit.
set -eu
cd "$(dirname "$0")/.."
AQ="${AQ:-scripts/aqstore}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/aqstore-demo.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT INT TERM
SNAP="$OUT/queue.snap"

heading() { printf '\n=== %s\n' "$*"; }
run() { printf '$ aqstore %s\n' "$*"; "$AQ" "$@"; }
# run_expect CODE WHY ARGS...: a step that is meant to exit CODE (shown, then checked).
run_expect() {
  want=$1; why=$2; shift 2
  set +e
  run "$@"
  code=$?
  set -e
  if [ "$code" -ne "$want" ]; then
    echo "demo: expected exit code $want from aqstore $1, got $code" >&2
    exit 1
  fi
  echo "(exit code $want: $why, as intended)"
}

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
run_expect 1 "the file is invalid" validate --all examples/broken.lua

DATA="$OUT/data"
WALF="$DATA/wal/actionqueue.wal"
heading "Write a small WAL: the 15 events of examples/events.lua, through the library's appender"
mkdir -p "$DATA/wal"
echo '$ lua5.4 -e '"'"'... wal.open_appender("DIR/wal/actionqueue.wal") ... w:append(ev) ... w:commit()'"'"''
# From a checkout use its modules (as scripts/aqstore does); once installed, the default paths.
if [ -f lua/actionqueue/storage/init.lua ]; then
  LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;${LUA_PATH:-;}"
  LUA_CPATH="$PWD/build/?.so;${LUA_CPATH:-;}"
  export LUA_PATH LUA_CPATH
fi
DEMO_WAL="$WALF" DEMO_EVENTS=examples/events.lua "${LUA:-lua5.4}" -e '
local wal = require("actionqueue.storage").wal
local w = assert(wal.open_appender(os.getenv("DEMO_WAL"), { sync = "batch" }))
for _, ev in ipairs(dofile(os.getenv("DEMO_EVENTS"))) do assert(w:append(ev)) end
assert(w:commit())
w:close()'

heading "Dump the WAL: one line per record (offset, sequence, variant, size, JSON)"
run wal dump "$WALF"

heading "Verify it (every record: header, CRC, decode)"
run wal verify "$WALF"

heading "Recover the data dir: the state the engine would rebuild (no snapshot yet: WAL-only replay)"
run recover "$DATA"

heading "Compact: a fresh snapshot at the WAL head (the WAL is not modified)"
run compact "$DATA" --timestamp 1767229200
run check "$DATA/snapshots/snapshot.bin"

heading "A torn tail: a crash left 5 garbage bytes after the last record"
printf '%s\n' '$ printf '"'"'\001\002\003\004\005'"'"' >> DIR/wal/actionqueue.wal'
printf '\001\002\003\004\005' >> "$WALF"
run_expect 1 "the WAL has a damaged tail" wal verify "$WALF"
run wal repair "$WALF"
run wal verify "$WALF"
echo '$ ls DIR/wal'
ls "$DATA/wal"
echo "(the cut bytes are kept next to the WAL: nothing is destroyed)"

heading "A batch: check, verify and rewrite the snapshots above, plus one corrupt file, on 2 workers"
BATCH="$OUT/batch"
mkdir -p "$BATCH"
cp "$SNAP" "$BATCH/queue.snap"
cp "$DATA/snapshots/snapshot.bin" "$BATCH/compacted.snap"
# corrupt.snap: queue.snap cut after 200 bytes (a torn copy: the frame's payload is incomplete)
dd if="$SNAP" of="$BATCH/corrupt.snap" bs=200 count=1 2>/dev/null
cat > "$BATCH/jobs.lua" <<'JOBS'
return {
  defaults = { kind = "check" },
  jobs = {
    { input = "queue.snap" },
    { input = "compacted.snap" },
    { kind = "verify", input = "queue.snap" },
    { kind = "verify", input = "compacted.snap" },
    { kind = "rewrite", input = "compacted.snap", output = "rewritten.snap" },
    { input = "corrupt.snap" },
  },
}
JOBS
echo '$ cat jobs.lua'
cat "$BATCH/jobs.lua"
run_expect 1 "one job failed: corrupt.snap" batch "$BATCH/jobs.lua" -j 2 --report "$BATCH/report.json"
echo '$ (the summary of report.json)'
DEMO_REPORT="$BATCH/report.json" "${LUA:-lua5.4}" -e '
local cjson = require "cjson"
local f = assert(io.open(os.getenv("DEMO_REPORT"), "rb")); local text = f:read("a"); f:close()
local r = cjson.decode(text)
print(string.format("ok=%d failed=%d skipped=%d workers=%d",
  r.summary.ok, r.summary.failed, r.summary.skipped, r.workers))
for _, j in ipairs(r.jobs) do
  print(string.format("  [%d] %-7s %-14s %s%s", j.index, j.kind, j.input, j.status,
    j.error ~= cjson.null and (": " .. j.error) or ""))
end'

heading "Done"
echo "Try it yourself:  scripts/aqstore build examples/queue.lua /tmp/queue.snap"
echo "                  scripts/aqstore repl /tmp/queue.snap      (or: make repl FILE=/tmp/queue.snap)"
