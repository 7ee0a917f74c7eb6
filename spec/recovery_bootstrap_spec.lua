-- Recovery bootstrap (recovery.md §2, §5, §6, §13.4) on data dirs built in temp folders,
-- plus the `aqstore recover|compact` commands.
local lfs = require "lfs"
local state = require "actionqueue.storage.recovery.state"

local have = pcall(function()
  local s = require "actionqueue.storage.snapshot"
  assert(s.load and s.write)
  require "actionqueue.storage.wal.appender"
end)
local test = have and it or pending

local T1 = "7a5c0000-0000-4000-8000-000000000001"
local T2 = "7a5c0000-0000-4000-8000-000000000002"
local R1 = "12a00000-0000-4000-8000-000000000001"
local A1 = "a77e0000-0000-4000-8000-000000000001"

local function task(id, ts)
  return { TaskCreated = { timestamp = ts or 10, task_spec = {
    id = id, payload = { bytes = "" }, run_policy = "Once",
    constraints = { max_attempts = 1, concurrency_key_hold_policy = "HoldDuringRetry", safety_level = "Pure" },
    metadata = { tags = {}, priority = 0 } } } }
end
local function run(id, tid)
  return { RunCreated = { run_instance = { id = id, task_id = tid, state = "Scheduled", attempt_count = 0,
    created_at = 11, scheduled_at = 11, effective_priority = 5, last_state_change_at = 11 } } }
end
local function to(from, new, ts)
  return { RunStateChanged = { run_id = R1, previous_state = from, new_state = new, timestamp = ts or 12 } }
end

local files = require "support.files"
local datadir, rm = files.tmpdir, files.rmtree

-- Writes WAL records {seq, event} into dir/wal/actionqueue.wal.
local function write_wal(dir, records)
  local appender = require "actionqueue.storage.wal.appender"
  lfs.mkdir(dir .. "/wal")
  local app = assert(appender.open(dir .. "/wal/actionqueue.wal", { sync = "none" }))
  for _, r in ipairs(records) do
    assert(app:append({ sequence = r[1], event = r[2] }))
  end
  assert(app:close())
end

-- Writes a snapshot of the projection obtained from `events` (applied with sequences
-- 1..n) with metadata.wal_sequence = `seq`.
local function write_snapshot(dir, events, seq)
  local recovery = require "actionqueue.storage.recovery"
  local snapshot = require "actionqueue.storage.snapshot"
  local st = recovery.state.new()
  for i, ev in ipairs(events) do
    assert(recovery.reducer.apply(st, { sequence = i, event = ev }))
  end
  st.latest = seq
  local snap = assert(recovery.build(st, 99))
  lfs.mkdir(dir .. "/snapshots")
  assert(snapshot.write(dir .. "/snapshots/snapshot.bin", snap))
  return snap
end

