-- Reducer rules (recovery.md §9-§11) and the replay checklist (§13.1) as event sequences.
local state = require "actionqueue.storage.recovery.state"
local reducer = require "actionqueue.storage.recovery.reducer"
local to_snapshot = require "actionqueue.storage.recovery.to_snapshot"

local T1 = "7a5c0000-0000-4000-8000-000000000001"
local T2 = "7a5c0000-0000-4000-8000-000000000002"
local T3 = "7a5c0000-0000-4000-8000-000000000003"
local R1 = "12a00000-0000-4000-8000-000000000001"
local R2 = "12a00000-0000-4000-8000-000000000002"
local R3 = "12a00000-0000-4000-8000-000000000003"
local A1 = "a77e0000-0000-4000-8000-000000000001"
local A2 = "a77e0000-0000-4000-8000-000000000002"
local S1 = "5b5c0000-0000-4000-8000-000000000001"
local AC1 = "ac700000-0000-4000-8000-000000000001"
local AC2 = "ac700000-0000-4000-8000-000000000002"
local TN1 = "7e4a0000-0000-4000-8000-000000000001"
local TN2 = "7e4a0000-0000-4000-8000-000000000002"
local L1 = "1ed90000-0000-4000-8000-000000000001"

local INVALID = "Invalid state transition during replay"

local function task_spec(id, policy)
  return {
    id = id, payload = { bytes = "" }, run_policy = policy or "Once",
    constraints = { max_attempts = 3, concurrency_key_hold_policy = "HoldDuringRetry",
                    safety_level = "Pure" },
    metadata = { tags = {}, priority = 0 },
  }
end

local function instance(id, task, created, scheduled)
  return { id = id, task_id = task, state = "Scheduled", attempt_count = 0,
           created_at = created or 1000, scheduled_at = scheduled or created or 1000,
           effective_priority = 0, last_state_change_at = created or 1000 }
end

-- A projection plus a sequence counter; `ok`/`fail` apply the next event.
local function fresh()
  local w = { st = state.new(), seq = 0 }
  function w.ok(variant, fields, seq)
    seq = seq or w.seq + 1
    local ok, err = reducer.apply_event(w.st, seq, variant, fields)
    assert(ok, "expected " .. variant .. " to apply: " .. tostring(err))
    w.seq = seq
    return w
  end
  function w.fail(variant, fields, text, seq)
    seq = seq or w.seq + 1
    local before = w.st.latest
    local ok, err = reducer.apply_event(w.st, seq, variant, fields)
    assert.is_nil(ok)
    assert.equal(text, err.message)
    assert.equal(before, w.st.latest)
    return err
  end
  function w.task(id, ts) return w.ok("TaskCreated", { task_spec = task_spec(id), timestamp = ts or 1000 }) end
  function w.run(id, task, created, scheduled)
    return w.ok("RunCreated", { run_instance = instance(id, task, created, scheduled) })
  end
  function w.to(run, from, to, ts)
    return w.ok("RunStateChanged", { run_id = run, previous_state = from, new_state = to, timestamp = ts or 2000 })
  end
  function w.lease(variant, run, owner, expiry, ts)
    return w.ok(variant, { run_id = run, owner = owner, expiry = expiry, timestamp = ts or 2000 })
  end
  -- task T1 + run R1 walked to `target` along Scheduled->Ready->Leased->Running
  function w.lifecycle(target)
    w.task(T1).run(R1, T1)
    local path = { "Ready", "Leased", "Running" }
    local prev = "Scheduled"
    for _, s in ipairs(path) do
      if prev == target then break end
      w.to(R1, prev, s)
      prev = s
    end
    return w
  end
  function w.r(id) return state.run(w.st, id or R1) end
  function w.h(id) return w.r(id).history end
  function w.a(id) return w.r(id).attempts end
  return w
end

