--- Builds a snapshot (Lua representation) from the projection, in the canonical order
-- of recovery.md §12, and validates it the way the reference builder does.
-- @module actionqueue.storage.recovery.to_snapshot
local S = require "actionqueue.storage.schema.snapshot"
local state_mod = require "actionqueue.storage.recovery.state"
local tablex = require "actionqueue.storage.tablex"
local copy, copy_list = tablex.copy, tablex.copy_list

local M = {}

-- Ids are lower-case hyphenated text, whose byte order equals UUID byte order.
local function sorted_keys(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local DIM_ORDER = { Token = 1, CostCents = 2, TimeSecs = 3 }

--- The snapshot of the projection at `timestamp`, lists in canonical order.
-- The snapshot shares no mutable table with the projection (records are copied; specs,
-- filters and byte strings are shared read-only values).
function M.build_unchecked(st, timestamp)
  local tasks = {}
  for _, t in state_mod.each_task(st) do
    tasks[#tasks + 1] = { task_spec = t.spec, created_at = t.created_at,
                          updated_at = t.updated_at, canceled_at = t.canceled_at }
  end

  local runs = {}
  for _, r in state_mod.each_run(st) do
    runs[#runs + 1] = { run_instance = r.instance, state_history = r.history,
                        attempts = r.attempts, lease = r.lease_meta }
  end

  local deps = {}
  for i, id in ipairs(sorted_keys(st.deps)) do
    deps[i] = { task_id = id, depends_on = sorted_keys(st.deps[id]), declared_at = timestamp }
  end

  local budgets = {}
  for _, b in pairs(st.budgets) do budgets[#budgets + 1] = copy(b) end
  table.sort(budgets, function(a, b)
    if a.task_id ~= b.task_id then return a.task_id < b.task_id end
    return DIM_ORDER[a.dimension] < DIM_ORDER[b.dimension]
  end)

  local function records(map)
    local out = {}
    for i, k in ipairs(sorted_keys(map)) do out[i] = copy(map[k]) end
    return out
  end

  local roles = {}
  for _, r in pairs(st.roles) do roles[#roles + 1] = copy(r) end
  table.sort(roles, function(a, b)
    if a.actor_id ~= b.actor_id then return a.actor_id < b.actor_id end
    return a.tenant_id < b.tenant_id
  end)

  local grants = {}
  for _, g in pairs(st.grants) do
    local c = copy(g)
    grants[#grants + 1] = { c, state_mod.capability_key(g.capability) }
  end
  table.sort(grants, function(x, y)
    local a, b = x[1], y[1]
    if a.actor_id ~= b.actor_id then return a.actor_id < b.actor_id end
    if x[2] ~= y[2] then return x[2] < y[2] end
    return a.tenant_id < b.tenant_id
  end)
  for i = 1, #grants do grants[i] = grants[i][1] end

  local eng = st.engine
  return {
    version = S.FRAME_VERSION,
    timestamp = timestamp,
    metadata = { schema_version = S.SCHEMA_VERSION, wal_sequence = st.latest,
                 task_count = #tasks, run_count = #runs },
    tasks = tasks,
    runs = runs,
    engine = { paused = eng.paused and true or false, paused_at = eng.paused_at,
               resumed_at = eng.resumed_at },
    dependency_declarations = deps,
    budgets = budgets,
    subscriptions = records(st.subscriptions),
    actors = records(st.actors),
    tenants = records(st.tenants),
    role_assignments = roles,
    capability_grants = grants,
    ledger_entries = copy_list(st.ledger),
  }
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

return M
