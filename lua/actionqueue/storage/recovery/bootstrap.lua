--- Recovery bootstrap: data dir -> projection (recovery.md §2, §5-§7).
--
-- Layout: `<dir>/snapshots/snapshot.bin`, `<dir>/wal/actionqueue.wal`. It only reads:
-- a read-only data dir recovers, and nothing is created unless `opts.bootstrap` asks for
-- the reference's side effects (both folders and an empty WAL file when missing). It
-- never truncates or rewrites an existing WAL, and never touches the snapshot file.
-- @module actionqueue.storage.recovery.bootstrap
local datadir = require "actionqueue.storage.datadir"
local errors = require "actionqueue.storage.errors"
local state_mod = require "actionqueue.storage.recovery.state"
local reducer = require "actionqueue.storage.recovery.reducer"
local sm = require "actionqueue.storage.statemachine"
local T = require "actionqueue.storage.schema.types"
local W = require "actionqueue.storage.schema.wal"

local M = {}


--- Bootstrap error prefixes (§2.1).
M.PREFIX = {
  WalInit = "WAL init error: ",
  WalRead = "WAL read error: ",
  SnapshotLoad = "snapshot load error: ",
  WalReplay = "WAL replay error: ",
  SnapshotBootstrap = "snapshot bootstrap error: ",
}

local function fail(kind, text, cause)
  return nil, errors.new(kind, { cause = cause, text = text }, M.PREFIX[kind] .. text)
end

-- Steps 1 and 3 (recovery.md §2): the folders and the reader (step 2's strict scan is
-- part of the one WAL pass, `replay_pass`).
-- Reading needs no write access and creates nothing: without `create` the folders are
-- only checked (a component that is not a directory fails as the engine's mkdir would)
-- and a missing WAL reads as the empty file the engine would have created. With
-- `create` (opts.bootstrap) the engine's side effects are reproduced first: both
-- folders and an empty WAL file.
-- Returns reader | nil, kind, text.
local function open_wal(wal_path, snap_path, create)
  local fsutil = require "actionqueue.storage.fsutil"
  local reader = require "actionqueue.storage.wal.reader"
  local appender = require "actionqueue.storage.wal.appender"
  for _, d in ipairs { fsutil.dirname(wal_path), fsutil.dirname(snap_path) } do
    local ok, err = fsutil.mkdir_p(d, { check_only = not create })
    if not ok then return nil, "WalInit", err end
  end
  if create then
    local err = appender.create_file(wal_path)
    if err then return nil, "WalInit", err.message end
  end
  local rd, rerr = reader.open(wal_path)
  if not rd then
    if rerr.errno == "ENOENT" and not create then return reader.empty(), 0, 0 end
    -- the engine's appender open (step 2) fails before its reader would
    return nil, "WalInit", appender.open_error({ kind = "IoError", errno = rerr.errno,
      message = "I/O error: " .. rerr.os_message }).message
  end
  return rd
end

-- The replay pass's postcard skim (every record validated, the default build's features).
local REPLAY_SCHEMA = require("actionqueue.storage.core").schema(W.WalEvent)
local SKIM = { skim = true }

-- Hydration of one snapshot collection: `hydrate(items, apply, bad, st)` replays the
-- synthesized events of recovery.md §5 for the value of snapshot field `name` through
-- `apply(variant, fields)`; `bad(text)` aborts hydration. One entry per collection of
-- schema.snapshot's Snapshot record (recovery_schema_spec checks it), in §5's order.
-- An event's fields are read from the snapshot record by name (schema.wal's fields), so
-- a field both records share needs no change here.
-- The fields of each WalEventType variant, in schema order.
local EVENT_FIELDS = {}
for _, v in ipairs(W.WalEventType.variants) do
  local names = {}
  for k, f in ipairs(v.type.fields) do names[k] = f.name end
  EVENT_FIELDS[v.name] = names
end

