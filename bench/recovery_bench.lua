-- Recovery throughput: generate a data dir whose WAL holds 100,000 events (through the
-- WAL appender), recover it (events/s), then compact it and compare the compaction wall
-- time with loading the resulting snapshot. Not a test: it prints figures.
-- Env: RECOVERY_BENCH_EVENTS (default 100000), RECOVERY_BENCH_KEEP=1 keeps the dir.
local lfs = require "lfs"
local core = require "actionqueue.storage.core"
local appender = require "actionqueue.storage.wal.appender"
local recovery = require "actionqueue.storage.recovery"

local N = tonumber(os.getenv("RECOVERY_BENCH_EVENTS")) or 100000
local now = core.proc_clock or os.clock

local dir = os.tmpname()
os.remove(dir)
assert(lfs.mkdir(dir))
assert(lfs.mkdir(dir .. "/wal"))
assert(lfs.mkdir(dir .. "/snapshots"))

local function id(prefix, n)
  return string.format("%s-0000-4000-8000-%012x", prefix, n)
end

-- One task's life: 10 events (created, run, ready, lease, leased, heartbeat, running,
-- attempt start/finish, completed); every 5th task also gets a budget + consume.
local events, seq = {}, 0
local function push(variant, fields)
  seq = seq + 1
  events[#events + 1] = { sequence = seq, event = { [variant] = fields } }
end
local t = 1700000000
local i = 0
while seq < N do
  i = i + 1
  local task, run, att = id("7a5c0000", i), id("12a00000", i), id("a77e0000", i)
  push("TaskCreated", { task_spec = {
    id = task, payload = { bytes = string.rep("x", 32), content_type = "text/plain" },
    run_policy = "Once",
    constraints = { max_attempts = 3, timeout_secs = 30, concurrency_key_hold_policy = "HoldDuringRetry",
                    safety_level = "Pure" },
    metadata = { tags = { "bench" }, priority = i % 10 } }, timestamp = t })
  push("RunCreated", { run_instance = { id = run, task_id = task, state = "Scheduled", attempt_count = 0,
    created_at = t, scheduled_at = t, effective_priority = 0, last_state_change_at = t } })
  push("RunStateChanged", { run_id = run, previous_state = "Scheduled", new_state = "Ready", timestamp = t + 1 })
  push("LeaseAcquired", { run_id = run, owner = "worker-1", expiry = t + 60, timestamp = t + 2 })
  push("RunStateChanged", { run_id = run, previous_state = "Ready", new_state = "Leased", timestamp = t + 2 })
  push("LeaseHeartbeat", { run_id = run, owner = "worker-1", expiry = t + 90, timestamp = t + 3 })
  push("RunStateChanged", { run_id = run, previous_state = "Leased", new_state = "Running", timestamp = t + 4 })
  push("AttemptStarted", { run_id = run, attempt_id = att, timestamp = t + 4 })
  push("AttemptFinished", { run_id = run, attempt_id = att, result = "Success", output = "ok", timestamp = t + 5 })
  push("RunStateChanged", { run_id = run, previous_state = "Running", new_state = "Completed", timestamp = t + 6 })
  if i % 5 == 0 then
    push("BudgetAllocated", { task_id = task, dimension = "Token", limit = 1000, timestamp = t })
    push("BudgetConsumed", { task_id = task, dimension = "Token", amount = 10, timestamp = t + 1 })
  end
  t = t + 1
end
while #events > N do events[#events] = nil end

local wal = dir .. "/wal/actionqueue.wal"
local t0 = now()
local app = assert(appender.open(wal, { sync = "none" }))
for k = 1, #events, 1000 do
  assert(app:append_batch(table.move(events, k, math.min(k + 999, #events), 1, {})))
end
assert(app:close())
local t_gen = now() - t0
local wal_size = lfs.attributes(wal, "size")
events = nil -- luacheck: ignore
collectgarbage()

t0 = now()
local r = assert(recovery.recover(dir))
local t_rec = now() - t0
local nev = r.wal_replay_events_applied

print(string.format("generated %d events (%d tasks), WAL %.1f MiB, append %.2f s",
  nev, i, wal_size / 1048576, t_gen))
print(string.format("recover (WAL only): %.3f s, %.0f events/s", t_rec, nev / t_rec))

local ok_snap = pcall(function()
  local s = require "actionqueue.storage.snapshot"
  assert(s.write and s.load)
end)
local out = dir .. "/compacted.snap"
t0 = now()
local snap = assert(recovery.build(r.state, 1800000000))
local t_build = now() - t0
print(string.format("build canonical snapshot from state: %.3f s (%d tasks, %d runs)",
  t_build, snap.metadata.task_count, snap.metadata.run_count))
if ok_snap then
  t0 = now()
  local ok, info = recovery.compact(dir, { timestamp = 1800000000, out = out })
  local t_compact = now() - t0
  assert(ok, info and info.message)
  local snapshot = require "actionqueue.storage.snapshot"
  t0 = now()
  assert(snapshot.load(out))
  local t_load = now() - t0
  print(string.format("compact (recover + build + write): %.3f s, snapshot %.1f MiB", t_compact,
    info.snapshot_bytes / 1048576))
  print(string.format("load compacted snapshot: %.3f s; compact/load ratio %.2f", t_load, t_compact / t_load))
  -- Recovery from the compacted snapshot (hydration).
  os.rename(out, dir .. "/snapshots/snapshot.bin")
  t0 = now()
  local r2 = assert(recovery.recover(dir))
  local t_h = now() - t0
  print(string.format("recover from compacted snapshot: %.3f s (%d synthesized events)", t_h,
    r2.snapshot_events_applied))
else
  print("snapshot codec not available: compaction write/load not measured")
end

if os.getenv("RECOVERY_BENCH_KEEP") ~= "1" then os.execute("rm -rf '" .. dir .. "'") end
