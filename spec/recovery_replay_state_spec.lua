-- csrc/replay.c's ReplayState on bad input: a payload that is not a validated WalEvent
-- (truncated at every length, bytes flipped), ids that are not ids and malformed seeding
-- tables are refused with an error (API misuse) or a rejection, never a crash, and leave
-- the state as it was. `make sanitize` runs this under ASan/UBSan.
local state = require "actionqueue.storage.recovery.state"
local reducer = require "actionqueue.storage.recovery.reducer"
local core = require "actionqueue.storage.core"
local W = require "actionqueue.storage.schema.wal"

local T1 = "7a5c0000-0000-4000-8000-000000000001"
local R1 = "12a00000-0000-4000-8000-000000000001"
local A1 = "a77e0000-0000-4000-8000-000000000001"

local function spec_of(id)
  return {
    id = id, payload = { bytes = "xyz", content_type = "text/plain" },
    run_policy = { Repeat = { count = 2, interval_secs = 5 } },
    constraints = { max_attempts = 3, timeout_secs = 30, concurrency_key = "k",
                    concurrency_key_hold_policy = "HoldDuringRetry", safety_level = "Pure",
                    required_capabilities = { "gpu" } },
    metadata = { tags = { "a", "b" }, priority = -3, description = "d" },
  }
end

local EVENTS = {
  { TaskCreated = { task_spec = spec_of(T1), timestamp = 10 } },
  { RunCreated = { run_instance = { id = R1, task_id = T1, state = "Scheduled", attempt_count = 0,
    created_at = 10, scheduled_at = 10, effective_priority = 0, last_state_change_at = 10 } } },
  { RunStateChanged = { run_id = R1, previous_state = "Scheduled", new_state = "Ready", timestamp = 11 } },
  { LeaseAcquired = { run_id = R1, owner = "worker-1", expiry = 100, timestamp = 12 } },
  { RunStateChanged = { run_id = R1, previous_state = "Ready", new_state = "Leased", timestamp = 13 } },
  { RunStateChanged = { run_id = R1, previous_state = "Leased", new_state = "Running", timestamp = 14 } },
  { AttemptStarted = { run_id = R1, attempt_id = A1, timestamp = 15 } },
  { AttemptFinished = { run_id = R1, attempt_id = A1, result = "Failure", error = "boom", timestamp = 16 } },
  { LeaseHeartbeat = { run_id = R1, owner = "worker-1", expiry = 200, timestamp = 17 } },
  { RunSuspended = { run_id = R1, reason = "r", timestamp = 18 } },
  { RunResumed = { run_id = R1, timestamp = 19 } },
  { LeaseReleased = { run_id = R1, owner = "worker-1", expiry = 200, timestamp = 20 } },
  { RunCanceled = { run_id = R1, timestamp = 21 } },
  { TaskCanceled = { task_id = T1, timestamp = 22 } },
}

local function payloads()
  local out = {}
  for i, ev in ipairs(EVENTS) do
    out[i] = assert(core.postcard_encode({ sequence = i, event = ev }, W.WalEvent))
  end
  return out
end

-- A snapshot of everything the readers show.
local function dump(st)
  local out = { counts = { st.core:counts() }, tasks = {}, runs = {} }
  for id, t in state.each_task(st) do out.tasks[id] = t end
  for id, r in state.each_run(st) do out.runs[id] = r end
  return out
end

describe("ReplayState (csrc/replay.c) on bad input", function()
  it("applies the events of a run's life from their payloads", function()
    local st = state.new()
    for _, p in ipairs(payloads()) do assert.is_true(st.core:apply(p)) end
    local run = state.run(st, R1)
    assert.equal("Canceled", run.instance.state)
    assert.equal(7, #run.history)
    assert.same({ attempt_id = A1, started_at = 15, finished_at = 16, result = "Failure", error = "boom" },
      run.attempts[1])
    assert.same(spec_of(T1), state.task(st, T1).spec)
    assert.equal(22, state.task(st, T1).canceled_at)
  end)

  it("refuses every truncation and a flipped byte of each payload without a crash or a change", function()
    local list = payloads()
    for i, p in ipairs(list) do
      local st = state.new()
      for k = 1, i - 1 do assert(st.core:apply(list[k])) end
      local before = dump(st)
      for len = 0, #p - 1 do
        local ok, res, kind = pcall(st.core.apply, st.core, p:sub(1, len))
        assert.is_true(not ok or res == nil and type(kind) == "string",
          ("event %d cut at %d: %s"):format(i, len, tostring(res)))
        assert.same(before, dump(st))
      end
      for pos = 1, #p do
        local flipped = p:sub(1, pos - 1) .. string.char(p:byte(pos) ~ 0xA5) .. p:sub(pos + 1)
        local ok = pcall(st.core.apply, st.core, flipped)
        assert.is_boolean(ok) -- it returned or raised; ASan/UBSan watch the memory
        st = state.new()
        for k = 1, i - 1 do assert(st.core:apply(list[k])) end
      end
    end
  end)

  it("answers ids that are not ids with nothing", function()
    local st = state.new()
    for _, p in ipairs(payloads()) do st.core:apply(p) end
    for _, bad in ipairs { "", "x", R1:upper():gsub("-", "_"), R1 .. "0", 42, {} } do
      assert.is_nil(state.run(st, bad))
      assert.is_nil(state.task(st, bad))
      assert.same({}, state.runs_of_task(st, bad))
    end
    assert.is_not_nil(state.run(st, R1:upper())) -- any hex case
  end)

  it("refuses malformed seeding tables with an error and keeps the run", function()
    local st = state.new()
    local list = payloads()
    assert(st.core:apply(list[1]))
    assert(st.core:apply(list[2]))
    local before = dump(st)
    local bad = {
      { R1, 0, nil, { { to = "Nowhere", timestamp = 1 } }, {} },
      { R1, 0, nil, { { to = "Scheduled" } }, {} },
      { R1, 1, nil, { { to = "Scheduled", timestamp = 1 } }, { { attempt_id = "nope", started_at = 1 } } },
      { R1, 1, nil, { { to = "Scheduled", timestamp = 1 } }, { { attempt_id = A1, started_at = 1, result = "Meh" } } },
      { R1, 1, nil, { { to = "Scheduled", timestamp = 1 } }, { { attempt_id = A1, started_at = 1, error = {} } } },
      { R1, 0, nil, {}, {}, { owner = 5, expiry = 1, acquired_at = 1, updated_at = 1 } },
      { "12a00000-0000-4000-8000-00000000ffff", 0, nil, {}, {} },
      { R1, 0, nil, { "x" }, {} },
    }
    for i, args in ipairs(bad) do
      local ok = pcall(st.core.seed_run, st.core, table.unpack(args, 1, 6))
      assert.is_false(ok, "seeding case " .. i)
      assert.same(before, dump(st), "seeding case " .. i)
    end
  end)

  it("reports rejections of payloads like the Lua path does", function()
    local st = state.new()
    local list = payloads()
    local ok, kind = st.core:apply(list[3]) -- RunStateChanged of an unknown run
    assert.same({ nil, "InvalidTransition" }, { ok, kind })
    local ok2, err = reducer.apply_payload(st, list[14], 14, "TaskCanceled")
    assert.is_nil(ok2)
    assert.equal("Task causality violation during replay: task canceled rejected: unknown task " .. T1,
      err.message)
    assert.same({ "Task", "UnknownTask" }, { err.kind, err.detail })
  end)
end)