describe("recovery bootstrap (§13.4)", function()
  local recovery
  setup(function() if have then recovery = require "actionqueue.storage.recovery" end end)

  test("1: empty data dir", function()
    local d = datadir()
    local r = assert(recovery.recover(d, { bootstrap = true })) -- the engine's side effects
    assert.is_false(r.snapshot_loaded)
    assert.same({ 0, 0, 0, 0, 0 }, { r.snapshot_sequence, r.state.latest, r.wal_writer_sequence,
      r.events_applied_total, state.task_count(r.state) })
    assert.is_true(r.recovery_duration_seconds >= 0)
    assert.equal("file", lfs.attributes(d .. "/wal/actionqueue.wal", "mode"))
    assert.equal(0, lfs.attributes(d .. "/wal/actionqueue.wal", "size"))
    assert.equal("directory", lfs.attributes(d .. "/snapshots", "mode"))
    rm(d)
  end)

  test("2/3/10: snapshot only, then with a WAL tail", function()
    local d = datadir()
    write_snapshot(d, { task(T1), run(R1, T1) }, 3)
    local r = assert(recovery.recover(d))
    assert.is_true(r.snapshot_loaded)
    assert.same({ 3, 3, 2, 0, 1, 1 }, { r.snapshot_sequence, r.state.latest, r.snapshot_events_applied,
      r.wal_replay_events_applied, state.task_count(r.state), state.run_count(r.state) })
    -- hydration loss: effective_priority 0
    assert.equal(0, state.run(r.state, R1).instance.effective_priority)
    write_wal(d, { { 1, task(T2) }, { 4, task("7a5c0000-0000-4000-8000-000000000003") } })
    r = assert(recovery.recover(d))
    assert.same({ 4, 2, 1, 3, 2 }, { r.state.latest, r.snapshot_events_applied, r.wal_replay_events_applied,
      r.events_applied_total, state.task_count(r.state) })
    rm(d)
  end)

  test("4/9: snapshot ahead of the WAL", function()
    local d = datadir()
    write_snapshot(d, { task(T1) }, 10)
    assert(recovery.recover(d)) -- empty WAL: accepted
    write_wal(d, { { 1, task(T2) } })
    local r, err = recovery.recover(d)
    assert.is_nil(r)
    assert.equal("SnapshotBootstrap", err.kind)
    assert.equal("snapshot bootstrap error: snapshot sequence 10 exceeds WAL max sequence 1", err.message)
    rm(d)
  end)

  test("snapshot at u64::MAX: the tail target saturates, nothing is replayed", function()
    local codec = require "actionqueue.storage.wal.codec"
    local MAX = -1   -- 18446744073709551615
    local d = datadir()
    write_snapshot(d, { task(T1) }, MAX)
    -- empty WAL: accepted (snapshot ahead of an empty WAL), nothing to replay
    local r = assert(recovery.recover(d, { bootstrap = true }))
    assert.same({ true, MAX, MAX, 0, 1 }, { r.snapshot_loaded, r.snapshot_sequence, r.state.latest,
      r.wal_replay_events_applied, state.task_count(r.state) })
    assert.equal("snapshot sequence 18446744073709551615 is ahead of an empty WAL", r.warnings[1])
    -- a (hand-written) record 0 and a last record at u64::MAX: s + 1 must not wrap to 0
    local f = assert(io.open(d .. "/wal/actionqueue.wal", "wb"))
    f:write(codec.encode_record({ sequence = 0, event = task(T2) }),
            codec.encode_record({ sequence = MAX, event = { EnginePaused = { timestamp = 5 } } }))
    f:close()
    r = assert(recovery.recover(d))
    assert.same({ true, MAX, MAX, 0, 1, false }, { r.snapshot_loaded, r.wal_writer_sequence,
      r.state.latest, r.wal_replay_events_applied, state.task_count(r.state), r.state.engine.paused })
    -- step 5 still applies first
    write_wal(d, {})
    f = assert(io.open(d .. "/wal/actionqueue.wal", "wb"))
    f:write(codec.encode_record({ sequence = 7, event = task(T2) }))
    f:close()
    local err
    r, err = recovery.recover(d)
    assert.is_nil(r)
    assert.equal("snapshot bootstrap error: snapshot sequence 18446744073709551615 exceeds WAL max sequence 7",
      err.message)
    rm(d)
  end)

  test("5/6/7: canceled task, engine pause/resume restored", function()
    local d = datadir()
    write_snapshot(d, { task(T1), { TaskCanceled = { task_id = T1, timestamp = 77 } },
      { EnginePaused = { timestamp = 120 } } }, 3)
    local r = assert(recovery.recover(d))
    assert.same({ 77, true, 120, 3 }, { state.task(r.state, T1).canceled_at, r.state.engine.paused,
      r.state.engine.paused_at, r.snapshot_events_applied })
    write_snapshot(d, { { EnginePaused = { timestamp = 120 } }, { EngineResumed = { timestamp = 180 } } }, 2)
    r = assert(recovery.recover(d))
    assert.same({ false, 120, 180, 2 }, { r.state.engine.paused, r.state.engine.paused_at,
      r.state.engine.resumed_at, r.snapshot_events_applied })
    rm(d)
  end)

  test("11/12/13: lease and active attempt restored; WAL heartbeat applies", function()
    local d = datadir()
    local lease = { LeaseAcquired = { run_id = R1, owner = "worker-1", expiry = 1000, timestamp = 12 } }
    write_snapshot(d, { task(T1), run(R1, T1), to("Scheduled", "Ready"), lease, to("Ready", "Leased") }, 5)
    write_wal(d, { { 6, { LeaseHeartbeat = { run_id = R1, owner = "worker-1", expiry = 2000, timestamp = 13 } } } })
    local r = assert(recovery.recover(d))
    local view = state.run(r.state, R1)
    assert.same({ owner = "worker-1", expiry = 2000 }, view.lease)
    assert.same({ owner = "worker-1", expiry = 2000, acquired_at = 12, updated_at = 13 }, view.lease_meta)
    rm(d)
    d = datadir()
    write_snapshot(d, { task(T1), run(R1, T1), to("Scheduled", "Ready"), to("Ready", "Leased"),
      to("Leased", "Running", 20), { AttemptStarted = { run_id = R1, attempt_id = A1, timestamp = 21 } } }, 6)
    r = assert(recovery.recover(d))
    local inst = state.run(r.state, R1).instance
    assert.same({ "Running", 1, A1, 20 }, { inst.state, inst.attempt_count, inst.current_attempt_id,
      inst.last_state_change_at })
    rm(d)
  end)

  test("§6: no record with sequence s+1 -> nothing replayed", function()
    local d = datadir()
    write_snapshot(d, { task(T1), task(T2), task("7a5c0000-0000-4000-8000-000000000003") }, 3)
    write_wal(d, { { 1, task(T1) }, { 2, task(T2) }, { 3, task("7a5c0000-0000-4000-8000-000000000003") },
      { 5, task("7a5c0000-0000-4000-8000-000000000005") }, { 6, task("7a5c0000-0000-4000-8000-000000000006") } })
    local r = assert(recovery.recover(d))
    assert.same({ 3, 0, 3, 6 }, { r.state.latest, r.wal_replay_events_applied, state.task_count(r.state),
      r.wal_writer_sequence })
    rm(d)
  end)

  test("unusable snapshot -> WAL-only replay; replay and init errors", function()
    local d = datadir()
    lfs.mkdir(d .. "/snapshots")
    local f = assert(io.open(d .. "/snapshots/snapshot.bin", "wb"))
    f:write("garbage garbage garbage")
    f:close()
    write_wal(d, { { 1, task(T1) }, { 2, run(R1, T1) }, { 3, to("Ready", "Leased") } })
    local r, err = recovery.recover(d)
    assert.is_nil(r)
    assert.equal("WAL replay error: Reducer error: Invalid state transition during replay", err.message)
    rm(d)
    d = datadir()
    write_wal(d, { { 1, task(T1) } })
    f = assert(io.open(d .. "/wal/actionqueue.wal", "ab"))
    f:write("\5\0")
    f:close()
    r, err = recovery.recover(d)
    assert.is_nil(r)
    assert.equal("WAL init error: strict WAL tail validation failed during bootstrap: "
      .. "WAL corruption at offset 46 (incomplete_header)", err.message)
    assert.equal(48, lfs.attributes(d .. "/wal/actionqueue.wal", "size")) -- never repaired
    rm(d)
  end)
end)

