-- The rows of issue 15's side-by-side table for this package (not a test: it prints
-- figures).  Whole processes, on the issue's inputs:
--   ../shared/tools/scale_snapshot.py valid_12_medium_1000.snap 10 / 100 -> 10k / 100k
--   snapshots (11.3 MB / 113 MB), ../shared/bench/wal100k.wal.gz -> DIR/wal/actionqueue.wal
--   beside an empty DIR/snapshots/ (generated once under bench/data/, git-ignored).
-- Each row: wall (best of SNAP_BENCH_RUNS, default 3), CPU (user+sys of that run), peak RSS
-- (max) from /usr/bin/time -v, and the instruction count of one run under
-- `valgrind --tool=callgrind` where valgrind is present (rows with an issue target;
-- SNAP_BENCH_CALLGRIND=0 skips it), each with the engine's figures from the issue as
-- the reference line and the ratios.
-- Env: SNAP_BENCH_RUNS, SNAP_BENCH_ROWS="check-10k,load-10k" (a subset), AQ_SHARED (the
-- shared directory, default <repo>/../shared or /work/shared).
local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]+$") or "."

local RUNS = tonumber(os.getenv("SNAP_BENCH_RUNS")) or 3

local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end
local function run(cmd) return os.execute(cmd) == true end

local shared = os.getenv("AQ_SHARED")
if not shared then
  for _, c in ipairs { root .. "/../shared", "/work/shared" } do
    if exists(c .. "/tools/scale_snapshot.py") then shared = c break end
  end
end
assert(shared, "snapshot_bench: ../shared (tools/scale_snapshot.py) not found; set AQ_SHARED")

local data = root .. "/bench/data"
run("mkdir -p " .. sh(data))

local function snap_input(factor)
  local out = ("%s/scaled_%d.snap"):format(data, factor)
  if not exists(out) then
    assert(run(("python3 %s %s %d %s >/dev/null"):format(sh(shared .. "/tools/scale_snapshot.py"),
      sh(shared .. "/fixtures/snapshot/valid_12_medium_1000.snap"), factor, sh(out))), "scale_snapshot.py failed")
  end
  return out
end

local function wal_input()
  local dir = data .. "/wal100k"
  local wal = dir .. "/wal/actionqueue.wal"
  if not exists(wal) then
    assert(run(("mkdir -p %s %s && gunzip -c %s > %s"):format(sh(dir .. "/wal"), sh(dir .. "/snapshots"),
      sh(shared .. "/bench/wal100k.wal.gz"), sh(wal))), "gunzip wal100k failed")
  end
  return dir, wal
end

