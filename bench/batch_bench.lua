-- Batch runner throughput: 1,000 small snapshot `check` jobs with -j 1 and -j 2, and the
-- per-job overhead over checking the same file directly (in-process, and as one
-- `aqstore check FILE` process). Not a test: it prints figures.
-- The -j 1 / -j 2 pair is also run with a --report (journal appended while running); the
-- runner's own CPU time per job (os.clock of the main process) is the figure least
-- disturbed by other load on the machine.
-- Falls back to `verify` jobs while snapshot.load is not available.
-- Env: BATCH_BENCH_JOBS (default 1000).
local core = require "actionqueue.storage.core"
local lfs = require "lfs"
local batch = require "actionqueue.storage.batch"
local kinds = require "actionqueue.storage.batch.kinds"

local N = tonumber(os.getenv("BATCH_BENCH_JOBS")) or 1000
local src = debug.getinfo(1, "S").source:sub(2)
local repo = src:match("^(.*)/bench/[^/]*$") or "."
if repo:sub(1, 1) ~= "/" then repo = lfs.currentdir() .. "/" .. repo end
local fixtures = os.getenv("AQ_FIXTURES") or (repo .. "/../shared/fixtures")
local file = fixtures .. "/snapshot/valid_01_tasks.snap"

local have_snapshot, snapshot = pcall(require, "actionqueue.storage.snapshot")
local have_check = have_snapshot and snapshot.check(file).status == "ok"
local kind = have_check and "check" or "verify"

local dir = os.tmpname()
os.remove(dir)
assert(lfs.mkdir(dir))
local f = assert(io.open(file, "rb"))
local data = f:read("a")
f:close()
local jobs = {}
for i = 1, N do
  local p = string.format("%s/s%04d.snap", dir, i)
  local o = assert(io.open(p, "wb"))
  o:write(data)
  o:close()
  jobs[i] = { kind = kind, input = p }
end

local function run(j, with_report)
  local rp = with_report and (dir .. "/report.json") or nil
  local t0, c0 = core.proc_clock(), os.clock()
  local res = assert(batch.run({ jobs = jobs, workers = j, progress = false, report = rp }))
  local dt = core.proc_clock() - t0
  assert(res.summary.ok == N, "every bench job should succeed")
  return dt, (os.clock() - c0) / N * 1e3
end

-- direct, in-process: what one job costs without the runner
local t0 = core.proc_clock()
for i = 1, N do kinds.run({ kind = kind, path = jobs[i].input }) end
local direct = (core.proc_clock() - t0) / N

-- one process per file, as a shell loop over `aqstore check FILE` would do
local M = math.min(N, 50)
t0 = core.proc_clock()
for i = 1, M do
  os.execute(string.format("%s/scripts/aqstore %s '%s' >/dev/null 2>&1", repo, kind, jobs[i].input))
end
local per_process = (core.proc_clock() - t0) / M

-- the machine's parallel ceiling right now: N direct jobs in one process, then in two
-- processes at once (on 2 idle cores both take the same time; a shared, loaded machine
-- shows less). The batch -j 2 / -j 1 speed-up cannot exceed this ratio.
local lua = require("actionqueue.storage.batch.pool").interpreter()
local direct_cmd = string.format("%s -e %q", lua, string.format(
  "package.path=%q package.cpath=%q local k=require('actionqueue.storage.batch.kinds') "
  .. "for i=1,%d do k.run({kind=%q,path=%q}) end", package.path, package.cpath, N, kind, jobs[1].input))
local function timed(cmd)
  local t = core.proc_clock()
  os.execute(cmd)
  return core.proc_clock() - t
end
local one = timed(direct_cmd)
local two = timed(string.format("%s & %s; wait", direct_cmd, direct_cmd))
local ceiling = 2 * one / two

run(1) -- warm-up (page cache)
local t1, c1 = run(1)
local t2, c2 = run(2)
local r1, rc1 = run(1, true)
local r2, rc2 = run(2, true)
print(string.format("batch bench: %d %s jobs on %s (%d bytes each), %d cores", N, kind,
  file:match("[^/]+$"), #data, core.proc_info().cpus))
print(string.format("  -j 1: %.3fs  %.0f jobs/s", t1, N / t1))
print(string.format("  -j 2: %.3fs  %.0f jobs/s  (speed-up %.2fx)", t2, N / t2, t1 / t2))
print(string.format("  with --report (journal): -j 1: %.3fs  -j 2: %.3fs  (speed-up %.2fx)", r1, r2, r1 / r2))
print(string.format("  machine parallel ceiling now: %d direct jobs in 1 process %.3fs, 2x that in 2 processes %.3fs"
  .. " (%.2fx)", N, one, two, ceiling))
print(string.format("  runner (main process) CPU per job: -j 1 %.4f ms, -j 2 %.4f ms; with --report %.4f / %.4f ms",
  c1, c2, rc1, rc2))
print(string.format("  direct in-process job: %.3f ms; batch -j 1 per job: %.3f ms; overhead %.3f ms/job",
  direct * 1e3, t1 / N * 1e3, (t1 / N - direct) * 1e3))
print(string.format("  one `aqstore %s FILE` process per file: %.2f ms/file (%.1fx the batch -j 1 cost)",
  kind, per_process * 1e3, per_process / (t1 / N)))
os.execute("rm -rf '" .. dir .. "'")
