--- Builds a complete, valid snapshot from friendly plain tables.
--
-- The input is walked against the snapshot schema (schema/snapshot.lua): every value is
-- type-checked by its schema type, unknown fields are rejected, and missing fields get
-- defaults. Errors name the document path, e.g.
-- `tasks[2].task_spec.constraints.max_attempts: expected u32, got -1`.
--
-- Defaults, besides the schema's own (`default = ...` in the records):
--
-- * snapshot: `version` 4, `timestamp` os.time(), `metadata.schema_version` 8,
--   `wal_sequence` 0 (a top-level `wal_sequence` key is accepted too), `task_count` /
--   `run_count` from the lists, empty collections, engine not paused;
-- * a missing own id (task, run, attempt, subscription, actor, tenant, ledger entry) is a
--   fresh v4 UUID; ids are accepted in the four spellings and stored lower-case;
-- * a missing `*_at`/`timestamp` u64 is the snapshot timestamp; a missing list is `{}`,
--   a missing bool `false`, an optional `nil`;
-- * tasks: the TaskSpec fields may be given directly on the task; `payload` may be a
--   Lua string; `run_policy` "Once"; `max_attempts` 1; `priority` 0;
-- * runs: the RunInstance fields may be given directly on the run, `task = <index or id>`
--   names the task; `state` "Scheduled"; `scheduled_at` = `created_at`; a valid
--   `state_history` (shortest path from Scheduled, all at `created_at`); `attempts` (one
--   open attempt when `current_attempt_id` is given); `attempt_count` = #attempts;
--   `effective_priority` = the task's priority; `last_state_change_at` = last history time;
-- * bytes may be Lua strings or lists of 0-255; u64 may also be decimal strings (for
--   values above 2^63-1).
--
-- The result is validated (§6) unless `opts.validate == false`.
-- @module actionqueue.storage.snapshot.build
local dsl = require "actionqueue.storage.schema.dsl"
local S = require "actionqueue.storage.schema.snapshot"
local T = require "actionqueue.storage.schema.types"
local errors = require "actionqueue.storage.errors"
local sm = require "actionqueue.storage.statemachine"
local uuid = require "actionqueue.storage.uuid"
local validate = require "actionqueue.storage.snapshot.validate"

local M = {}

local Fail = {}
Fail.__index = Fail

local function fail(path, message)
  error(setmetatable({ path = path, message = message }, Fail), 0)
end

-- Paths are built lazily: a node `{up = parent, key = name_or_index}` (nil = root) that
-- becomes text ("tasks[2].task_spec.id") only when an error is reported.
local function text(path)
  if path == nil then return "" end
  if type(path) == "string" then return path end
  local up = text(path.up)
  if math.type(path.key) == "integer" then return string.format("%s[%d]", up, path.key) end
  if up == "" then return path.key end
  return up .. "." .. path.key
end

local function join(path, key)
  return { up = path, key = key }
end

local function show(v)
  local tv = type(v)
  if tv == "string" then
    if #v > 40 then v = v:sub(1, 37) .. "..." end
    return string.format("%q", v)
  elseif tv == "number" then
    return math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
  elseif tv == "table" then
    return "a table"
  end
  return tostring(v)
end

local function expected(path, what, v)
  fail(path, "expected " .. what .. ", got " .. show(v))
end

-- Owned identity fields: generated when missing.
local OWN_ID = {
  [T.TaskSpec] = "id", [T.RunInstance] = "id", [S.AttemptHistoryEntry] = "attempt_id",
  [S.Subscription] = "subscription_id", [S.Actor] = "actor_id", [S.Tenant] = "tenant_id",
  [S.LedgerEntry] = "entry_id",
}

local copy = require("actionqueue.storage.tablex").copy

-- Moves the keys of `v` that are fields of `rec` into a sub-table `key` (when absent).
local function nest(v, key, rec, extra)
  if v[key] ~= nil then return v end
  local inner, outer = {}, {}
  for k, x in pairs(v) do
    if rec.by_name[k] or (extra and extra[k]) then inner[k] = x else outer[k] = x end
  end
  outer[key] = inner
  return outer