describe("aqstore recover / compact", function()
  local function aqstore(args)
    local p = io.popen("scripts/aqstore " .. args .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("a")
    p:close()
    return out
  end

  test("compact writes atomically, prints OK, leaves the WAL alone; ERR on a rejected build", function()
    local d = datadir()
    write_wal(d, { { 1, task(T1) }, { 2, run(R1, T1) } })
    local wal = io.open(d .. "/wal/actionqueue.wal", "rb"):read("a")
    local out = aqstore("compact " .. d .. " --timestamp 1800000000")
    assert.matches("^OK wal_sequence=2 tasks=1 runs=1 snapshot_bytes=%d+\nrc=0\n$", out)
    local snapshot = require "actionqueue.storage.snapshot"
    local snap = assert(snapshot.load(d .. "/snapshots/snapshot.bin"))
    assert.equal(1800000000, snap.timestamp)
    assert.is_nil(lfs.attributes(d .. "/snapshots/snapshot.bin.tmp"))
    assert.equal(wal, io.open(d .. "/wal/actionqueue.wal", "rb"):read("a"))
    out = aqstore("recover " .. d)
    assert.matches("RECOVERED snapshot_loaded=true snapshot_sequence=2 ", out, 1, true)
    assert.matches("runs by state: Scheduled=1", out, 1, true)
    assert.matches("rc=0", out, 1, true)
    rm(d)
    d = datadir()
    write_wal(d, { { 1, run(R1, T1) } })
    out = aqstore("compact " .. d .. " --timestamp 5 --out " .. d .. "/x.snap")
    assert.equal("ERR snapshot run " .. R1 .. " references unknown task " .. T1 .. "\nrc=1\n", out)
    assert.is_nil(lfs.attributes(d .. "/x.snap"))
    rm(d)
  end)
end)