describe("recovery reducer: sequences and engine (§13.1)", function()
  it("1: an empty projection has latest 0", function()
    assert.equal(0, fresh().st.latest)
  end)

  it("2: pause then resume", function()
    local w = fresh().ok("EnginePaused", { timestamp = 1000 }).ok("EngineResumed", { timestamp = 2000 })
    assert.same({ paused = false, paused_at = 1000, resumed_at = 2000 }, w.st.engine)
    assert.equal(2, w.st.latest)
  end)

  it("3: second pause -> AlreadyPaused", function()
    local w = fresh().ok("EnginePaused", { timestamp = 1000 })
    w.fail("EnginePaused", { timestamp = 1001 }, "Engine control causality violation during replay: "
      .. "engine pause rejected: already paused at 1000, duplicate timestamp 1001")
  end)

  it("4: resume without pause -> NotPaused; resume before pause -> ResumeBeforePause", function()
    local w = fresh()
    w.fail("EngineResumed", { timestamp = 1000 }, "Engine control causality violation during replay: "
      .. "engine resume rejected: engine not paused at timestamp 1000")
    w.ok("EnginePaused", { timestamp = 500 })
    w.fail("EngineResumed", { timestamp = 499 }, "Engine control causality violation during replay: "
      .. "engine resume rejected: resumed_at 499 precedes paused_at 500")
    w.ok("EngineResumed", { timestamp = 500 })
    w.ok("EnginePaused", { timestamp = 600 })
    assert.same({ paused = true, paused_at = 600 }, w.st.engine) -- pause clears resumed_at
  end)

  it("13/14: gaps allowed; equal, lower and zero sequences rejected", function()
    local w = fresh().task(T1, 1).ok("EnginePaused", { timestamp = 1 }, 5)
    w.fail("EngineResumed", { timestamp = 2 }, INVALID, 5)
    w.fail("EngineResumed", { timestamp = 2 }, INVALID, 3)
    w.ok("EngineResumed", { timestamp = 2 }, 10)
    assert.equal(10, w.st.latest)
    fresh().fail("EnginePaused", { timestamp = 1 }, INVALID, 0)
  end)

  it("u64 sequences above 2^63-1 compare unsigned", function()
    local w = fresh().ok("EnginePaused", { timestamp = 1 }, math.maxinteger)
    w.ok("EngineResumed", { timestamp = 2 }, math.mininteger) -- 2^63
    w.fail("EnginePaused", { timestamp = 3 }, INVALID, 5)
    assert.equal(math.mininteger, w.st.latest)
  end)
end)

