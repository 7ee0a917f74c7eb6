-- Recovery speed and memory on the issue-15 input (not a test: it prints figures).
-- The 100,000-event WAL (../shared/bench/wal100k.wal.gz: 9,616 tasks, 9,616 runs) is
-- unpacked into DIR/wal/actionqueue.wal beside an empty DIR/snapshots/, then whole
-- processes are measured: `aqstore recover DIR`, `aqstore compact DIR --out F` and
-- `aqstore recover` of a dir holding that compacted snapshot (hydration, no tail).
-- Wall (min-max), CPU (user+sys) and peak RSS come from /usr/bin/time over
-- RECOVERY_BENCH_RUNS runs (default 3); the instruction count of one `recover` from
-- callgrind when valgrind is installed (RECOVERY_BENCH_CALLGRIND=0 skips it).
-- RECOVERY_BENCH_BASELINE=<other checkout, built> measures that tree in the same run,
-- alternating with this one, and prints the ratios (before/after figures).
-- Env: RECOVERY_BENCH_WAL (default ../shared/bench/wal100k.wal.gz from the repo root).
local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]+$") or "."
package.path = root .. "/bench/lib/?.lua;" .. package.path
local H = require "harness"

local RUNS = tonumber(os.getenv("RECOVERY_BENCH_RUNS")) or 3
local WAL_GZ = os.getenv("RECOVERY_BENCH_WAL") or (root .. "/../shared/bench/wal100k.wal.gz")
local BASELINE = os.getenv("RECOVERY_BENCH_BASELINE")
local CALLGRIND = os.getenv("RECOVERY_BENCH_CALLGRIND") ~= "0"

-- The engine (actionqueue-storage 0.1.2, release build) on the same input, issue 15:
-- wall min/max, CPU, peak MiB, instructions; and the targets (ratios to the engine).
local ENGINE = { wall = { 0.41, 0.58 }, cpu = 0.40, rss = 18.6, ir = 603e6 }
local TARGET = { wall = 1.0, rss = 1.5, ir = 1000e6 }

local sh, q = H.sh, H.q

local file_exists = H.exists

if not file_exists(WAL_GZ) then
  print("recovery bench: input not found: " .. WAL_GZ .. " (set RECOVERY_BENCH_WAL)")
  return
end
if not file_exists("/usr/bin/time") then
  print("recovery bench: /usr/bin/time not found; nothing measured")
  return
end

local ok_tmp, tmpdir = sh("mktemp -d")
assert(ok_tmp, "mktemp failed")
local tmp = tmpdir:gsub("%s+$", "")
local function cleanup() os.execute("rm -rf " .. q(tmp)) end

local wal_dir = tmp .. "/wal-only"
local snap_dir = tmp .. "/with-snapshot"
for _, d in ipairs { wal_dir, snap_dir } do
  assert(os.execute("mkdir -p " .. q(d .. "/wal") .. " " .. q(d .. "/snapshots")))
  assert(os.execute("gzip -dc " .. q(WAL_GZ) .. " > " .. q(d .. "/wal/actionqueue.wal")))
end

-- One timed whole process: wall s, cpu s, peak KiB (nil, output on failure).
local function timed(cmd)
  local t, out = H.measure(cmd, 1)
  if not t then return nil, out end
  return t.wall, t.cpu, t.rss_mib * 1024
end

local function aqstore(tree) return "lua5.4 " .. q(tree .. "/scripts/aqstore") end

local WORK = {
  { name = "recover (WAL only)", cmd = function(tree) return aqstore(tree) .. " recover " .. q(wal_dir) end,
    engine = true },
  { name = "compact (WAL only)", cmd = function(tree)
      return aqstore(tree) .. " compact " .. q(wal_dir) .. " --timestamp 1800000000 --out "
        .. q(tmp .. "/compacted.snap")
    end },
  { name = "recover (snapshot, no tail)", cmd = function(tree) return aqstore(tree) .. " recover " .. q(snap_dir) end },
}

local trees = { { label = "this tree", path = root } }
if BASELINE then trees[2] = { label = "baseline", path = BASELINE } end

