--- The snapshot of a projection, in the canonical order of recovery.md §12: built as a
-- Lua table and validated the way the reference builder does (`build`), or streamed as
-- its canonical encoding into an atomic writer without a second copy of the state
-- (`write`: compaction, issue 15.4).
--
-- Both come from one table of producers, one per field of the snapshot schema's root
-- record: a value, or (the lists) an iterator over the elements in canonical order.
-- The projection is read only through `recovery/state.lua`'s read functions and its
-- plain collections.
-- @module actionqueue.storage.recovery.to_snapshot
local core = require "actionqueue.storage.core"
local S = require "actionqueue.storage.schema.snapshot"
local state_mod = require "actionqueue.storage.recovery.state"
local tablex = require "actionqueue.storage.tablex"
local copy = tablex.copy

local M = {}

-- Ids are lower-case hyphenated text, whose byte order equals UUID byte order.
local function sorted_keys(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- An iterator over a list.
local function each(list)
  local i = 0
  return function()
    i = i + 1
    return list[i]
  end
end

local DIM_ORDER = { Token = 1, CostCents = 2, TimeSecs = 3 }

local function sorted_copies(map, less)
  local out = {}
  for _, v in pairs(map) do out[#out + 1] = copy(v) end
  table.sort(out, less)
  return out
end

local function records(map)
  local out = {}
  for i, k in ipairs(sorted_keys(map)) do out[i] = copy(map[k]) end
  return out
end

-- The producers of the root record's fields: `(st, timestamp) -> value` for the others,
-- `(st, timestamp) -> iterator` for the lists (the elements are fresh tables that share
-- no mutable table with the projection; specs, filters and byte strings are shared
-- read-only values).
local FIELDS = {
  version = function() return S.FRAME_VERSION end,
  timestamp = function(_, ts) return ts end,
  metadata = function(st)
    return { schema_version = S.SCHEMA_VERSION, wal_sequence = st.latest,
             task_count = state_mod.task_count(st), run_count = state_mod.run_count(st) }
  end,
  tasks = function(st)
    local it = state_mod.each_task(st)
    return function()
      local _, t = it()
      if t then
        return { task_spec = t.spec, created_at = t.created_at, updated_at = t.updated_at,
                 canceled_at = t.canceled_at }
      end
    end
  end,
  runs = function(st)
    local it = state_mod.each_run(st)
    return function()
      local _, r = it()
      if r then
        return { run_instance = r.instance, state_history = r.history, attempts = r.attempts,
                 lease = r.lease_meta }
      end
    end
  end,
  engine = function(st)
    local eng = st.engine
    return { paused = eng.paused and true or false, paused_at = eng.paused_at,
             resumed_at = eng.resumed_at }
  end,
  dependency_declarations = function(st, ts)
    local deps = {}
    for i, id in ipairs(sorted_keys(st.deps)) do
      deps[i] = { task_id = id, depends_on = sorted_keys(st.deps[id]), declared_at = ts }
    end
    return each(deps)
  end,
  budgets = function(st)
    return each(sorted_copies(st.budgets, function(a, b)
      if a.task_id ~= b.task_id then return a.task_id < b.task_id end
      return DIM_ORDER[a.dimension] < DIM_ORDER[b.dimension]
    end))
  end,
  subscriptions = function(st) return each(records(st.subscriptions)) end,
  actors = function(st) return each(records(st.actors)) end,
  tenants = function(st) return each(records(st.tenants)) end,
  role_assignments = function(st)
    return each(sorted_copies(st.roles, function(a, b)
      if a.actor_id ~= b.actor_id then return a.actor_id < b.actor_id end
      return a.tenant_id < b.tenant_id
    end))
  end,
  capability_grants = function(st)
    local grants = {}
    for _, g in pairs(st.grants) do
      grants[#grants + 1] = { copy(g), state_mod.capability_key(g.capability) }
    end
    table.sort(grants, function(x, y)
      local a, b = x[1], y[1]
      if a.actor_id ~= b.actor_id then return a.actor_id < b.actor_id end
      if x[2] ~= y[2] then return x[2] < y[2] end
      return a.tenant_id < b.tenant_id
    end)
    for i = 1, #grants do grants[i] = grants[i][1] end
    return each(grants)
  end,
  ledger_entries = function(st)
    local i = 0
    return function()
      i = i + 1
      local e = st.ledger[i]
      return e and copy(e)
    end
  end,
}
for _, f in ipairs(S.Snapshot.fields) do
  assert(FIELDS[f.name], "to_snapshot: no producer for the snapshot field " .. f.name)
end

--- The snapshot of the projection at `timestamp`, lists in canonical order.
-- The snapshot shares no mutable table with the projection (records are copied; specs,
-- filters and byte strings are shared read-only values).
function M.build_unchecked(st, timestamp)
  local snap = {}
  for _, f in ipairs(S.Snapshot.fields) do
    local v = FIELDS[f.name](st, timestamp)
    if f.type.kind == "list" then
      local list = {}
      for e in v do list[#list + 1] = e end
      v = list
    end
    snap[f.name] = v
  end
  return snap
end

--- Builds and validates: returns the snapshot, or nil and the violation
-- (`err.message` is the bare §4 text, as the reference builder reports it).
function M.build(st, timestamp)
  assert(math.type(timestamp) == "integer", "to_snapshot: integer timestamp expected")
  local snap = M.build_unchecked(st, timestamp)
  local validate = require("actionqueue.storage.snapshot.validate").validate
  local ok, v = validate(snap)
  if not ok then return nil, v end
  return snap
end

-- Elements are encoded BATCH at a time (one encoder call and one string per batch).
local BATCH = 256
-- Written to the writer in pieces of about this size.
local CHUNK = 65536

--- Streams the canonical encoding of the projection's snapshot at `timestamp` into
-- `w` (an AtomicWriter inside `begin_frame`), collection by collection and element by
-- element: no snapshot table beside the projection. The bytes are those of
-- `build_unchecked` + the canonical encoder. No validation (see `write`).
-- @return true | nil, message (the encoder's, with the collection's name) | nil, msg,
--   ENAME (the writer's)
function M.encode(st, timestamp, w)
  local pending, size = {}, 0
  local function put(s)
    pending[#pending + 1] = s
    size = size + #s
    if size >= CHUNK then
      local ok, m, e = w:write(table.concat(pending))
      if not ok then return nil, m, e end
      pending, size = {}, 0
    end
    return true
  end
  local function fail(name, msg) return nil, name .. ": " .. tostring(msg) end
  local ok, m, e = put("{")
  for i, f in ipairs(S.Snapshot.fields) do
    if ok then ok, m, e = put((i > 1 and ',"' or '"') .. f.name .. '":') end
    if not ok then return nil, m, e end
    local v = FIELDS[f.name](st, timestamp)
    if f.type.kind ~= "list" then
      local text, err = core.json_encode(v, f.type)
      if not text then return fail(f.name, err) end
      ok, m, e = put(text)
    else
      -- one batch of elements: "[a,b]" -> "a,b" after the previous batch's ","
      local batch, n, first = {}, 0, true
      local function flush_batch()
        local text, err = core.json_encode(batch, f.type)
        if not text then return fail(f.name, err) end
        batch, n = {}, 0
        local r1, m1, e1 = put((first and "" or ",") .. text:sub(2, -2))
        first = false
        return r1, m1, e1
      end
      ok, m, e = put("[")
      for elem in v do
        if not ok then break end
        n = n + 1
        batch[n] = elem
        if n == BATCH then ok, m, e = flush_batch() end
      end
      if ok and n > 0 then ok, m, e = flush_batch() end
      if ok then ok, m, e = put("]") end
    end
    if not ok then return nil, m, e end
  end
  ok, m, e = put("}")
  if ok and size > 0 then ok, m, e = w:write(table.concat(pending)) end
  if not ok then return nil, m, e end
  return true
end

--- Writes the projection's snapshot at `timestamp` atomically to `path`, streamed
-- (`encode`), then judged before it replaces `path`: the new file's streamed verdict
-- (decode-time checks and the §6 rules, csrc/verdict.c) must be good. Otherwise nothing
-- is written and `false` is returned: the caller takes the table path (`build` +
-- `snapshot.write`), which gives the reference builder's texts.
-- @tparam table st the projection
-- @tparam integer timestamp
-- @tparam string path
-- @return true | false (not judged good, or the encoder refused a value: nothing
--   written) | nil, err (the writer's IoError, like `snapshot.write`)
function M.write(st, timestamp, path)
  assert(math.type(timestamp) == "integer", "to_snapshot: integer timestamp expected")
  local write = require "actionqueue.storage.snapshot.write"
  local load = require "actionqueue.storage.snapshot.load"
  local refused = {}
  local ok, err = write.stream(path, function(w)
    local done, msg = M.encode(st, timestamp, w)
    if not done then return nil, refused, msg end
    return true
  end, function(w)
    return load.verdict_result(w:temp_path()).status == "ok", refused
  end)
  if ok == false or err == refused then return false end
  return ok, err
end

return M
