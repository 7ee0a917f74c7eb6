-- A small bundled WAL: the events of one report task run to completion, a second task
-- waiting in Ready, and an engine pause/resume. Each entry is a WAL event in the library's
-- representation ({sequence = N, event = {Variant = {fields}}}); `make demo` appends them
-- with storage.wal.open_appender and then dumps, verifies, recovers and compacts the WAL.
local T1 = "7a5c41d2-9e8f-4a1b-b2c3-d4e5f6a7b8c9"
local T2 = "3b9e7f10-2c4d-4e6f-8a1b-0c2d3e4f5a6b"
local R1 = "1f2e3d4c-5b6a-4978-8877-665544332211"
local R2 = "4d5e6f70-8192-4a3b-bc4d-5e6f708192a3"
local A1 = "708192a3-b4c5-4d6e-af70-8192a3b4c5d6"
local T0 = 1767225600                       -- 2026-01-01T00:00:00Z

local function task(id, payload, ts)
  return { TaskCreated = {
    task_spec = {
      id = id,
      payload = { bytes = payload, content_type = "application/json" },
      run_policy = "Once",
      constraints = { max_attempts = 3, timeout_secs = 600,
                      concurrency_key_hold_policy = "HoldDuringRetry", safety_level = "Pure" },
      metadata = { tags = { "demo" }, priority = 0 },
    },
    timestamp = ts,
  } }
end

local function run(id, task_id, ts)
  return { RunCreated = { run_instance = {
    id = id, task_id = task_id, state = "Scheduled", attempt_count = 0,
    created_at = ts, scheduled_at = ts, effective_priority = 0, last_state_change_at = ts,
  } } }
end

local function to(id, from, new, ts)
  return { RunStateChanged = { run_id = id, previous_state = from, new_state = new, timestamp = ts } }
end

local events = {
  task(T1, '{"report":"daily"}', T0),
  run(R1, T1, T0),
  to(R1, "Scheduled", "Ready", T0 + 10),
  { LeaseAcquired = { run_id = R1, owner = "worker-1", expiry = T0 + 80, timestamp = T0 + 20 } },
  to(R1, "Ready", "Leased", T0 + 20),
  to(R1, "Leased", "Running", T0 + 21),
  { AttemptStarted = { run_id = R1, attempt_id = A1, timestamp = T0 + 22 } },
  { LeaseHeartbeat = { run_id = R1, owner = "worker-1", expiry = T0 + 140, timestamp = T0 + 60 } },
  { AttemptFinished = { run_id = R1, attempt_id = A1, result = "Success",
                        output = "rows=42", timestamp = T0 + 90 } },
  to(R1, "Running", "Completed", T0 + 91),
  task(T2, '{"report":"weekly"}', T0 + 100),
  run(R2, T2, T0 + 100),
  { EnginePaused = { timestamp = T0 + 200 } },
  { EngineResumed = { timestamp = T0 + 260 } },
  to(R2, "Scheduled", "Ready", T0 + 300),
}

local list = {}
for i, ev in ipairs(events) do list[i] = { sequence = i, event = ev } end
return list