describe("recovery reducer: tasks and runs (§13.1)", function()
  it("5/8: TaskCreated; duplicate id -> DuplicateEvent", function()
    local w = fresh().task(T1).task(T2)
    assert.equal(2, state.task_count(w.st))
    w.fail("TaskCreated", { task_spec = task_spec(T1), timestamp = 5 }, "Duplicate event detected")
  end)

  it("6/11: lifecycle to Completed without attempts", function()
    local w = fresh().lifecycle("Running")
    w.to(R1, "Running", "Completed", 3000)
    assert.equal("Completed", w.r().instance.state)
    assert.equal(3000, w.r().instance.last_state_change_at)
    assert.equal(5, #w.h())
    assert.same({ to = "Scheduled", timestamp = 1000 }, w.h()[1])
    assert.same({ from = "Running", to = "Completed", timestamp = 3000 }, w.h()[5])
  end)

  it("7/15: previous_state mismatch and invalid pairs -> InvalidTransition; unknown run too", function()
    local w = fresh().task(T1).run(R1, T1)
    w.fail("RunStateChanged", { run_id = R1, previous_state = "Ready", new_state = "Leased", timestamp = 1 }, INVALID)
    w.fail("RunStateChanged",
      { run_id = R1, previous_state = "Scheduled", new_state = "Completed", timestamp = 1 }, INVALID)
    w.fail("RunStateChanged",
      { run_id = R2, previous_state = "Scheduled", new_state = "Ready", timestamp = 1 }, INVALID)
    assert.equal("Scheduled", w.r().instance.state)
    assert.equal(1, #w.h())
  end)

  it("16: RunCreated with a non-Scheduled instance; duplicate run", function()
    local w = fresh().task(T1)
    local inst = instance(R1, T1)
    inst.state = "Running"
    w.fail("RunCreated", { run_instance = inst }, INVALID)
    w.run(R1, T1)
    w.fail("RunCreated", { run_instance = instance(R1, T1) }, "Duplicate event detected")
  end)

  it("RunCreated does not require the task; the instance is kept verbatim", function()
    local inst = instance(R1, T3, 100, 90)
    inst.effective_priority, inst.attempt_count = 7, 2
    local w = fresh().ok("RunCreated", { run_instance = inst })
    assert.equal(7, w.r().instance.effective_priority)
    assert.equal(2, w.r().instance.attempt_count)
    assert.same({ R1 }, state.runs_of_task(w.st, T3))
  end)

  it("20/24: attempt coupling", function()
    local w = fresh().lifecycle("Ready")
    w.fail("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 1 }, INVALID, 4)
    w.to(R1, "Ready", "Leased").to(R1, "Leased", "Running")
    w.fail("AttemptFinished", { run_id = R1, attempt_id = A1, result = "Success", timestamp = 5 }, INVALID)
    w.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 2500 })
    assert.equal(A1, w.r().instance.current_attempt_id)
    assert.equal(1, w.r().instance.attempt_count)
    w.fail("AttemptStarted", { run_id = R1, attempt_id = A2, timestamp = 1 }, INVALID)
    w.fail("AttemptFinished", { run_id = R1, attempt_id = A2, result = "Success", timestamp = 5 }, INVALID)
    -- leaving Running (except Canceled) with an active attempt is invalid
    w.fail("RunStateChanged",
      { run_id = R1, previous_state = "Running", new_state = "Completed", timestamp = 1 }, INVALID)
    w.fail("RunSuspended", { run_id = R1, timestamp = 1 }, INVALID)
    w.ok("AttemptFinished", { run_id = R1, attempt_id = A1, result = "Success", output = "out", timestamp = 2600 })
    assert.is_nil(w.r().instance.current_attempt_id)
    assert.same({ attempt_id = A1, started_at = 2500, finished_at = 2600, result = "Success", output = "out" },
      w.a()[1])
    assert.equal("Running", w.r().instance.state)
  end)

  it("AttemptFinished on an entry already finished -> CorruptedData", function()
    local w = fresh().lifecycle("Running")
    w.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 1 })
    w.ok("AttemptFinished", { run_id = R1, attempt_id = A1, result = "Failure", error = "x", timestamp = 2 })
    -- attempt id reuse is not checked: the second start appends a second entry
    w.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 3 })
    w.fail("AttemptFinished", { run_id = R1, attempt_id = A1, result = "Success", timestamp = 4 },
      "Corrupted event data")
  end)

  it("31/43: outcome normalisation", function()
    -- the attempt entry an AttemptFinished(result, error, output) leaves behind
    local function n(result, err, output)
      local v = fresh().lifecycle("Running")
      v.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 1 })
      v.ok("AttemptFinished", { run_id = R1, attempt_id = A1, result = result, error = err,
        output = output, timestamp = 2 })
      local a = v.a()[1]
      return { a.result, a.error, a.output }
    end
    assert.same({ "Success", nil, "o" }, n("Success", nil, "o"))
    assert.same({ "Success", nil, nil }, n("Success", "e", "o"))
    assert.same({ "Suspended", nil, "" }, n("Suspended", nil, ""))
    assert.same({ "Suspended", nil, nil }, n("Suspended", "e", nil))
    assert.same({ "Failure", "e", nil }, n("Failure", "e", nil))
    assert.same({ "Failure", "e", nil }, n("Failure", "e", "o"))
    assert.same({ "Failure", "unknown failure", nil }, n("Failure", nil, nil))
    assert.same({ "Timeout", "unknown timeout", nil }, n("Timeout", nil, "o"))
    local w = fresh().lifecycle("Running")
    w.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 2000 })
    w.ok("AttemptFinished", { run_id = R1, attempt_id = A1, result = "Timeout",
      error = "attempt timed out after 5s", timestamp = 3000 })
    w.to(R1, "Running", "RetryWait", 3000)
    assert.same({ attempt_id = A1, started_at = 2000, finished_at = 3000, result = "Timeout",
      error = "attempt timed out after 5s" }, w.a()[1])
    assert.equal("RetryWait", w.r().instance.state)
  end)

  it("21: RunCanceled from Ready; terminal -> InvalidTransition; clears the active attempt", function()
    local w = fresh().lifecycle("Ready")
    w.ok("RunCanceled", { run_id = R1, timestamp = 3000 })
    assert.equal("Canceled", w.r().instance.state)
    assert.same({ from = "Ready", to = "Canceled", timestamp = 3000 }, w.h()[3])
    w.fail("RunCanceled", { run_id = R1, timestamp = 3001 }, INVALID)
    w.fail("RunCanceled", { run_id = R2, timestamp = 3001 }, INVALID)
    local v = fresh().lifecycle("Running")
    v.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 1 })
    v.ok("RunCanceled", { run_id = R1, timestamp = 4000 })
    assert.is_nil(v.r().instance.current_attempt_id)
    assert.is_nil(v.a()[1].finished_at) -- the open attempt stays unfinished
    assert.equal(4000, v.r().instance.last_state_change_at)
  end)

  it("22/23: TaskCanceled, AlreadyCanceled, UnknownTask", function()
    local w = fresh().task(T1)
    w.ok("TaskCanceled", { task_id = T1, timestamp = 4000 })
    assert.equal(4000, state.task(w.st, T1).canceled_at)
    w.fail("TaskCanceled", { task_id = T1, timestamp = 4001 }, "Task causality violation during replay: "
      .. "task canceled rejected for task " .. T1 .. ": already canceled at 4000, duplicate timestamp 4001")
    assert.equal(4000, state.task(w.st, T1).canceled_at)
    w.fail("TaskCanceled", { task_id = T2, timestamp = 1 }, "Task causality violation during replay: "
      .. "task canceled rejected: unknown task " .. T2)
  end)

  it("44/48: suspend and resume", function()
    local w = fresh().lifecycle("Running")
    w.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 1 })
    w.ok("AttemptFinished", { run_id = R1, attempt_id = A1, result = "Suspended", timestamp = 2 })
    w.ok("RunSuspended", { run_id = R1, reason = "wait", timestamp = 3 })
    assert.equal("Suspended", w.r().instance.state)
    w.fail("RunSuspended", { run_id = R1, timestamp = 4 }, INVALID)
    w.ok("RunResumed", { run_id = R1, timestamp = 5 })
    assert.equal("Ready", w.r().instance.state)
    assert.same({ from = "Suspended", to = "Ready", timestamp = 5 }, w.h()[#w.h()])
    w.fail("RunResumed", { run_id = R1, timestamp = 6 }, INVALID)
  end)

  it("41: Repeat task with three runs", function()
    local w = fresh().ok("TaskCreated", { task_spec = task_spec(T1, { Repeat = { count = 3, interval_secs = 60 } }),
      timestamp = 1000 })
    w.run(R1, T1, 1000, 1000).run(R2, T1, 1000, 1060).run(R3, T1, 1000, 1120)
    w.to(R1, "Scheduled", "Ready").to(R1, "Ready", "Leased").to(R1, "Leased", "Running")
    w.ok("AttemptStarted", { run_id = R1, attempt_id = A1, timestamp = 1 })
    w.ok("AttemptFinished", { run_id = R1, attempt_id = A1, result = "Success", timestamp = 2 })
    w.to(R1, "Running", "Completed").to(R2, "Scheduled", "Ready")
    assert.equal(3, state.run_count(w.st))
    assert.same({ "Completed", "Ready", "Scheduled" },
      { w.r(R1).instance.state, w.r(R2).instance.state, w.r(R3).instance.state })
    assert.same({ 1, 0, 0 }, { w.r(R1).instance.attempt_count, w.r(R2).instance.attempt_count,
      w.r(R3).instance.attempt_count })
    -- the Ready run with scheduled_at > created_at cannot be snapshotted (§12)
    local snap, v = to_snapshot.build(w.st, 1800000000)
    assert.is_nil(snap)
    assert.equal("snapshot run " .. R2 .. " has invalid Ready schedule causality: "
      .. "scheduled_at (1060) > created_at (1000)", v.message)
  end)
end)