-- Loading into Lua tables (the REPL's and scripts' snapshot.load) as a whole process.
local load_script = data .. "/load_snapshot.lua"
do
  local f = assert(io.open(load_script, "wb"))
  f:write(([[
package.path = %q .. "/lua/?.lua;" .. %q .. "/lua/?/init.lua;" .. package.path
package.cpath = %q .. "/build/?.so;" .. package.cpath
local s = assert(require("actionqueue.storage.snapshot").load(arg[1]))
io.write(#s.tasks, " ", #s.runs, "\n")
]]):format(root, root, root))
  f:close()
end
local LOAD = "lua5.4 " .. sh(load_script)

local function wall_of(out)
  local h, m, s = out:match("Elapsed %(wall clock%) time %(h:mm:ss or m:ss%): (%d+):(%d+):([%d.]+)")
  if not h then
    m, s = out:match("Elapsed %(wall clock%) time %(h:mm:ss or m:ss%): (%d+):([%d.]+)")
    h = 0
  end
  return (tonumber(h) or 0) * 3600 + tonumber(m) * 60 + tonumber(s)
end

local function measure(cmd, prepare)
  local best_t, best_cpu, peak = math.huge, math.huge, 0
  for _ = 1, RUNS do
    if prepare then prepare() end
    local p = assert(io.popen("/usr/bin/time -v " .. cmd .. " 2>&1 >/dev/null", "r"))
    local out = p:read("a")
    p:close()
    local t = wall_of(out)
    local cpu = tonumber(out:match("User time %(seconds%): ([%d.]+)"))
      + tonumber(out:match("System time %(seconds%): ([%d.]+)"))
    local rss = tonumber(out:match("Maximum resident set size %(kbytes%): (%d+)")) / 1024
    if t < best_t then best_t, best_cpu = t, cpu end
    if rss > peak then peak = rss end
  end
  return best_t, best_cpu, peak
end

local have_valgrind = os.getenv("SNAP_BENCH_CALLGRIND") ~= "0" and run("valgrind --version >/dev/null 2>&1")
local function instructions(cmd, prepare)
  if not have_valgrind then return nil end
  if prepare then prepare() end
  local p = assert(io.popen("valgrind --tool=callgrind --callgrind-out-file=/dev/null " .. cmd
    .. " 2>&1 >/dev/null", "r"))
  local out = p:read("a")
  p:close()
  local n = out:match("Collected : (%d+)")
  return n and tonumber(n)
end

local aq = "lua5.4 " .. sh(root .. "/scripts/aqstore")
local s10, s100 = snap_input(10), snap_input(100)
local waldir, wal = wal_input()
local out10, out100 = data .. "/rewrite_10k.snap", data .. "/rewrite_100k.snap"
local function rm(p) return function() os.remove(p) end end

-- The engine's figures from issue 15 (wall s low/high, CPU s, peak MiB, instructions) and
-- the issue's targets (ratio of wall, ratio of peak, instructions).
local ROWS = {
  { id = "check-10k", what = "check 10k tasks + 10k runs (11.3 MB)", cmd = aq .. " check " .. sh(s10),
    engine = { 0.056, 0.071, 0.055, 23.5, 356e6 }, target = { 0.7, 0.5, 250e6 } },
  { id = "check-100k", what = "check 100k + 100k (113 MB)", cmd = aq .. " check " .. sh(s100),
    engine = { 0.57, 0.74, 0.55, 212 }, target = { 0.7, 0.5 } },
  { id = "rewrite-10k", what = "rewrite 10k (atomic, fsync)", cmd = aq .. " rewrite " .. sh(s10) .. " " .. sh(out10),
    prepare = rm(out10), engine = { 0.11, 0.11, 0.09, 30.7, 544e6 }, target = { 1.0, 1.0, 500e6 } },
  { id = "rewrite-100k", what = "rewrite 100k", cmd = aq .. " rewrite " .. sh(s100) .. " " .. sh(out100),
    prepare = rm(out100), engine = { 1.19, 1.22, 1.07, 212 }, target = { 1.0, 1.0 } },
  { id = "load-10k", what = "load into Lua tables 10k (vs engine check)", cmd = LOAD .. " " .. sh(s10),
    engine = { 0.056, 0.071, 0.055, 23.5 }, target = { 1.5, 1.2 } },
  { id = "load-100k", what = "load into Lua tables 100k (vs engine check)", cmd = LOAD .. " " .. sh(s100),
    engine = { 0.57, 0.74, 0.55, 212 }, target = { 1.5, 1.2 } },
  { id = "recover", what = "recover 100k-event WAL, no snapshot", cmd = aq .. " recover " .. sh(waldir),
    engine = { 0.41, 0.58, 0.40, 18.6, 603e6 }, target = { 1.0, 1.5, 1000e6 } },
  { id = "wal-verify", what = "WAL verify, same WAL (5.4 MB)", cmd = aq .. " wal verify " .. sh(wal),
    engine = { 0.16, 0.25, 0.165 }, target = { 1.0 } },
}

local only = {}
for id in (os.getenv("SNAP_BENCH_ROWS") or ""):gmatch("[^,%s]+") do only[id] = true end

local function mi(n) return n and ("%.0fM"):format(n / 1e6) or "-" end
print(("%-52s %14s %7s %9s %8s   %s"):format("work (input)", "wall s", "CPU s", "peak MiB", "Ir",
  "ratio wall / peak / Ir (target)"))
for _, r in ipairs(ROWS) do
  if next(only) == nil or only[r.id] then
    local t, cpu, peak = measure(r.cmd, r.prepare)
    local ir = r.engine[5] and instructions(r.cmd, r.prepare)
    local e = r.engine
    local mid = (e[1] + e[2]) / 2
    local ratios = { ("%.2fx (<= %.1f)"):format(t / mid, r.target[1]) }
    if e[4] then ratios[#ratios + 1] = ("%.2fx (<= %.1f)"):format(peak / e[4], r.target[2]) end
    if ir then ratios[#ratios + 1] = ("%s (<= %s)"):format(mi(ir), mi(r.target[3])) end
    print(("%-52s %14.3f %7.3f %9.1f %8s   %s"):format("ours   " .. r.what, t, cpu, peak, mi(ir),
      table.concat(ratios, " / ")))
    print(("%-52s %14s %7.3f %9s %8s"):format("engine " .. r.id, ("%.3f-%.3f"):format(e[1], e[2]), e[3],
      e[4] and ("%.1f"):format(e[4]) or "-", mi(e[5])))
  end
end
os.remove(out10)
os.remove(out100)
print("wall: best of " .. RUNS .. " runs; ratio against the middle of the engine's wall range (issue 15)")