-- The synthesized event `variant` of snapshot record `item`: every field of the event
-- is the record's field of the same name (or of the name `renamed[field]`), and the
-- `timestamp` is the record's `ts_field`.
local function synthesize(variant, item, ts_field, renamed)
  local e = {}
  for _, name in ipairs(EVENT_FIELDS[variant]) do
    local src = name == "timestamp" and ts_field or (renamed and renamed[name]) or name
    e[name] = item[src]
  end
  return e
end

-- A hydration step for a collection whose records each give the event `first` (at
-- timestamp field `ts`) and then, for every `{variant, ts_field}` of `later` whose
-- timestamp is present, that event.
local function events(first, ts, later)
  return function(items, apply)
    for _, item in ipairs(items) do
      apply(first, synthesize(first, item, ts))
      for _, l in ipairs(later or {}) do
        if item[l[2]] ~= nil then apply(l[1], synthesize(l[1], item, l[2])) end
      end
    end
  end
end

local function tasks(items, apply)
  for _, t in ipairs(items) do
    apply("TaskCreated", synthesize("TaskCreated", t, "created_at"))
    if t.canceled_at ~= nil then
      apply("TaskCanceled", { task_id = t.task_spec.id, timestamp = t.canceled_at })
    end
  end
end

local function engine(eng, apply)
  if eng.paused_at ~= nil then apply("EnginePaused", { timestamp = eng.paused_at }) end
  if eng.resumed_at ~= nil then apply("EngineResumed", { timestamp = eng.resumed_at }) end
end