-- The compacted snapshot for the third row (written by this tree; both trees must write
-- the same bytes, which is checked when a baseline is given).
local okc, cout = sh(aqstore(root) .. " compact " .. q(wal_dir) .. " --timestamp 1800000000 --out "
  .. q(snap_dir .. "/snapshots/snapshot.bin"))
if not okc then
  print("recovery bench: compact failed: " .. cout)
  cleanup()
  return
end
if BASELINE then
  local okb, bout = sh(aqstore(BASELINE) .. " compact " .. q(wal_dir) .. " --timestamp 1800000000 --out "
    .. q(tmp .. "/baseline.snap"))
  local same = okb and os.execute("cmp -s " .. q(tmp .. "/baseline.snap") .. " "
    .. q(snap_dir .. "/snapshots/snapshot.bin"))
  print(string.format("compacted snapshot bytes identical to the baseline's: %s", same and "yes" or
    ("NO " .. tostring(bout))))
end

local results = {}
for _, w in ipairs(WORK) do
  results[w.name] = {}
  for _, t in ipairs(trees) do results[w.name][t.label] = { walls = {}, cpu = math.huge, rss = 0 } end
  for _ = 1, RUNS do
    for _, t in ipairs(trees) do -- alternating runs
      local wall, cpu, rss = timed(w.cmd(t.path))
      if not wall then
        print(string.format("recovery bench: %s failed on %s: %s", w.name, t.label, cpu))
        cleanup()
        return
      end
      local r = results[w.name][t.label]
      r.walls[#r.walls + 1] = wall
      r.cpu = math.min(r.cpu, cpu)
      r.rss = math.max(r.rss, rss)
    end
  end
end

local function instructions(tree)
  return H.instructions(aqstore(tree) .. " recover " .. q(wal_dir))
end
local have_valgrind = CALLGRIND and H.have_valgrind()
local ir = {}
if have_valgrind then
  for _, t in ipairs(trees) do ir[t.label] = instructions(t.path) end
end

local function range(walls)
  local lo, hi = math.huge, 0
  for _, x in ipairs(walls) do lo, hi = math.min(lo, x), math.max(hi, x) end
  return lo, hi
end
local function mib(kib) return kib / 1024 end
local function mega(n) return n and string.format("%.0fM", n / 1e6) or "-" end

print(string.format("input: %s, %d runs per row (alternating)", WAL_GZ, RUNS))
print(string.format("%-28s %-11s %-15s %-8s %-9s %-8s %s", "work", "tree", "wall min-max", "cpu",
  "peak", "instr", "vs engine (wall max, peak, instr)"))
for _, w in ipairs(WORK) do
  for _, t in ipairs(trees) do
    local r = results[w.name][t.label]
    local lo, hi = range(r.walls)
    local instr = w.engine and ir[t.label] or nil
    local vs = ""
    if w.engine then
      vs = string.format("%.2fx, %.2fx, %s", hi / ENGINE.wall[2], mib(r.rss) / ENGINE.rss,
        instr and string.format("%.2fx", instr / ENGINE.ir) or "-")
    end
    print(string.format("%-28s %-11s %5.2f-%5.2f s    %5.2f s  %5.1f MiB %-8s %s", w.name, t.label,
      lo, hi, r.cpu, mib(r.rss), mega(instr), vs))
  end
  if w.engine then
    print(string.format("%-28s %-11s %5.2f-%5.2f s    %5.2f s  %5.1f MiB %-8s "
      .. "targets: <= %.1fx wall, <= %.1fx peak, <= %s", w.name, "engine", ENGINE.wall[1],
      ENGINE.wall[2], ENGINE.cpu, ENGINE.rss, mega(ENGINE.ir), TARGET.wall, TARGET.rss, mega(TARGET.ir)))
  end
end
if BASELINE then
  print("this tree / baseline (wall max, cpu, peak, instr):")
  for _, w in ipairs(WORK) do
    local a, b = results[w.name]["this tree"], results[w.name].baseline
    local _, ahi = range(a.walls)
    local _, bhi = range(b.walls)
    local ri = (w.engine and ir["this tree"] and ir.baseline) and
      string.format("%.2f", ir["this tree"] / ir.baseline) or "-"
    print(string.format("  %-28s %.2f  %.2f  %.2f  %s", w.name, ahi / bhi, a.cpu / b.cpu, a.rss / b.rss, ri))
  end
end
cleanup()