describe("recovery reducer: leases (§13.1 25-39)", function()
  local function L(kind) return "Lease causality violation during replay: " .. kind end

  it("25/26/33: acquire in Ready, heartbeat monotonic", function()
    local w = fresh().lifecycle("Ready")
    w.lease("LeaseAcquired", R1, "worker-1", 5000, 2100)
    w.to(R1, "Ready", "Leased")
    w.lease("LeaseHeartbeat", R1, "worker-1", 6000, 2200)
    w.lease("LeaseHeartbeat", R1, "worker-1", 6500, 2300)
    w.lease("LeaseHeartbeat", R1, "worker-1", 6500, 2400) -- equal allowed
    w.to(R1, "Leased", "Running")
    assert.same({ owner = "worker-1", expiry = 6500 }, w.r().lease)
    assert.same({ owner = "worker-1", expiry = 6500, acquired_at = 2100, updated_at = 2400 }, w.r().lease_meta)
    w.fail("LeaseHeartbeat", { run_id = R1, owner = "worker-1", expiry = 6499, timestamp = 1 },
      L("lease heartbeat rejected for run " .. R1 .. ": expiry regression previous=6500 proposed=6499"))
    w.fail("LeaseHeartbeat", { run_id = R1, owner = "x", expiry = 7000, timestamp = 1 },
      L("lease heartbeat rejected for run " .. R1 .. ": owner mismatch expected=worker-1 actual=x"))
    w.fail("LeaseAcquired", { run_id = R1, owner = "x", expiry = 7000, timestamp = 1 },
      L("lease acquire rejected for run " .. R1 .. ": invalid state Running"))
  end)

  it("27/28: expire/release on Leased -> Ready silently (no history entry)", function()
    for _, variant in ipairs { "LeaseExpired", "LeaseReleased" } do
      local w = fresh().lifecycle("Leased")
      w.lease("LeaseAcquired", R1, "worker-1", 5000)
      w.lease(variant, R1, "worker-1", 5000, 9999)
      assert.equal("Ready", w.r().instance.state)
      assert.is_nil(w.r().lease)
      assert.is_nil(w.r().lease_meta)
      assert.equal(3, #w.h())
      assert.equal(2000, w.r().instance.last_state_change_at)
      local snap, v = to_snapshot.build(w.st, 1)
      assert.is_nil(snap)
      assert.equal("snapshot run " .. R1 .. " has invalid state history transition Leased -> Ready", v.message)
    end
  end)

  it("32/34: re-lease after expiry; terminal transition clears the lease", function()
    local w = fresh().lifecycle("Leased")
    w.lease("LeaseAcquired", R1, "worker-1", 5000)
    w.fail("LeaseAcquired", { run_id = R1, owner = "worker-2", expiry = 7000, timestamp = 1 },
      L("lease acquire rejected for run " .. R1 .. ": lease already active"))
    w.lease("LeaseExpired", R1, "worker-1", 5000)
    w.lease("LeaseAcquired", R1, "worker-2", 7000)
    w.to(R1, "Ready", "Leased").to(R1, "Leased", "Running")
    w.ok("AttemptStarted", { run_id = R1, attempt_id = A2, timestamp = 1 })
    assert.same({ owner = "worker-2", expiry = 7000 }, w.r().lease)
    w.ok("AttemptFinished", { run_id = R1, attempt_id = A2, result = "Success", timestamp = 2 })
    w.to(R1, "Running", "Completed")
    assert.is_nil(w.r().lease)
    assert.is_nil(w.r().lease_meta)
  end)

  it("35-39: lease error details", function()
    local w = fresh()
    w.fail("LeaseAcquired", { run_id = R1, owner = "w", expiry = 1, timestamp = 1 },
      L("lease acquire rejected: unknown run " .. R1))
    assert.equal(0, w.st.latest)
    w.task(T1).run(R1, T1)
    w.fail("LeaseAcquired", { run_id = R1, owner = "w", expiry = 1, timestamp = 1 },
      L("lease acquire rejected for run " .. R1 .. ": invalid state Scheduled"))
    w.fail("LeaseHeartbeat", { run_id = R1, owner = "w", expiry = 1, timestamp = 1 },
      L("lease heartbeat rejected for run " .. R1 .. ": invalid state Scheduled"))
    w.fail("LeaseExpired", { run_id = R2, owner = "w", expiry = 1, timestamp = 1 },
      L("lease expire rejected: unknown run " .. R2))
    w.to(R1, "Scheduled", "Ready").to(R1, "Ready", "Leased")
    w.fail("LeaseExpired", { run_id = R1, owner = "w", expiry = 1, timestamp = 1 },
      L("lease expire rejected for run " .. R1 .. ": missing active lease"))
    w.fail("LeaseReleased", { run_id = R1, owner = "w", expiry = 1, timestamp = 1 },
      L("lease release rejected for run " .. R1 .. ": missing active lease"))
    w.fail("LeaseHeartbeat", { run_id = R1, owner = "w", expiry = 1, timestamp = 1 },
      L("lease heartbeat rejected for run " .. R1 .. ": missing active lease"))
    w.lease("LeaseAcquired", R1, "worker-1", 5000)
    w.fail("LeaseReleased", { run_id = R1, owner = "worker-1", expiry = 4999, timestamp = 1 },
      L("lease release rejected for run " .. R1 .. ": expiry mismatch expected=5000 actual=4999"))
    w.fail("LeaseExpired", { run_id = R1, owner = "worker-9", expiry = 5000, timestamp = 1 },
      L("lease expire rejected for run " .. R1 .. ": owner mismatch expected=worker-1 actual=worker-9"))
    w.ok("RunCanceled", { run_id = R1, timestamp = 3 })
    w.fail("LeaseReleased", { run_id = R1, owner = "worker-1", expiry = 5000, timestamp = 1 },
      L("lease release rejected for run " .. R1 .. ": invalid state Canceled"))
  end)

  it("lease expiry is printed unsigned", function()
    local w = fresh().lifecycle("Leased")
    w.lease("LeaseAcquired", R1, "w", -1)
    w.fail("LeaseReleased", { run_id = R1, owner = "w", expiry = 1, timestamp = 1 },
      L("lease release rejected for run " .. R1 .. ": expiry mismatch expected=18446744073709551615 actual=1"))
  end)
end)

describe("recovery reducer: dependencies, budgets, subscriptions, actors, tenants (§13.1 42-50)", function()
  it("42: dependency sets; never fails; snapshot sorts depends_on and stamps declared_at", function()
    local w = fresh().task(T1).task(T2).task(T3)
    w.ok("DependencyDeclared", { task_id = T2, depends_on = { T1 }, timestamp = 1 })
    w.ok("DependencyDeclared", { task_id = T3, depends_on = { T2 }, timestamp = 1 })
    w.ok("DependencyDeclared", { task_id = T3, depends_on = { T1, T2 }, timestamp = 1 })
    assert.same({ [T1] = true }, w.st.deps[T2])
    assert.same({ [T1] = true, [T2] = true }, w.st.deps[T3])
    assert.is_nil(w.st.deps[T1])
    local snap = assert(to_snapshot.build(w.st, 77))
    assert.same({ { task_id = T2, depends_on = { T1 }, declared_at = 77 },
                  { task_id = T3, depends_on = { T1, T2 }, declared_at = 77 } }, snap.dependency_declarations)
  end)

  it("45/46/49: budgets", function()
    local w = fresh().task(T1)
    w.ok("BudgetAllocated", { task_id = T1, dimension = "Token", limit = 500, timestamp = 10 })
    w.ok("BudgetConsumed", { task_id = T1, dimension = "Token", amount = 200, timestamp = 11 })
    local b = w.st.budgets[state.budget_key(T1, "Token")]
    assert.same({ 500, 200, false, 10 }, { b.limit, b.consumed, b.exhausted, b.allocated_at })
    w.ok("BudgetConsumed", { task_id = T1, dimension = "Token", amount = 300, timestamp = 12 })
    assert.is_true(b.exhausted)
    w.ok("BudgetReplenished", { task_id = T1, dimension = "Token", new_limit = 200, timestamp = 13 })
    assert.same({ 200, 0, false, 10 }, { b.limit, b.consumed, b.exhausted, b.allocated_at })
    w.ok("BudgetConsumed", { task_id = T1, dimension = "Token", amount = -1, timestamp = 14 })
    w.ok("BudgetConsumed", { task_id = T1, dimension = "Token", amount = 5, timestamp = 14 })
    assert.equal(-1, b.consumed) -- saturated at u64::MAX
    -- absent records: ignored, never fail
    w.ok("BudgetConsumed", { task_id = T2, dimension = "Token", amount = 5, timestamp = 1 })
    w.ok("BudgetExhausted", { task_id = T2, dimension = "Token", timestamp = 1 })
    w.ok("BudgetReplenished", { task_id = T2, dimension = "Token", new_limit = 5, timestamp = 1 })
    w.ok("BudgetAllocated", { task_id = T1, dimension = "TimeSecs", limit = 1, timestamp = 1 })
    w.ok("BudgetAllocated", { task_id = T1, dimension = "CostCents", limit = 1, timestamp = 1 })
    local snap = assert(to_snapshot.build(w.st, 1))
    assert.same({ "Token", "CostCents", "TimeSecs" },
      { snap.budgets[1].dimension, snap.budgets[2].dimension, snap.budgets[3].dimension })
    w.ok("BudgetAllocated", { task_id = T3, dimension = "Token", limit = 1, timestamp = 1 })
    local _, v = to_snapshot.build(w.st, 1)
    assert.equal("budget allocation references unknown task " .. T3, v.message)
  end)

  it("47/50: subscriptions", function()
    local w = fresh().task(T1)
    w.ok("SubscriptionCreated", { subscription_id = S1, task_id = T1,
      filter = { TaskCompleted = { task_id = T1 } }, timestamp = 1000 })
    w.ok("SubscriptionTriggered", { subscription_id = S1, timestamp = 3000 })
    assert.equal(3000, w.st.subscriptions[S1].triggered_at)
    assert.is_nil(w.st.subscriptions[S1].canceled_at)
    w.ok("SubscriptionCanceled", { subscription_id = S1, timestamp = 3000 })
    w.ok("SubscriptionTriggered", { subscription_id = S1, timestamp = 3500 })
    assert.same({ 3500, 3000 }, { w.st.subscriptions[S1].triggered_at, w.st.subscriptions[S1].canceled_at })
    w.ok("SubscriptionTriggered", { subscription_id = "5b5c0000-0000-4000-8000-000000000009", timestamp = 1 })
  end)

  it("actors, tenants, roles, grants, ledger", function()
    local w = fresh()
    w.ok("ActorRegistered", { actor_id = AC1, identity = "a", capabilities = { "x" },
      heartbeat_interval_secs = 30, timestamp = 10 })
    w.ok("ActorHeartbeat", { actor_id = AC1, timestamp = 11 })
    w.ok("ActorDeregistered", { actor_id = AC1, timestamp = 12 })
    w.ok("ActorHeartbeat", { actor_id = AC1, timestamp = 13 })
    w.ok("ActorHeartbeat", { actor_id = AC2, timestamp = 13 })
    assert.same({ 10, 13, 12 }, { w.st.actors[AC1].registered_at, w.st.actors[AC1].last_heartbeat_at,
      w.st.actors[AC1].deregistered_at })
    w.ok("ActorRegistered", { actor_id = AC1, identity = "b", capabilities = {},
      heartbeat_interval_secs = 30, timestamp = 20 })
    assert.is_nil(w.st.actors[AC1].deregistered_at)
    w.ok("TenantCreated", { tenant_id = TN2, name = "two", timestamp = 1 })
    w.ok("TenantCreated", { tenant_id = TN1, name = "one", timestamp = 2 })
    w.ok("RoleAssigned", { actor_id = AC1, role = "Operator", tenant_id = TN2, timestamp = 1 })
    w.ok("RoleAssigned", { actor_id = AC1, role = { Custom = "r" }, tenant_id = TN2, timestamp = 2 })
    w.ok("RoleAssigned", { actor_id = AC1, role = "Auditor", tenant_id = TN1, timestamp = 3 })
    for _, cap in ipairs { "CanSubmit", { Custom = "z" }, "CanApprove", "CanReview" } do
      w.ok("CapabilityGranted", { actor_id = AC1, capability = cap, tenant_id = TN1, timestamp = 5 })
    end
    w.ok("CapabilityRevoked", { actor_id = AC1, capability = "CanReview", tenant_id = TN1, timestamp = 6 })
    w.ok("CapabilityRevoked", { actor_id = AC2, capability = "CanReview", tenant_id = TN1, timestamp = 6 })
    w.ok("CapabilityGranted", { actor_id = AC1, capability = "CanSubmit", tenant_id = TN1, timestamp = 7 })
    w.ok("LedgerEntryAppended", { entry_id = L1, tenant_id = TN2, ledger_key = "k", payload = "p", timestamp = 1 })
    w.ok("LedgerEntryAppended", { entry_id = L1, tenant_id = TN1, ledger_key = "k", payload = "q", timestamp = 2 })
    local snap = assert(to_snapshot.build(w.st, 1))
    assert.same({ TN1, TN2 }, { snap.tenants[1].tenant_id, snap.tenants[2].tenant_id })
    assert.equal(2, #snap.role_assignments)
    assert.same({ "Auditor", { Custom = "r" } }, { snap.role_assignments[1].role, snap.role_assignments[2].role })
    local caps = {}
    for i, g in ipairs(snap.capability_grants) do caps[i] = state.capability_key(g.capability) end
    assert.same({ "CanApprove", "CanReview", "CanSubmit", "Custom:z" }, caps)
    assert.equal(6, snap.capability_grants[2].revoked_at)
    assert.is_nil(snap.capability_grants[3].revoked_at)
    assert.equal(7, snap.capability_grants[3].granted_at)
    assert.same({ "p", "q" }, { snap.ledger_entries[1].payload, snap.ledger_entries[2].payload })
  end)
end)

describe("recovery to_snapshot", function()
  it("orders tasks and runs by id and counts them", function()
    local w = fresh().task(T3).task(T1).run(R2, T1).run(R1, T3)
    local snap = assert(to_snapshot.build(w.st, 5))
    assert.same({ T1, T3 }, { snap.tasks[1].task_spec.id, snap.tasks[2].task_spec.id })
    assert.same({ R1, R2 }, { snap.runs[1].run_instance.id, snap.runs[2].run_instance.id })
    assert.same({ schema_version = 8, wal_sequence = 4, task_count = 2, run_count = 2 }, snap.metadata)
    assert.equal(4, snap.version)
    assert.equal(5, snap.timestamp)
  end)

  it("reports the first invalid item in canonical order (bare text)", function()
    local w = fresh().ok("RunCreated", { run_instance = instance(R2, T2) })
      .ok("RunCreated", { run_instance = instance(R1, T3) })
    local _, v = to_snapshot.build(w.st, 5)
    assert.equal("snapshot run " .. R1 .. " references unknown task " .. T3, v.message)
  end)
end)
