-- Issue 15's side-by-side table for this package (not a test: it prints figures).
-- Whole processes, on the issue's inputs (generated once under bench/data/, git-ignored):
--   ../shared/tools/scale_snapshot.py valid_12_medium_1000.snap 10 / 100 -> 10k / 100k
--   snapshots (11.3 MB / 113 MB); the 10k one re-serialised with its keys sorted and
--   spaces after separators (a valid, non-canonical payload) for the non-canonical
--   rewrite row; ../shared/bench/wal100k.wal.gz -> DIR/wal/actionqueue.wal beside an
--   empty DIR/snapshots/; issue 15 item 6's friendly tables for the build row
--   (bench/lib/build_child.lua times the build call itself).
-- Each row: wall (best of SNAP_BENCH_RUNS, default 3), CPU (user+sys of that run), peak RSS
-- (max) from /usr/bin/time -v, and the instruction count of one whole process under
-- `valgrind --tool=callgrind` where valgrind is present (the 10k rows and recover;
-- SNAP_BENCH_CALLGRIND=0 skips it), then the engine's figures from the issue as the
-- reference line, the ratios and whether each target is met.
-- Env: SNAP_BENCH_RUNS, SNAP_BENCH_ROWS="check-10k,load-10k" (a subset), AQ_SHARED (the
-- shared directory, default <repo>/../shared or /work/shared).
local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]+$") or "."
package.path = root .. "/bench/lib/?.lua;" .. package.path
local H = require "harness"
local q, exists, sh = H.q, H.exists, H.sh

local RUNS = tonumber(os.getenv("SNAP_BENCH_RUNS")) or 3

local shared = os.getenv("AQ_SHARED")
if not shared then
  for _, c in ipairs { root .. "/../shared", "/work/shared" } do
    if exists(c .. "/tools/scale_snapshot.py") then shared = c break end
  end
end
if not shared then
  print("snapshot bench: ../shared (tools/scale_snapshot.py) not found; set AQ_SHARED. Nothing measured.")
  return
end
if not exists("/usr/bin/time") then
  print("snapshot bench: /usr/bin/time not found; nothing measured")
  return
end

local data = root .. "/bench/data"
assert(os.execute("mkdir -p " .. q(data)))

local function snap_input(factor)
  local out = ("%s/scaled_%d.snap"):format(data, factor)
  if not exists(out) then
    local ok, msg = sh(("python3 %s %s %d %s"):format(q(shared .. "/tools/scale_snapshot.py"),
      q(shared .. "/fixtures/snapshot/valid_12_medium_1000.snap"), factor, q(out)))
    assert(ok, "scale_snapshot.py failed: " .. msg)
  end
  return out
end

-- The same document with its keys sorted and ", " / ": " separators, framed like the
-- engine's writer (version, length, CRC-32): valid, but not its own canonical encoding.
local function noncanonical_input(src)
  local out = data .. "/noncanonical_10.snap"
  if not exists(out) then
    local py = "import json,struct,sys,zlib\n"
      .. "raw=open(sys.argv[1],'rb').read()\n"
      .. "ver,n,crc=struct.unpack('<III',raw[:12])\n"
      .. "p=json.dumps(json.loads(raw[12:12+n]),sort_keys=True,ensure_ascii=False).encode()\n"
      .. "open(sys.argv[2],'wb').write(struct.pack('<III',ver,len(p),zlib.crc32(p))+p)\n"
    local ok, msg = sh(("python3 -c %s %s %s"):format(q(py), q(src), q(out)))
    assert(ok, "making the non-canonical input failed: " .. msg)
  end
  return out
end

local function wal_input()
  local dir = data .. "/wal100k"
  local wal = dir .. "/wal/actionqueue.wal"
  if not exists(wal) then
    local ok, msg = sh(("mkdir -p %s %s && gunzip -c %s > %s"):format(q(dir .. "/wal"), q(dir .. "/snapshots"),
      q(shared .. "/bench/wal100k.wal.gz"), q(wal)))
    assert(ok, "gunzip wal100k failed: " .. msg)
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
local LOAD = "lua5.4 " .. q(load_script)

local aq = "lua5.4 " .. q(root .. "/scripts/aqstore")
local s10, s100 = snap_input(10), snap_input(100)
local n10 = noncanonical_input(s10)
local waldir, wal = wal_input()
local out10, out100 = data .. "/rewrite_10k.snap", data .. "/rewrite_100k.snap"
local function rm(p) return function() os.remove(p) end end

