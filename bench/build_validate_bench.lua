-- snapshot.build and snapshot.validate throughput on a generated queue (N tasks, 2 runs
-- per task in various states, one dependency/budget/subscription per task).
-- Then issue 15 item 6's workload: 100,000 tasks + 100,000 runs from friendly tables
-- (a payload, a Once or Repeat policy, constraints, one run per task), built (with the §6
-- validation, as `snapshot.build` does by default) and written; target: build <= 1.5 s
-- (in-process here; bench/snapshot_bench.lua's "build 100k" row times it in a fresh process).
-- Not a test: it prints figures. Env: BUILD_BENCH_TASKS (default 20000),
-- BUILD_BENCH_PAIRS (default 100000).
local build = require("actionqueue.storage.snapshot.build").build
local validate = require("actionqueue.storage.snapshot.validate").validate
local uuid = require "actionqueue.storage.uuid"

local N = tonumber(os.getenv("BUILD_BENCH_TASKS")) or 20000
local states = { "Scheduled", "Ready", "Running", "Completed", "Canceled", "RetryWait" }

local t = { timestamp = 1700000000, wal_sequence = 99, tasks = {}, runs = {},
            dependency_declarations = {}, budgets = {}, subscriptions = {} }
for i = 1, N do
  t.tasks[i] = { payload = "job " .. i, metadata = { priority = i % 7, tags = { "bench" } } }
  t.runs[#t.runs + 1] = { task = i, state = states[i % #states + 1] }
  t.runs[#t.runs + 1] = { task = i }
  if i > 1 then t.dependency_declarations[#t.dependency_declarations + 1] = { task = i, depends_on = {} } end
  t.budgets[i] = { task = i, dimension = "Token", limit = 1000 }
  t.subscriptions[i] = { task = i, filter = { Custom = { key = "k" } } }
end

local function time(label, n, f)
  local t0 = os.clock()
  local r = f()
  local dt = os.clock() - t0
  print(string.format("%-34s %8.3f s  %10.0f records/s", label, dt, n / dt))
  return r
end

local records = N * 5
local snap = time(string.format("build (%d tasks, no validation)", N), records, function()
  return assert(build(t, { validate = false }))
end)
time("validate (first failure)", records, function() return assert(validate(snap)) end)
time("validate {all = true}", records, function() return validate(snap, { all = true }) end)
time("uuid.v4 x 100000", 100000, function() for _ = 1, 100000 do uuid.v4() end end)
time("uuid.normalize (upper) x 100000", 100000, function()
  local s = "6F2B0C1E-3D4A-4B5C-8D9E-0A1B2C3D4E5F"
  for _ = 1, 100000 do uuid.normalize(s) end
end)

-- Issue 15 item 6: friendly tasks + runs, one run per task.
local core = require "actionqueue.storage.core"
local write = require("actionqueue.storage.snapshot.write").write
local P = tonumber(os.getenv("BUILD_BENCH_PAIRS")) or 100000
local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]+$") or "."
package.path = root .. "/bench/lib/?.lua;" .. package.path
local friendly = require("harness").friendly_snapshot
local input = friendly(P)
collectgarbage()
local function wall(f)
  local t0, c0 = core._monotonic(), os.clock()
  local r = f()
  return r, core._monotonic() - t0, os.clock() - c0
end
local built, bw, bc = wall(function() return assert(build(input)) end)
print(string.format("%-34s %8.3f s wall %8.3f s CPU  (target <= 1.5 s)",
  string.format("build %d tasks + %d runs", P, P), bw, bc))
local out = os.tmpname()
local _, ww, wc = wall(function() return assert(write(out, built)) end)
os.remove(out)
print(string.format("%-34s %8.3f s wall %8.3f s CPU", "write it", ww, wc))
local status = io.open("/proc/self/status")
local hwm = status and status:read("a"):match("VmHWM:%s*(%d+) kB")
if status then status:close() end
if hwm then print(string.format("%-34s %8.0f MiB (whole bench process)", "peak RSS", tonumber(hwm) / 1024)) end