end

-- Shortest valid history of each state (computed once).
local SHORTEST = {}
for _, state in ipairs(sm.states) do SHORTEST[state] = sm.path("Scheduled", state) end

local function set_default(v, k, d)
  if v[k] == nil then v[k] = d end
end

-- Pre-hooks: friendly forms and defaults that need context. They get a copy of the input
-- table (or the raw value) and return the table to walk.
local pre = {}

pre[S.Snapshot] = function(v, ctx)
  v = copy(v)
  set_default(v, "version", S.FRAME_VERSION)
  set_default(v, "timestamp", os.time())
  ctx.timestamp = v.timestamp
  local md = type(v.metadata) == "table" and copy(v.metadata) or v.metadata
  if md == nil then md = {} end
  if type(md) == "table" then
    set_default(md, "schema_version", S.SCHEMA_VERSION)
    set_default(md, "wal_sequence", v.wal_sequence or 0)
    set_default(md, "task_count", type(v.tasks) == "table" and #v.tasks or 0)
    set_default(md, "run_count", type(v.runs) == "table" and #v.runs or 0)
  end
  v.wal_sequence = nil
  v.metadata = md
  return v
end

pre[S.Task] = function(v)
  return nest(v, "task_spec", T.TaskSpec)
end

pre[T.TaskSpec] = function(v)
  v = copy(v)
  set_default(v, "payload", "")
  set_default(v, "run_policy", "Once")
  set_default(v, "constraints", {})
  set_default(v, "metadata", {})
  return v
end

pre[T.TaskPayload] = function(v)
  if type(v) == "string" then return { bytes = v } end
  if type(v) == "table" then v = copy(v); set_default(v, "bytes", "") end
  return v
end

pre[T.TaskConstraints] = function(v)
  v = copy(v)
  set_default(v, "max_attempts", 1)
  return v
end

pre[T.TaskMetadata] = function(v)
  v = copy(v)
  set_default(v, "priority", 0)
  return v
end

-- `task = <index or id>` on records that have a task_id field.
local function resolve_task(v, path, ctx)
  if v.task == nil then return v end
  v = copy(v)
  local ref = v.task
  v.task = nil
  if v.task_id ~= nil then fail(join(path, "task"), "give either task or task_id") end
  if math.type(ref) == "integer" then
    local tasks = ctx.root.tasks or {}
    local t = tasks[ref]
    if not t then fail(join(path, "task"), "no task at index " .. ref) end
    v.task_id = t.task_spec.id
  else
    v.task_id = ref
  end
  return v
end

-- Priority of a built task (by id), 0 when unknown; the index is made once, after the
-- task list has been built (runs come after tasks in schema order).
local function task_priority(ctx, task_id)
  if not ctx.priority then
    ctx.priority = {}
    for _, t in ipairs(ctx.root.tasks or {}) do ctx.priority[t.task_spec.id] = t.task_spec.metadata.priority end
  end
  return ctx.priority[uuid.normalize(task_id) or task_id] or 0
end

pre[S.Run] = function(v, ctx, path)
  v = nest(v, "run_instance", T.RunInstance, { task = true })
  v = copy(v)
  if type(v.run_instance) ~= "table" then return v end
  local ri = resolve_task(copy(v.run_instance), join(path, "run_instance"), ctx)
  set_default(ri, "state", "Scheduled")
  set_default(ri, "created_at", ctx.timestamp)
  set_default(ri, "scheduled_at", ri.created_at)
  if v.attempts == nil then
    v.attempts = {}
    if ri.current_attempt_id ~= nil then
      v.attempts[1] = { attempt_id = ri.current_attempt_id, started_at = ri.created_at }
    end
  end
  if type(v.attempts) == "table" then set_default(ri, "attempt_count", #v.attempts) end
  if v.state_history == nil then
    local states = SHORTEST[ri.state]
    if states then
      local h = {}
      for i, s in ipairs(states) do
        h[i] = { from = states[i - 1], to = s, timestamp = ri.created_at }
      end
      v.state_history = h
    end
  end
  if ri.last_state_change_at == nil and type(v.state_history) == "table" then
    local last = v.state_history[#v.state_history]
    ri.last_state_change_at = type(last) == "table" and last.timestamp or ri.created_at
  end
  if ri.effective_priority == nil and ri.task_id ~= nil then
    ri.effective_priority = task_priority(ctx, ri.task_id)
  end
  v.run_instance = ri
  return v
end

pre[T.RunInstance] = function(v)
  v = copy(v)
  set_default(v, "effective_priority", 0)
  return v
end

pre[S.Budget] = function(v, ctx, path)
  v = resolve_task(v, path, ctx)
  v = copy(v)
  set_default(v, "consumed", 0)
  return v
end

pre[S.DependencyDeclaration] = function(v, ctx, path) return resolve_task(v, path, ctx) end
pre[S.Subscription] = function(v, ctx, path) return resolve_task(v, path, ctx) end

-- Generic default of a missing field (after the schema's own default).
local function generic_default(rec, field, ctx)
  local t = field.type
  if OWN_ID[rec] == field.name then return uuid.v4() end
  if t.kind == "list" then return {} end
  if t.kind == "bool" then return false end
  if t.kind == "u64" and (field.name == "timestamp" or field.name:match("_at$")) then
    return ctx.timestamp
  end
  return nil
end

local function variant_list(enum)
  local names = {}
  for _, var in ipairs(enum.variants) do
    if not var.feature then names[#names + 1] = "`" .. var.name .. "`" end
  end
  if #names == 2 then return names[1] .. " or " .. names[2] end
  return "one of " .. table.concat(names, ", ")
end

local function parse_u64(s)
  if not s:match("^%d+$") or #s > 20 then return nil end
  local n = 0
  for i = 1, #s do
    local d = s:byte(i) - 48
    -- overflow check: n * 10 + d must stay below 2^64
    if math.ult(0x1999999999999999, n) or (n == 0x1999999999999999 and d > 5) then return nil end
    n = n * 10 + d
  end
  return n
end

local coerce

local function coerce_record(rec, v, path, ctx)
  if pre[rec] then v = pre[rec](type(v) == "table" and v or v, ctx, path) end
  if type(v) ~= "table" then expected(path, rec.name, v) end
  local unknown
  for k in pairs(v) do
    if type(k) ~= "string" or not rec.by_name[k] then
      local name = tostring(k)
      if not unknown or name < unknown then unknown = name end
    end
  end
  if unknown then fail(join(path, unknown), "unknown field") end
  local out = {}
  if rec == S.Snapshot then ctx.root = out end
  for _, f in ipairs(rec.fields) do
    local x = v[f.name]
    if x == nil then
      x = dsl.default_of(f)
      if x == nil then x = generic_default(rec, f, ctx) end
      if x == nil and f.type.kind ~= "option" then fail(join(path, f.name), "missing field") end
    end
    out[f.name] = coerce(f.type, x, path, f.name, ctx)
  end
  if rec.check then
    local msg = rec.check(out)
    if msg then fail(path, msg) end
  end
  return out
end

local function coerce_enum(enum, v, path, ctx)
  local name, payload
  if type(v) == "string" then
    name = v
  elseif type(v) == "table" then
    name = next(v)
    if name == nil or next(v, name) ~= nil or type(name) ~= "string" then
      expected(path, enum.name .. " (a variant name or a one-key table)", v)
    end
    payload = v[name]
  else
    expected(path, enum.name, v)
  end
  local var = enum.by_name[name]
  if not var or var.feature then
    fail(path, string.format("unknown variant `%s`, expected %s", tostring(name), variant_list(enum)))
  end
  if not var.type then
    if payload ~= nil and payload ~= true and not (type(payload) == "table" and next(payload) == nil) then
      fail(join(path, name), "unit variant takes no value, got " .. show(payload))
    end
    return name
  end
  if payload == nil then
    fail(path, string.format("variant `%s` needs a value: {%s = ...}", name, name))
  end
  local out = { [name] = coerce(var.type, payload, path, name, ctx) }
  if var.check then
    local msg = var.check(out)
    if msg then fail(path, msg) end
  end
  return out
end

coerce = function(t, v, up, key, ctx)
  local k = t.kind
  -- scalars make their path node only when they fail
  local path
  if k == "record" or k == "list" or k == "enum" or k == "bytes" then path = join(up, key) end
  if k == "record" then return coerce_record(t, v, path, ctx) end
  if k == "enum" then return coerce_enum(t, v, path, ctx) end
  if k == "option" then
    if v == nil then return nil end
    return coerce(t.of, v, up, key, ctx)
  end
  if k == "list" then
    if type(v) ~= "table" then expected(path, "a list", v) end
    local n = #v
    for i in pairs(v) do
      if math.type(i) ~= "integer" or i < 1 or i > n then
        fail(path, "expected a list, got a table with key " .. show(i))
      end
    end
    local out = {}
    for i = 1, n do out[i] = coerce(t.of, v[i], path, i, ctx) end
    return out
  end
  if k == "id" then
    if type(v) ~= "string" then expected(join(up, key), t.name .. " (a UUID string)", v) end
    local id, err = uuid.normalize(v)
    if not id then fail(join(up, key), err) end
    return id
  end
  if k == "u64" then
    local n = type(v) == "number" and math.tointeger(v) or (type(v) == "string" and parse_u64(v))
    if not n or (type(v) == "number" and n < 0) then expected(join(up, key), "u64", v) end
    return n
  end
  if t.min then -- u8, u16, u32, i32
    local n = type(v) == "number" and math.tointeger(v)
    if not n or n < t.min or n > t.max then expected(join(up, key), k, v) end
    return n
  end
  if k == "bool" then
    if type(v) ~= "boolean" then expected(join(up, key), "bool", v) end
    return v
  end
  if k == "string" then
    if type(v) ~= "string" then expected(join(up, key), "string", v) end
    if not utf8.len(v) then fail(join(up, key), "expected a UTF-8 string") end
    return v
  end
  if k == "bytes" then
    if type(v) == "string" then return v end
    if type(v) ~= "table" then expected(path, "bytes (a string or a list of 0-255)", v) end
    local b = {}
    for i = 1, #v do
      local n = math.type(v[i]) == "integer" and v[i] or nil
      if not n or n < 0 or n > 255 then expected(join(path, i), "u8", v[i]) end
      b[i] = string.char(n)
    end
    return table.concat(b)
  end
  error("build: unsupported schema kind " .. tostring(k))
end

--- Builds a snapshot from a friendly table.
-- @tparam table t the snapshot description (every field optional)
-- @tparam[opt] table opts `{validate = false}` to skip the §6 validation of the result
-- @treturn table|nil the snapshot
-- @treturn table a `BuildError` (`path`, `problem`, `message` = "path: problem"; `rule`
--   when the result breaks a validation rule)
function M.build(t, opts)
  if t == nil then t = {} end
  local ctx = { timestamp = 0 }
  local ok, res = pcall(coerce_record, S.root, t, nil, ctx)
  if not ok then
    if getmetatable(res) ~= Fail then error(res, 0) end
    local path = text(res.path)
    local msg = path == "" and res.message or (path .. ": " .. res.message)
    return nil, errors.new("BuildError", { path = path, problem = res.message }, msg)
  end
  if not (opts and opts.validate == false) then
    local valid, v = validate.validate(res)
    if not valid then
      return nil, errors.new("BuildError", { path = v.path, problem = v.message, rule = v.kind },
        v.path .. ": " .. v.message)
    end
  end
  return res
end

return M
