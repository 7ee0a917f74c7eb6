#!/bin/sh
# make fuzz: seeds the corpora from the shared fixtures, runs every target for
# FUZZ_SECONDS, copies any crash input into spec/regressions/<target>/ (kept forever and
# replayed by spec/reliability_regressions_spec.lua) and appends one census line per
# target to $OUT/census.txt:  <date> <target> <seconds> <executions> <crashes>.
# Usage: fuzz/run.sh OUT_DIR SECONDS FIXTURES [targets...]
set -u
out=$1; secs=$2; fixtures=$3; shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/corpus"
lua5.4 "$root/fuzz/seed.lua" "$fixtures" "$out/seeds" || exit 1
status=0
for t in "$@"; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  log="$out/$t.log"
  echo "fuzz: $t for ${secs}s (log $log)"
  "$out/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
    "$out/corpus/$t" "$out/seeds/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=0
  for a in "$out/artifacts/$t"/crash-* "$out/artifacts/$t"/leak-* "$out/artifacts/$t"/timeout-* "$out/artifacts/$t"/oom-*; do
    [ -f "$a" ] || continue
    crashes=$((crashes + 1))
    mkdir -p "$root/spec/regressions/$t"
    cp "$a" "$root/spec/regressions/$t/$(basename "$a")"
    echo "fuzz: $t: new regression case spec/regressions/$t/$(basename "$a")"
    rm -f "$a"
  done
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $t ${secs} ${execs:-0} $crashes" >>"$out/census.txt"
  echo "fuzz: $t: ${execs:-?} executions, $crashes crash(es), exit $rc"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then status=1; tail -40 "$log"; fi
done
exit $status