-- The engine's figures from issue 15 (wall s low/high, CPU s, peak MiB, instructions) and
-- the issue's targets (ratio of wall, ratio of peak, instructions). `ir`: the row gets an
-- instruction count (the 10k rows and recover). `child`: the figures are the build call's
-- (from the child's AQS_BENCH line: the best of the runs), the peak the whole process's;
-- `limit`: seconds.
local CHECK10 = { 0.056, 0.071, 0.055, 23.5, 356e6 }
local CHECK100 = { 0.57, 0.74, 0.55, 212 }
local REWRITE10 = { 0.11, 0.11, 0.09, 30.7, 544e6 }
local ROWS = {
  { id = "check-10k", what = "check 10k tasks + 10k runs (11.3 MB)", cmd = aq .. " check " .. q(s10),
    engine = CHECK10, target = { 0.7, 0.5, 250e6 }, ir = true },
  { id = "check-100k", what = "check 100k + 100k (113 MB)", cmd = aq .. " check " .. q(s100),
    engine = CHECK100, target = { 0.7, 0.5 } },
  { id = "rewrite-10k", what = "rewrite 10k (atomic, fsync)", cmd = aq .. " rewrite " .. q(s10) .. " " .. q(out10),
    prepare = rm(out10), engine = REWRITE10, target = { 1.0, 1.0, 500e6 }, ir = true },
  { id = "rewrite-100k", what = "rewrite 100k", cmd = aq .. " rewrite " .. q(s100) .. " " .. q(out100),
    prepare = rm(out100), engine = { 1.19, 1.22, 1.07, 212 }, target = { 1.0, 1.0 } },
  { id = "rewrite-noncanonical-10k", what = "rewrite 10k, non-canonical input (keys sorted, spaces)",
    cmd = aq .. " rewrite " .. q(n10) .. " " .. q(out10), prepare = rm(out10), engine = REWRITE10,
    target = { 1.0, 1.0, 500e6 }, ir = true, ref = "engine rewrite-10k" },
  { id = "load-10k", what = "load into Lua tables 10k", cmd = LOAD .. " " .. q(s10),
    engine = CHECK10, target = { 1.5, 1.2 }, ir = true, ref = "engine check-10k" },
  { id = "load-100k", what = "load into Lua tables 100k", cmd = LOAD .. " " .. q(s100),
    engine = CHECK100, target = { 1.5, 1.2 }, ref = "engine check-100k" },
  { id = "recover", what = "recover 100k-event WAL, no snapshot", cmd = aq .. " recover " .. q(waldir),
    engine = { 0.41, 0.58, 0.40, 18.6, 603e6 }, target = { 1.0, 1.5, 1000e6 }, ir = true },
  { id = "wal-verify", what = "WAL verify, same WAL (5.4 MB)", cmd = aq .. " wal verify " .. q(wal),
    engine = { 0.16, 0.25, 0.165 }, target = { 1.0 } },
  { id = "build-100k", what = "build 100k tasks + 100k runs from friendly tables",
    cmd = "lua5.4 " .. q(root .. "/bench/lib/build_child.lua") .. " " .. q(root), child = true, limit = 1.5 },
}

local only = {}
for id in (os.getenv("SNAP_BENCH_ROWS") or ""):gmatch("[^,%s]+") do only[id] = true end
local have_valgrind = os.getenv("SNAP_BENCH_CALLGRIND") ~= "0" and H.have_valgrind()

local mega = H.mega
local function fmt_row(who, wall, cpu, peak, ir, tail)
  return ("%-62s %13s %7s %9s %7s   %s"):format(who, wall, cpu, peak, ir, tail or "")
end
print(fmt_row("work (input)", "wall s", "CPU s", "peak MiB", "Ir", "ratio to the engine: wall / peak / Ir (target)"))
local failures = 0
for _, r in ipairs(ROWS) do
  if next(only) == nil or only[r.id] then
    local m, err = H.measure(r.cmd, RUNS, r.prepare)
    if not m then
      failures = failures + 1
      print(fmt_row("ours   " .. r.what, "FAILED", "", "", "", (err or ""):sub(1, 200)))
    elseif r.child then
      local c = H.best_child(m.children, "build_wall")
      local wall, cpu = c.build_wall, c.build_cpu
      local verdict = wall and ((wall <= r.limit and "met" or "NOT met")
        .. (" (target <= %s s)"):format(H.num(r.limit))) or "no AQS_BENCH line"
      print(fmt_row("ours   " .. r.what, wall and ("%.3f"):format(wall) or "-", cpu and ("%.3f"):format(cpu) or "-",
        ("%.1f"):format(m.rss_mib), "-", "build call: " .. verdict .. "; peak: whole process"))
      print(fmt_row("issue 15 before this work", "7.9", "", "394", "", "(+1.2 s to write it)"))
    else
      local ir = r.ir and have_valgrind and H.instructions(r.cmd, r.prepare) or nil
      local e = r.engine
      local mid = (e[1] + e[2]) / 2
      local ratios = { H.ratio_text(m.wall, mid, r.target[1]) }
      if e[4] then ratios[#ratios + 1] = H.ratio_text(m.rss_mib, e[4], r.target[2]) end
      if r.target[3] then
        ratios[#ratios + 1] = ir and ("%s (<= %s %s)"):format(mega(ir), mega(r.target[3]),
          ir <= r.target[3] and "met" or "NOT met") or "-"
      end
      print(fmt_row("ours   " .. r.what, ("%.3f"):format(m.wall), ("%.3f"):format(m.cpu), ("%.1f"):format(m.rss_mib),
        mega(ir), table.concat(ratios, " / ")))
      print(fmt_row(r.ref or ("engine " .. r.id), ("%.3f-%.3f"):format(e[1], e[2]), ("%.3f"):format(e[3]),
        e[4] and ("%.1f"):format(e[4]) or "-", mega(e[5])))
    end
  end
end
os.remove(out10)
os.remove(out100)
print("wall: best of " .. RUNS .. " runs; ratios against the middle of the engine's wall range (issue 15)"
  .. (have_valgrind and "" or "; no valgrind: no instruction counts"))
if failures > 0 then os.exit(1) end