local function runs(items, apply, bad, st)
  for _, r in ipairs(items) do
    local ri = r.run_instance
    local created = {
      id = ri.id, task_id = ri.task_id, state = "Scheduled", attempt_count = 0,
      created_at = ri.created_at, scheduled_at = ri.scheduled_at, effective_priority = 0,
      last_state_change_at = ri.created_at,
    }
    -- the engine re-creates the run: RunInstance's decode-time check (nil ids here)
    local msg = T.RunInstance.check(created)
    if msg then bad(msg) end
    apply("RunCreated", { run_instance = created })
    local prev = "Scheduled"
    local hist = r.state_history or {}
    for i = 2, #hist do
      local h = hist[i]
      if h.from ~= prev then bad("invalid snapshot state history for bootstrap") end
      if not sm.can_transition(prev, h.to) then
        bad("invalid snapshot state transition for bootstrap")
      end
      apply("RunStateChanged", { run_id = ri.id, previous_state = prev, new_state = h.to,
                                 timestamp = h.timestamp })
      prev = h.to
    end
    if prev ~= ri.state then bad("snapshot state history does not match run state") end
    -- 4.4-4.6: attempt count and active attempt from the attempt list, both histories
    -- verbatim, the lease (active lease and metadata)
    local attempts = r.attempts or {}
    local last, current = attempts[#attempts], nil
    if ri.state == "Running" and last and last.finished_at == nil then current = last.attempt_id end
    st.core:seed_run(ri.id, #attempts, current, hist, attempts, r.lease)
  end
end

local CONSUMED = { amount = "consumed" }

local function budgets(items, apply)
  for _, b in ipairs(items) do
    local ts = "allocated_at"
    apply("BudgetAllocated", synthesize("BudgetAllocated", b, ts))
    if b.consumed ~= 0 then apply("BudgetConsumed", synthesize("BudgetConsumed", b, ts, CONSUMED)) end
    if b.exhausted and math.ult(b.consumed, b.limit) then
      apply("BudgetExhausted", synthesize("BudgetExhausted", b, ts))
    end
  end
end

--- The hydration steps `{snapshot field, hydrate}` in the order of recovery.md §5.
M.HYDRATION = {
  { "tasks", tasks },
  { "dependency_declarations", events("DependencyDeclared", "declared_at") },
  { "engine", engine },
  { "runs", runs },
  { "budgets", budgets },
  { "subscriptions", events("SubscriptionCreated", "created_at",
    { { "SubscriptionTriggered", "triggered_at" }, { "SubscriptionCanceled", "canceled_at" } }) },
  { "actors", events("ActorRegistered", "registered_at", { { "ActorDeregistered", "deregistered_at" } }) },
  { "tenants", events("TenantCreated", "created_at") },
  { "role_assignments", events("RoleAssigned", "assigned_at") },
  { "capability_grants", events("CapabilityGranted", "granted_at", { { "CapabilityRevoked", "revoked_at" } }) },
  { "ledger_entries", events("LedgerEntryAppended", "timestamp") },
}

local HYDRATE_ERROR = {}

--- Hydrates a fresh projection from a loaded snapshot (§5).
-- @return state, events applied | nil, err (text of the hydration failure)
function M.hydrate(snap)
  local st = state_mod.new()
  local k, count = 1, 0
  local function apply(variant, fields)
    local ok, err = reducer.apply_event(st, k, variant, fields)
    if not ok then error({ [HYDRATE_ERROR] = err }, 0) end
    k = k + 1
    count = count + 1
  end
  local function bad(text)
    error({ [HYDRATE_ERROR] = errors.new("Hydration", nil, text) }, 0)
  end
  local ok, perr = pcall(function()
    for _, step in ipairs(M.HYDRATION) do
      step[2](snap[step[1]] or {}, apply, bad, st)
    end
  end)
  if not ok then
    if type(perr) == "table" and perr[HYDRATE_ERROR] then return nil, perr[HYDRATE_ERROR] end
    error(perr, 0)
  end
  st.latest = snap.metadata.wal_sequence
  return st, count
end

--- Loads the snapshot file: snap | false (none) | nil, err (snapshot.load's contract).
function M.load_snapshot(path)
  return require("actionqueue.storage.snapshot").load(path)
end

--- Runs the bootstrap on a data dir.
-- @tparam string dir data directory
-- @tparam[opt] table opts `snapshot_path`, `wal_path` overrides; `on_warning(text)`;
--   `bootstrap` (create the folders and an empty WAL when missing, as the engine does)
-- @return result | nil, err. The result: `state`, `snapshot_loaded`, `snapshot_sequence`,
--   `snapshot_events_applied`, `wal_replay_events_applied`, `events_applied_total`,
--   `wal_writer_sequence`, `recovery_duration_seconds`, `warnings` (list of texts),
--   `wal_path`, `snapshot_path`.
function M.run(dir, opts)
  opts = opts or {}
  local clock = require("actionqueue.storage.core").proc_clock
  local started = clock()
  local warnings = {}
  local function warn(text)
    warnings[#warnings + 1] = text
    if opts.on_warning then opts.on_warning(text) end
  end
  local wal_path = opts.wal_path or (dir .. "/" .. datadir.WAL_FILE)
  local snap_path = opts.snapshot_path or (dir .. "/" .. datadir.SNAPSHOT_FILE)

  -- 1. and 3. folders, reader (read-only unless opts.bootstrap)
  local rd, open_kind, open_text = open_wal(wal_path, snap_path, opts.bootstrap)
  if not rd then return fail(open_kind, open_text) end
  -- Closed on every way out of this function, a raise included (Reader:close is
  -- idempotent, so the explicit closes below stay harmless).
  local closer <close> = setmetatable({}, { __close = function() rd:close() end }) -- luacheck: ignore 211

  -- 4. snapshot. Loaded before the WAL pass (which needs its sequence), but its warnings
  -- are reported only once the WAL passed step 2, as in the reference's order.
  local held = {}
  local st, snapshot_loaded, s, snap_events = nil, false, 0, 0
  local snap, lerr = M.load_snapshot(snap_path)
  if snap == nil then
    held[#held + 1] = "snapshot load failed, falling back to WAL-only replay: " ..
      tostring(lerr and lerr.message)
  elseif snap then
    local hst, n_or_err = M.hydrate(snap)
    if hst then
      st, snapshot_loaded, s, snap_events = hst, true, snap.metadata.wal_sequence, n_or_err
    else
      held[#held + 1] = "snapshot hydration failed, falling back to WAL-only replay: " ..
        tostring(n_or_err and n_or_err.message)
    end
  end
  st = st or state_mod.new()

  -- 2., 6. and 7. in one pass over the WAL
  local pass = M.replay_pass(rd, st, s)
  if pass.error then
    rd:close()
    local appender = require "actionqueue.storage.wal.appender"
    return fail("WalInit", appender.open_error(pass.error).message)
  end
  for _, text in ipairs(held) do warn(text) end
  local wal_max = pass.last_sequence

  local result = {
    state = st, snapshot_loaded = snapshot_loaded, snapshot_sequence = s,
    snapshot_events_applied = snap_events, wal_replay_events_applied = 0,
    wal_writer_sequence = wal_max, warnings = warnings,
    wal_path = wal_path, snapshot_path = snap_path,
  }
  local function finish()
    rd:close()
    local total = result.snapshot_events_applied + result.wal_replay_events_applied
    result.events_applied_total = total
    result.recovery_duration_seconds = math.max(0, clock() - started)
    return result
  end

  -- 5. snapshot ahead of the WAL (an error here discards whatever the pass replayed)
  if snapshot_loaded and math.ult(wal_max, s) then
    if wal_max == 0 then
      warn(string.format("snapshot sequence %u is ahead of an empty WAL", s))
    else
      rd:close()
      return fail("SnapshotBootstrap",
        string.format("snapshot sequence %u exceeds WAL max sequence %u", s, wal_max))
    end
  end
  -- 6. no record with sequence s + 1 (or s = u64::MAX): nothing replayed
  if not pass.started then return finish() end
  -- 7. the replay's outcome
  result.wal_replay_events_applied = pass.applied
  if pass.reducer_error then
    rd:close()
    return fail("WalReplay", "Reducer error: " .. pass.reducer_error.message, pass.reducer_error)
  end
  return finish()
end

--- The one pass over the WAL that does the bootstrap's steps 2, 6 and 7 (recovery.md §2):
-- the strict scan of every record in the writer-open classification order, the search
-- for the first record with sequence `s + 1` (from the start when `s` is 0; never when `s`
-- is u64::MAX, docs/recovery-deviations.md) and the replay of it and every later record
-- into `st`. Replay stops at the first reducer error; the scan goes on to the end, so a
-- corruption anywhere still wins (step 2 runs before the replay in the reference).
-- The loop is csrc/replay.c's (ReplayState:replay): every record is validated by the
-- postcard skim; the tasks' and runs' events are then applied from their payload without
-- a Lua value, the others decoded for their Lua handler (reducer.apply_payload).
-- @tparam Reader rd an open WAL reader
-- @tparam table st the projection (hydrated or empty)
-- @tparam integer s the snapshot sequence (0: none)
-- @treturn table `{error = scan error?, last_sequence, valid_bytes, started = bool,
--   applied = n, reducer_error = err?}`
function M.replay_pass(rd, st, s)
  if not rd.log then -- a missing WAL reads as empty
    return { last_sequence = 0, valid_bytes = 0, started = s == 0, applied = 0 }
  end
  local reader = require "actionqueue.storage.wal.reader"
  local core = require "actionqueue.storage.core"
  local iter, istate = core.frames(rd.log, { order = "writer_open", version = 5 })
  local r = st.core:replay(st, iter, istate, {
    decode = core.postcard_decode, schema = REPLAY_SCHEMA, skim = SKIM,
    started = s == 0, target = s ~= -1 and s + 1 or nil,
    other = reducer.apply_payload, error = reducer.error,
  })
  local err
  if r.decode_error then
    err = reader.corruption(r.decode_offset, "decode_failure", r.decode_error)
  else
    err = reader.status_error(r.status)
  end
  return {
    error = err, last_sequence = r.last_sequence, valid_bytes = r.valid_bytes,
    started = r.started, applied = r.applied, reducer_error = r.reducer_error,
  }
end

return M
