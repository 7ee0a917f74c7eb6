-- Snapshot load/rewrite speed and memory (not a test: it prints figures).
-- Generates 10,000 + 10,000 (~11.3 MB) and 100,000 + 100,000 (~113 MB) snapshots with
-- bench/gen_snapshot.lua (under bench/data/, git-ignored), then measures
-- `scripts/aqstore check` and `scripts/aqstore rewrite` wall time (best of SNAP_BENCH_RUNS,
-- default 3) and peak RSS with /usr/bin/time -v, and prints the ratios to the reference.
-- Env: SNAP_BENCH_SIZES="10000,100000".
local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]+$") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
local gen = dofile(root .. "/bench/gen_snapshot.lua")

local RUNS = tonumber(os.getenv("SNAP_BENCH_RUNS")) or 3
local sizes = {}
for s in (os.getenv("SNAP_BENCH_SIZES") or "10000,100000"):gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end

-- The reference's figures (seconds, MiB) and the targets (1.5x time, 2x memory).
local REF = {
  [10000] = { check = { 0.12, 24 }, rewrite = { 0.23, 31 } },
  [100000] = { check = { 1.24, 212 }, rewrite = { 2.8, 212 } },
}

local function measure(cmd)
  local best_t, best_rss, best_cpu = math.huge, 0, math.huge
  for _ = 1, RUNS do
    local p = assert(io.popen("/usr/bin/time -v " .. cmd .. " 2>&1 >/dev/null", "r"))
    local out = p:read("a")
    p:close()
    local h, m, s = out:match("Elapsed %(wall clock%) time %(h:mm:ss or m:ss%): (%d+):(%d+):([%d.]+)")
    if not h then
      m, s = out:match("Elapsed %(wall clock%) time %(h:mm:ss or m:ss%): (%d+):([%d.]+)")
      h = 0
    end
    local t = (tonumber(h) or 0) * 3600 + tonumber(m) * 60 + tonumber(s)
    local rss = tonumber(out:match("Maximum resident set size %(kbytes%): (%d+)")) / 1024
    local cpu = tonumber(out:match("User time %(seconds%): ([%d.]+)"))
      + tonumber(out:match("System time %(seconds%): ([%d.]+)"))
    if cpu < best_cpu then best_cpu = cpu end
    if t < best_t then best_t = t end
    if rss > best_rss then best_rss = rss end
  end
  return best_t, best_rss, best_cpu
end

local aq = root .. "/scripts/aqstore"
print(("%-8s %-8s %9s %9s %9s %10s %10s %7s %7s"):format("size", "command", "time s", "cpu s", "ref s",
  "RSS MiB", "ref MiB", "t x", "mem x"))
for _, n in ipairs(sizes) do
  local file = gen.ensure(n, ("%s/bench/data/snap_%d.snap"):format(root, n))
  local out = ("%s/bench/data/rewrite_%d.snap"):format(root, n)
  local size = io.open(file, "rb"):seek("end")
  for _, c in ipairs { { "check", aq .. " check " .. file }, { "rewrite", aq .. " rewrite " .. file .. " " .. out } } do
    local t, rss, cpu = measure(c[2])
    local ref = REF[n] and REF[n][c[1]]
    print(("%-8s %-8s %9.3f %9.3f %9s %10.1f %10s %7s %7s"):format(("%.1fMB"):format(size / 1e6), c[1], t, cpu,
      ref and ("%.2f"):format(ref[1]) or "-", rss, ref and tostring(ref[2]) or "-",
      ref and ("%.2f"):format(t / ref[1]) or "-", ref and ("%.2f"):format(rss / ref[2]) or "-"))
  end
  os.remove(out)
end
print("targets: time x <= 1.5, mem x <= 2.0 (wall time; cpu = user+sys, less sensitive to a busy machine)")
