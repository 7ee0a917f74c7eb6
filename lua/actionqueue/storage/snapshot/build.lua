--- Builds a complete, valid snapshot from friendly plain tables.
--
-- The input is walked against the snapshot schema (schema/snapshot.lua): every value is
-- type-checked by its schema type, unknown fields are rejected, and missing fields get
-- defaults. Errors name the document path, e.g.
-- `tasks[2].task_spec.constraints.max_attempts: expected u32, got -1`.
--
-- Defaults, in this order for a missing field:
--
-- * the field's `build_default` attribute in the schema (schema/dsl.lua): TaskSpec
--   `payload` "", `run_policy` "Once", `constraints` and `metadata` {}; `max_attempts` 1;
--   `priority` 0; `effective_priority` 0 (but see runs); a budget's `consumed` 0;
-- * the schema's own `default` (the engine's serde defaults);
-- * a field marked `own_id` in the schema (task, run, attempt, subscription, actor,
--   tenant, ledger entry) is a fresh v4 UUID;
-- * by type: a missing list is `{}`, a bool `false`, a `*_at`/`timestamp` u64 the
--   snapshot timestamp, an optional `nil`.
--
-- Friendly forms and defaults that need context:
--
-- * snapshot: `version` 4, `timestamp` os.time(), `metadata.schema_version` 8,
--   `wal_sequence` 0 (a top-level `wal_sequence` key is accepted too), `task_count` /
--   `run_count` from the lists;
-- * tasks: the TaskSpec fields may be given directly on the task; `payload` may be a
--   Lua string;
-- * runs: the RunInstance fields may be given directly on the run, `task = <index or id>`
--   names the task (also on budgets, dependency declarations and subscriptions);
--   `state` "Scheduled"; `scheduled_at` = `created_at`; a valid `state_history`
--   (shortest path from Scheduled, all at `created_at`); `attempts` (one open attempt
--   when `current_attempt_id` is given); `attempt_count` = #attempts;
--   `effective_priority` = the task's priority; `last_state_change_at` = last history time;
-- * ids are accepted in the four spellings and stored lower-case; bytes may be Lua
--   strings or lists of 0-255; u64 may also be decimal strings (for values above 2^63-1).
--
-- The schema is compiled once into one specialised coercer per type (generated Lua code
-- for records: plain records below a record are walked inline, in the same function);
-- the path of the value being built is kept as a stack of keys and becomes text only
-- when an error is reported. A run and its RunInstance are walked by one generated
-- function, whose friendly defaults (RUN_DEFAULTS) leave their values in locals. The
-- collector is stopped while building (the result is nearly all that is allocated).
-- 100,000 tasks + 100,000 runs: see docs/performance.md.
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
local copy = require("actionqueue.storage.tablex").copy

local M = {}

local type, pairs, next, tointeger, mtype = type, pairs, next, math.tointeger, math.type
local normalize, v4 = uuid.normalize, uuid.v4

local Fail = {}
Fail.__index = Fail

-- The path of the value being built is ctx.stack[1 .. ctx.depth] (field names and list
-- indexes); `...` are keys below it. Text only when an error is reported.
local function path_text(ctx, ...)
  local s = ""
  local function add(k)
    if mtype(k) == "integer" then s = s .. "[" .. k .. "]"
    elseif s == "" then s = k
    else s = s .. "." .. k end
  end
  for i = 1, ctx.depth do add(ctx.stack[i]) end
  for i = 1, select("#", ...) do add((select(i, ...))) end
  return s
end

local function fail(ctx, message, ...)
  error(setmetatable({ path = path_text(ctx, ...), message = message }, Fail), 0)
end

local function show(v)
  local tv = type(v)
  if tv == "string" then
    if #v > 40 then v = v:sub(1, 37) .. "..." end
    return string.format("%q", v)
  elseif tv == "number" then
    return mtype(v) == "integer" and tostring(v) or string.format("%.17g", v)
  elseif tv == "table" then
    return "a table"
  end
  return tostring(v)
end

local function expected(ctx, what, v, ...)
  fail(ctx, "expected " .. what .. ", got " .. show(v), ...)
end

-- The first unknown key of `v` (by name), reported at the record's path; `by_name2`: the
-- fields of an embedded record.
local function unknown_field(ctx, v, by_name, by_name2)
  local unknown
  for k in pairs(v) do
    if type(k) ~= "string" or not (by_name[k] or (by_name2 and by_name2[k])) then
      local s = tostring(k)
      if not unknown or s < unknown then unknown = s end
    end
  end
  fail(ctx, "unknown field", unknown)
end

-- Shortest valid history of each state (computed once).
local SHORTEST = {}
for _, state in ipairs(sm.states) do SHORTEST[state] = sm.path("Scheduled", state) end

-- Pre-hooks: friendly forms and defaults that need context. They get the input value
-- (the current path is the record's) and return the table to walk; they never change
-- a table they did not make.
local pre = {}

pre[S.Snapshot] = function(v, ctx)
  if type(v) ~= "table" then return v end
  v = copy(v)
  if v.version == nil then v.version = S.FRAME_VERSION end
  if v.timestamp == nil then v.timestamp = os.time() end
  ctx.timestamp = v.timestamp
  local md = type(v.metadata) == "table" and copy(v.metadata) or v.metadata
  if md == nil then md = {} end
  if type(md) == "table" then
    if md.schema_version == nil then md.schema_version = S.SCHEMA_VERSION end
    if md.wal_sequence == nil then md.wal_sequence = v.wal_sequence or 0 end
    if md.task_count == nil then md.task_count = type(v.tasks) == "table" and #v.tasks or 0 end
    if md.run_count == nil then md.run_count = type(v.runs) == "table" and #v.runs or 0 end
  end
  v.wal_sequence = nil
  v.metadata = md
  return v
end

-- Embedded records: a task may carry the TaskSpec fields directly (no `task_spec` key);
-- the TaskSpec is then read from the task table itself (as if they were nested there).
local embed = {}
embed[S.Task] = { field = "task_spec", rec = T.TaskSpec }

pre[T.TaskPayload] = function(v)
  if type(v) == "string" then return { bytes = v } end
  return v
end

-- Shortcuts: a friendly form whose built value is known at once (no walk needed); the
-- function returns it, or nil to walk the value as usual.
local shortcut = {}
shortcut[T.TaskPayload] = function(v)
  if type(v) == "string" then return { bytes = v } end
  return nil
end

-- `task = <index or id>` on records that have a task_id field (a run's: RUN_DEFAULTS);
-- `sub`: the key of the record below the current path (nil: the current record).
local function task_fail(ctx, msg, sub)
  if sub then fail(ctx, msg, sub, "task") end
  fail(ctx, msg, "task")
end

local function resolve_task(v, ctx)
  local ref = v.task
  if ref == nil then return v end
  v = copy(v)
  v.task = nil
  if v.task_id ~= nil then task_fail(ctx, "give either task or task_id") end
  if mtype(ref) == "integer" then
    local tasks = ctx.root.tasks or {}
    local t = tasks[ref]
    if not t then task_fail(ctx, "no task at index " .. ref) end
    v.task_id = t.task_spec.id
  else
    v.task_id = ref
  end
  return v
end

-- Priority of a built task (by id), 0 when unknown; the index is made once, after the
-- task list has been built (runs come after tasks in schema order).
local function task_priority(ctx, task_id)
  local index = ctx.priority
  if not index then
    index = {}
    for _, t in ipairs(ctx.root.tasks or {}) do index[t.task_spec.id] = t.task_spec.metadata.priority end
    ctx.priority = index
  end
  local p = index[task_id]
  if p == nil then p = index[normalize(task_id) or task_id] end
  return p or 0
end

-- A run's friendly defaults that need context, as code of the run's generated coercer
-- (compile_run): they read the run `v` and its RunInstance fields `ri` (the run itself
-- when given flat) and leave the values in locals F_<RunInstance field> and R_<run field>
-- (with F_x_final / R_x_final true when the value is in built form already: made here from
-- built values), which the generated walk of the two records then checks like any input
-- value.
local RUN_DEFAULTS = [[
  local F_task_id, F_task_id_final = ri.task_id, false
  local ref = ri.task
  if ref ~= nil then
    if F_task_id ~= nil then task_fail(ctx, "give either task or task_id", "run_instance") end
    if mtype(ref) == "integer" then
      local t = (ctx.root.tasks or EMPTY)[ref]
      if not t then task_fail(ctx, "no task at index " .. ref, "run_instance") end
      F_task_id, F_task_id_final = t.task_spec.id, true
    else
      F_task_id = ref
    end
  end
  local F_state = ri.state
  if F_state == nil then F_state = "Scheduled" end
  local F_created_at, F_created_at_final = ri.created_at, false
  if F_created_at == nil then F_created_at, F_created_at_final = ctx.built_timestamp, true end
  local F_scheduled_at, F_scheduled_at_final = ri.scheduled_at, false
  if F_scheduled_at == nil then F_scheduled_at, F_scheduled_at_final = F_created_at, F_created_at_final end
  local F_current_attempt_id = ri.current_attempt_id
  local F_attempt_count, F_attempt_count_final = ri.attempt_count, false
  local R_attempts, R_attempts_final = v.attempts, false
  if R_attempts == nil then
    if F_current_attempt_id ~= nil then
      -- (walked as input: the input's own timestamp when created_at is the default)
      R_attempts = { { attempt_id = F_current_attempt_id, started_at = F_created_at_final and ctx.timestamp
        or F_created_at } }
    else
      R_attempts, R_attempts_final = {}, true
    end
    if F_attempt_count == nil then F_attempt_count, F_attempt_count_final = #R_attempts, true end
  elseif F_attempt_count == nil and type(R_attempts) == "table" then
    F_attempt_count = #R_attempts
  end
  local F_last_state_change_at, F_last_state_change_at_final = ri.last_state_change_at, false
  local R_state_history, R_state_history_final = v.state_history, false
  if R_state_history == nil then
    local states = SHORTEST[F_state]
    if states then
      local at = F_created_at
      R_state_history = { { to = states[1], timestamp = at } }
      for i = 2, #states do R_state_history[i] = { from = states[i - 1], to = states[i], timestamp = at } end
      -- valid states and an integer u64 time: the entries are in built form
      R_state_history_final = F_created_at_final or (mtype(at) == "integer" and at >= 0)
      if F_last_state_change_at == nil then
        F_last_state_change_at, F_last_state_change_at_final = at, F_created_at_final
      end
    end
  elseif F_last_state_change_at == nil and type(R_state_history) == "table" then
    local last = R_state_history[#R_state_history]
    local ts = type(last) == "table" and last.timestamp
    if ts then
      F_last_state_change_at = ts
    else
      F_last_state_change_at, F_last_state_change_at_final = F_created_at, F_created_at_final
    end
  end
  local F_effective_priority, F_effective_priority_final = ri.effective_priority, false
  if F_effective_priority == nil and F_task_id ~= nil then
    -- a built task's priority, or 0
    F_effective_priority, F_effective_priority_final = task_priority(ctx, F_task_id), true
  end
]]

local function task_ref(v, ctx)
  if type(v) ~= "table" then return v end
  return resolve_task(v, ctx)
end
pre[S.Budget] = task_ref
pre[S.DependencyDeclaration] = task_ref
pre[S.Subscription] = task_ref

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

-- An empty table that nothing may change (a stand-in where a list is absent).
local EMPTY = setmetatable({}, { __newindex = function() error("build: EMPTY is read-only", 2) end })

-- Compiled coercers: `coercer(t)` is a function(v, ctx, key) that checks and converts
-- `v` (never nil) found under `key` of the current path, and returns the value to store.
local compiled = {}
local coercer

-- The default of a missing field (see the module comment), as a Lua expression of the
-- generated record coercer (`ctx` in scope; `K` holds values the expression refers to),
-- or nil when the field has none; and whether that value is in built form already (no
-- check needed): a constant the field's coercer returns unchanged, `false`, a fresh
-- empty list, or the snapshot's built timestamp (ctx.built_timestamp, set once the root's
-- timestamp field is walked, before any record that defaults to it).
local function default_expr(field, K)
  local t = field.type
  local function constant(c)
    K[#K + 1] = c
    local ok, r = pcall(coercer(t.kind == "option" and t.of or t), c, { depth = 0, stack = {}, timestamp = 0 },
      field.name)
    return "K[" .. #K .. "]", ok and rawequal(r, c) and mtype(r) == mtype(c)
  end
  local bd = field.build_default
  if bd ~= nil then
    if type(bd) == "function" then K[#K + 1] = bd; return "K[" .. #K .. "]()", false end
    return constant(bd)
  end
  local d = field.default
  if d ~= nil and d ~= dsl.NONE then
    if type(d) == "function" then K[#K + 1] = field; return "default_of(K[" .. #K .. "])", false end
    return constant(d) -- a string or number: the value itself
  end
  if t.kind == "list" then return "{}", true end
  if t.kind == "bool" then return "false", true end
  if t.kind == "u64" and (field.name == "timestamp" or field.name:match("_at$")) then
    return "ctx.built_timestamp", true
  end
  return nil
end
-- Inline fast checks of the common scalar kinds (the coercer is called only when the
-- check fails: it converts the friendly spellings or raises the error).
local function fast_check(t, x, const)
  local k = t.kind
  if k == "enum" then
    -- a unit variant's name is already the value
    local units = {}
    for _, var in ipairs(t.variants) do
      if not var.type and not var.feature then units[var.name] = true end
    end
    if next(units) == nil then return nil end
    return ("%s[%s]"):format(const(units), x)
  end
  if k == "u64" then return ("mtype(%s) == \"integer\" and %s >= 0"):format(x, x) end
  if t.min then return ("mtype(%s) == \"integer\" and %s >= %d and %s <= %d"):format(x, x, t.min, x, t.max) end
  if k == "bool" then return ("type(%s) == \"boolean\""):format(x) end
  if k == "string" then return ("type(%s) == \"string\" and utf8_len(%s)"):format(x, x) end
  if k == "bytes" then return ("type(%s) == \"string\""):format(x) end
  return nil
end

-- A record's coercer is generated Lua code: one local per field, the output table made
-- by one constructor (sized once), no loop over the field list. A field whose type is a
-- plain record (no pre-hook) is walked inline, in the same function: its path below
-- the coercer's record is known when the code is generated, so nothing is pushed on the
-- path stack for it. The inline walk only takes the common way (known keys, values of
-- their kind, no friendly spelling to convert, the record's check passes); on anything
-- else it goes to the record's coercer instead, which starts that record again and
-- converts or reports exactly as before (inline walks have no side effects but fresh
-- ids, so starting again changes nothing but which ids are drawn).
local embedded_compiled = {}

-- "x is nil" as generated code: a truth test first (one instruction for the common
-- present value), the comparison only for a false value (which is then no default).
local function NIL(x)
  return ("not %s and %s == nil"):format(x, x)
end

local function inlinable(t)
  return t.kind == "record" and t ~= S.root and not pre[t] and not embed[t] and t ~= S.Run
end

-- `at(ctx, coerce, x, key, prefix)`: coerce `x` found under `key` of a record walked
-- inline at `prefix` (the keys from the coercer's record down to it).
local function at(ctx, coerce, x, key, prefix)
  local d0, stack = ctx.depth, ctx.stack
  local n = #prefix
  for i = 1, n do stack[d0 + i] = prefix[i] end
  ctx.depth = d0 + n
  local r = coerce(x, ctx, key)
  ctx.depth = d0
  return r
end

local compile_record

-- The embedded record's coercer (its fields read from the outer table itself).
local function embedded_coercer(rec)
  local ec = embedded_compiled[rec]
  if not ec then ec = compile_record(rec, true); embedded_compiled[rec] = ec end
  return ec
end

compile_record = function(rec, embedded)
  local K = {}
  local function const(v) K[#K + 1] = v; return "K[" .. #K .. "]" end
  local src = {}
  local function emit(line, ...) src[#src + 1] = select("#", ...) > 0 and line:format(...) or line end
  local labels = 0

  -- Emits the inline walk of record `r` over the table in local `s` (already declared),
  -- found at `prefix` below the coercer's record; stores the result in local `out`.
  -- `slow`: the statement that coerces `s` into `out` the ordinary way. `skip_unknown`
  -- (a Lua expression): the keys were checked already (an embedded record's flat form).
  local walk_inline
  local function field_conv(f, y, prefix, ind)
    -- the conversion of the value in local `y` (not nil) of field `f` of a record walked
    -- inline at `prefix`
    local t = f.type
    if t.kind == "option" then t = t.of end
    local function call()
      return ("%s = at(ctx, %s, %s, %q, %s)"):format(y, const(coercer(t)), y, f.name, const(prefix))
    end
    if inlinable(t) then
      local sub = { table.unpack(prefix) }
      sub[#sub + 1] = f.name
      local s = "s" .. y
      emit("%slocal %s = %s", ind, s, y)
      walk_inline(t, s, y, sub, ind,
        ("%s = at(ctx, %s, %s, %q, %s)"):format(y, const(coercer(t)), s, f.name, const(prefix)))
      return
    end
    local item_check = t.kind == "list" and fast_check(t.of, "e", const)
    if item_check then
      -- a list of scalars: copied inline when every item passes its kind's check
      labels = labels + 1
      local L = labels
      emit("%sdo", ind)
      emit("%s  local l = %s", ind, y)
      emit("%s  if type(l) ~= \"table\" then goto slow%d end", ind, L)
      emit("%s  local n = #l", ind)
      emit("%s  for k in pairs(l) do if mtype(k) ~= \"integer\" or k < 1 or k > n then goto slow%d end end", ind, L)
      emit("%s  for i = 1, n do local e = l[i]; if not (%s) then goto slow%d end end", ind, item_check, L)
      -- a short list is copied by one constructor (sized once)
      emit("%s  if n == 1 then %s = { l[1] } elseif n <= 64 then %s = { unpack(l, 1, n) }", ind, y, y)
      emit("%s  else %s = table.move(l, 1, n, 1, {}) end", ind, y)
      emit("%s  goto done%d", ind, L)
      emit("%send", ind)
      emit("%s::slow%d::", ind, L)
      emit("%s%s", ind, call())
      emit("%s::done%d::", ind, L)
      return
    end
    local fast = fast_check(t, y, const)
    local conv = fast and ("if not (%s) then %s end"):format(fast, call()) or call()
    if shortcut[t] then
      conv = ("local s = %s(%s); if s then %s = s else %s end"):format(const(shortcut[t]), y, y, conv)
    end
    emit("%s%s", ind, conv)
  end

  walk_inline = function(r, s, out, prefix, ind, slow, skip_unknown)
    labels = labels + 1
    local L = labels
    emit("%sdo", ind)
    local i2 = ind .. "  "
    emit("%sif type(%s) ~= \"table\" then goto slow%d end", i2, s, L)
    local by_name = const(r.by_name)
    local loop = ("for k in pairs(%s) do if not %s[k] then goto slow%d end end"):format(s, by_name, L)
    if skip_unknown then emit("%sif not %s then %s end", i2, skip_unknown, loop) else emit("%s%s", i2, loop) end
    local ctor = {}
    for i, f in ipairs(r.fields) do
      local y = ("y%d_%d"):format(L, i)
      emit("%slocal %s = %s[%q]", i2, y, s, f.name)
      local optional = f.type.kind == "option"
      if f.own_id then
        emit("%sif %s then %s = v4() else", i2, NIL(y), y)
        field_conv(f, y, prefix, i2 .. "  ")
        emit("%send", i2)
      else
        local d, built = default_expr(f, K)
        if d and built then
          -- a default in built form needs no check
          emit("%sif %s then %s = %s else", i2, NIL(y), y, d)
          field_conv(f, y, prefix, i2 .. "  ")
          emit("%send", i2)
        else
          if d then emit("%sif %s then %s = %s end", i2, NIL(y), y, d) end
          if optional then
            emit("%sif %s ~= nil then", i2, y)
            field_conv(f, y, prefix, i2 .. "  ")
            emit("%send", i2)
          else
            emit("%sif %s then goto slow%d end", i2, NIL(y), L)
            field_conv(f, y, prefix, i2)
          end
        end
      end
      ctor[#ctor + 1] = ("[%q] = %s"):format(f.name, y)
    end
    emit("%s%s = { %s }", i2, out, table.concat(ctor, ", "))
    if r.check then emit("%sif %s(%s) then goto slow%d end", i2, const(r.check), out, L) end
    emit("%sgoto done%d", i2, L)
    emit("%send", ind)
    emit("%s::slow%d::", ind, L)
    emit("%s%s", ind, slow)
    emit("%s::done%d::", ind, L)
  end

  -- Emits the walk of the fields of `r` (the current path is r's) into local `out`:
  -- `read(f)` is the Lua expression of field f's input value, `final(f)` nil or a flag
  -- expression (true: the value is in built form already). `v`: the table `r` is read
  -- from (an embedded record's flat form sits on it).
  local fields_done = 0
  local function emit_fields(r, read, final, out)
    local E = embed[r]
    local ctor = {}
    for _, f in ipairs(r.fields) do
      fields_done = fields_done + 1
      local i = fields_done
      local x = "x" .. i
      local t = f.type
      local optional = t.kind == "option"
      if optional then t = t.of end
      emit("  local %s = %s", x, read(f))
      if E and E.field == f.name then
        -- the flat form: the embedded record's fields sit on `v` (its unknown keys were
        -- checked above); either form is walked inline
        local ec, c = const(embedded_coercer(E.rec)), const(coercer(E.rec))
        emit("  local flat%d = %s == nil", i, x)
        emit("  local s%d = flat%d and v or %s", i, i, x)
        walk_inline(E.rec, "s" .. i, x, { f.name }, "  ",
          ("if flat%d then %s = %s(v, ctx, %q) else %s = %s(s%d, ctx, %q) end"):format(i, x, ec, f.name, x, c, i,
            f.name), "flat" .. i)
      else
        local conv
        if inlinable(t) then
          conv = function(ind)
            emit("%slocal s%d = %s", ind, i, x)
            walk_inline(t, "s" .. i, x, { f.name }, ind,
              ("%s = %s(s%d, ctx, %q)"):format(x, const(coercer(t)), i, f.name))
          end
        else
          local c = const(coercer(t))
          local fast = fast_check(t, x, const)
          local text = fast and ("if not (%s) then %s = %s(%s, ctx, %q) end"):format(fast, x, c, x, f.name)
            or ("%s = %s(%s, ctx, %q)"):format(x, c, x, f.name)
          if shortcut[t] then
            text = ("local s = %s(%s); if s then %s = s else %s end"):format(const(shortcut[t]), x, x, text)
          end
          conv = function(ind) emit("%s%s", ind, text) end
        end
        local flag, walk = final(f), conv
        if flag == true then
          conv = function() end -- built here: nothing to check
        elseif flag then
          conv = function(ind)
            emit("%sif not %s then", ind, flag)
            walk(ind .. "  ")
            emit("%send", ind)
          end
        end
        if f.own_id then
          emit("  if %s then %s = v4() else", NIL(x), x)
          conv("    ")
          emit("  end")
        else
          local d, built = default_expr(f, K)
          if d and built then
            -- a default in built form needs no check
            emit("  if %s then %s = %s else", NIL(x), x, d)
            conv("    ")
            emit("  end")
          else
            if d then emit("  if %s then %s = %s end", NIL(x), x, d) end
            if optional then
              emit("  if %s ~= nil then", x)
              conv("    ")
              emit("  end")
            else
              emit("  if %s then fail(ctx, \"missing field\", %q) end", NIL(x), f.name)
              conv("  ")
            end
          end
        end
      end
      ctor[#ctor + 1] = ("[%q] = %s"):format(f.name, x)
    end
    emit("  local %s = { %s }", out, table.concat(ctor, ", "))
    if r.check then
      emit("  local msg = %s(%s)", const(r.check), out)
      emit("  if msg then fail(ctx, msg) end")
    end
  end
  local function from_v(f) return ("v[%q]"):format(f.name) end
  local function none() return nil end

  emit("local K, pairs, type, mtype, utf8_len, expected, fail, unknown_field, v4, default_of, EMPTY, at, unpack,"
    .. " task_fail, task_priority, SHORTEST = ...")
  emit("return function(v, ctx, key)")
  emit("  local d0 = ctx.depth")
  emit("  if key then ctx.depth = d0 + 1; ctx.stack[d0 + 1] = key end")
  if pre[rec] then emit("  v = %s(v, ctx)", const(pre[rec])) end
  emit("  if type(v) ~= \"table\" then expected(ctx, %q, v) end", rec.name)
  local by_name = const(rec.by_name)
  local E = embed[rec]
  if rec == S.Run then
    -- the run and its RunInstance in one function (see RUN_DEFAULTS): `ri` is
    -- run_instance, or the run itself (flat: the RunInstance fields and `task` on the run)
    local RI = T.RunInstance
    local flat_keys, ri_by = {}, const(RI.by_name)
    for k in pairs(rec.by_name) do flat_keys[k] = true end
    for k in pairs(RI.by_name) do flat_keys[k] = true end
    flat_keys.task = true
    emit("  local d1 = ctx.depth")
    emit("  local ri = v.run_instance")
    emit("  local flat = ri == nil")
    emit("  if flat then")
    emit("    ri = v")
    emit("  elseif type(ri) ~= \"table\" then")
    emit("    for k in pairs(v) do if not %s[k] then unknown_field(ctx, v, %s) end end", by_name, by_name)
    emit("    expected(ctx, %q, ri, \"run_instance\")", RI.name)
    emit("  end")
    emit(RUN_DEFAULTS)
    local fk = const(flat_keys)
    emit("  if flat then")
    emit("    for k in pairs(v) do if not %s[k] then unknown_field(ctx, v, %s) end end", fk, fk)
    emit("  else")
    emit("    for k in pairs(v) do if not %s[k] then unknown_field(ctx, v, %s) end end", by_name, by_name)
    emit("  end")
    emit("  ctx.depth = d1 + 1; ctx.stack[d1 + 1] = \"run_instance\"")
    emit("  if not flat then")
    emit("    for k in pairs(ri) do if not %s[k] and k ~= \"task\" then unknown_field(ctx, ri, %s, %s) end end",
      ri_by, ri_by, const({ task = true }))
    emit("  end")
    local have = {}
    for name in RUN_DEFAULTS:gmatch("local ([FR]_[%w_]+)") do have[name] = true end
    for name in RUN_DEFAULTS:gmatch(", ([FR]_[%w_]+)") do have[name] = true end
    -- a field's value: the local RUN_DEFAULTS left, or the input table's field
    local function local_or(prefix, tbl)
      return function(f)
        local name = prefix .. f.name
        return have[name] and name or ("%s[%q]"):format(tbl, f.name)
      end
    end
    local function flag(prefix)
      return function(f)
        if prefix == "R_" and f.name == "run_instance" then return true end -- built just above
        local name = prefix .. f.name .. "_final"
        return have[name] and name or nil
      end
    end
    emit_fields(RI, local_or("F_", "ri"), flag("F_"), "run_instance")
    emit("  ctx.depth = d1")
    have.R_run_instance = true
    emit("  local R_run_instance = run_instance")
    emit_fields(rec, local_or("R_", "v"), flag("R_"), "out")
  else
    if E then
      -- the keys of the flat form: the fields of both records
      local both = {}
      for k, f in pairs(rec.by_name) do both[k] = f end
      for k, f in pairs(E.rec.by_name) do both[k] = f end
      local eby = const(E.rec.by_name)
      emit("  if v[%q] == nil then", E.field)
      emit("    for k in pairs(v) do if not %s[k] then unknown_field(ctx, v, %s, %s) end end",
        const(both), by_name, eby)
      emit("  else")
      emit("    for k in pairs(v) do if not %s[k] then unknown_field(ctx, v, %s) end end", by_name, by_name)
      emit("  end")
    elseif not embedded then
      emit("  for k in pairs(v) do if not %s[k] then unknown_field(ctx, v, %s) end end", by_name, by_name)
    end
    emit_fields(rec, from_v, none, "out")
  end
  emit("  ctx.depth = d0")
  emit("  return out")
  emit("end")
  -- K entries become locals of the chunk (upvalues of the coercer: no table index per
  -- use), as many as a function may have
  local text = table.concat(src, "\n")
  if #K > 0 and #K <= 150 then
    local names = {}
    for i = 1, #K do names[i] = "K" .. i end
    text = text:gsub("K%[(%d+)%]", "K%1")
    text = text:gsub("\nreturn function", "\nlocal " .. table.concat(names, ", ") .. " = table.unpack(K, 1, " .. #K
      .. ")\nreturn function", 1)
  end
  if os.getenv("BUILD_DUMP") then io.stderr:write("==== ", rec.name, "\n", text, "\n") end
  local chunk = assert(load(text, "=build:" .. rec.name, "t"))
  return chunk(K, pairs, type, mtype, utf8.len, expected, fail, unknown_field, v4, dsl.default_of, EMPTY, at,
    table.unpack, task_fail, task_priority, SHORTEST)
end

-- The root record keeps a plain loop: runs refer to the tasks built before them
-- (`ctx.root.tasks`), so its output table must exist while its fields are coerced.
local function compile_root(rec)
  local fields = {}
  for i, f in ipairs(rec.fields) do
    local t = f.type
    local optional = t.kind == "option"
    local K = {}
    local d = default_expr(f, K)
    -- (the root's own defaults come before its timestamp is built)
    if d then d = d:gsub("ctx%.built_timestamp", "ctx.timestamp") end
    fields[i] = { name = f.name, coerce = coercer(optional and t.of or t), optional = optional,
                  default = d and assert(load("local K, default_of, EMPTY = ... return function(ctx) return "
                    .. d .. " end", "=build:default", "t"))(K, dsl.default_of, EMPTY) }
  end
  local by_name, name, prehook = rec.by_name, rec.name, pre[rec]
  return function(v, ctx)
    if prehook then v = prehook(v, ctx) end
    if type(v) ~= "table" then expected(ctx, name, v) end
    for k in pairs(v) do
      if by_name[k] == nil then unknown_field(ctx, v, by_name) end
    end
    local out = {}
    ctx.root = out
    for i = 1, #fields do
      local f = fields[i]
      local x = v[f.name]
      if x == nil and f.default then x = f.default(ctx) end
      if x == nil then
        if not f.optional then fail(ctx, "missing field", f.name) end
      else
        out[f.name] = f.coerce(x, ctx, f.name)
      end
      -- the defaults that are the snapshot's timestamp in built form (ctx.timestamp stays
      -- the input's: a value made from it is walked as an input value)
      if f.name == "timestamp" then ctx.built_timestamp = out.timestamp end
    end
    if rec.check then
      local msg = rec.check(out)
      if msg then fail(ctx, msg) end
    end
    return out
  end
end

local function compile_enum(enum)
  local units, what, list = {}, enum.name .. " (a variant name or a one-key table)", variant_list(enum)
  local payload_coercer = {}
  for _, var in ipairs(enum.variants) do
    if not var.feature then
      if var.type then payload_coercer[var.name] = coercer(var.type) else units[var.name] = true end
    end
  end
  local name = enum.name
  return function(v, ctx, key)
    if units[v] then return v end -- the common case: a unit variant's name
    local d0 = ctx.depth
    ctx.depth = d0 + 1; ctx.stack[d0 + 1] = key
    local vname, payload
    if type(v) == "string" then
      vname = v
    elseif type(v) == "table" then
      vname = next(v)
      if vname == nil or next(v, vname) ~= nil or type(vname) ~= "string" then expected(ctx, what, v) end
      payload = v[vname]
    else
      expected(ctx, name, v)
    end
    local var = enum.by_name[vname]
    if not var or var.feature then
      fail(ctx, string.format("unknown variant `%s`, expected %s", tostring(vname), list))
    end
    if not var.type then
      if payload ~= nil and payload ~= true and not (type(payload) == "table" and next(payload) == nil) then
        fail(ctx, "unit variant takes no value, got " .. show(payload), vname)
      end
      ctx.depth = d0
      return vname
    end
    if payload == nil then
      fail(ctx, string.format("variant `%s` needs a value: {%s = ...}", vname, vname))
    end
    local out = { [vname] = payload_coercer[vname](payload, ctx, vname) }
    if var.check then
      local msg = var.check(out)
      if msg then fail(ctx, msg) end
    end
    ctx.depth = d0
    return out
  end
end

local function compile_list(t)
  local item = coercer(t.of)
  local C = {}
  local check = fast_check(t.of, "x", function(c) C[#C + 1] = c; return "C[" .. #C .. "]" end)
  -- an item that passes the inline check of its kind is stored as it is (no call)
  local store = check and ("local x = v[i]; if not (%s) then x = item(x, ctx, i) end; out[i] = x"):format(check)
    or "out[i] = item(v[i], ctx, i)"
  return assert(load([[
local item, type, mtype, utf8_len, pairs, expected, fail, show, C = ...
return function(v, ctx, key)
  local d0 = ctx.depth
  ctx.depth = d0 + 1; ctx.stack[d0 + 1] = key
  if type(v) ~= "table" then expected(ctx, "a list", v) end
  local n = #v
  for i in pairs(v) do
    if mtype(i) ~= "integer" or i < 1 or i > n then
      fail(ctx, "expected a list, got a table with key " .. show(i))
    end
  end
  local out = {}
  for i = 1, n do ]] .. store .. [[ end
  ctx.depth = d0
  return out
end]], "=build:list", "t"))(item, type, mtype, utf8.len, pairs, expected, fail, show, C)
end

local function compile_scalar(t)
  local k = t.kind
  if k == "id" then
    local what = t.name .. " (a UUID string)"
    return function(v, ctx, key)
      if type(v) ~= "string" then expected(ctx, what, v, key) end
      local id, err = normalize(v)
      if not id then fail(ctx, err, key) end
      return id
    end
  elseif k == "u64" then
    return function(v, ctx, key)
      if mtype(v) == "integer" and v >= 0 then return v end
      local n = type(v) == "number" and tointeger(v) or (type(v) == "string" and parse_u64(v))
      if not n or (type(v) == "number" and n < 0) then expected(ctx, "u64", v, key) end
      return n
    end
  elseif t.min then -- u8, u16, u32, i32
    local min, max = t.min, t.max
    return function(v, ctx, key)
      local n = mtype(v) == "integer" and v or (type(v) == "number" and tointeger(v))
      if not n or n < min or n > max then expected(ctx, k, v, key) end
      return n
    end
  elseif k == "bool" then
    return function(v, ctx, key)
      if type(v) ~= "boolean" then expected(ctx, "bool", v, key) end
      return v
    end
  elseif k == "string" then
    return function(v, ctx, key)
      if type(v) ~= "string" then expected(ctx, "string", v, key) end
      if not utf8.len(v) then fail(ctx, "expected a UTF-8 string", key) end
      return v
    end
  elseif k == "bytes" then
    return function(v, ctx, key)
      if type(v) == "string" then return v end
      if type(v) ~= "table" then expected(ctx, "bytes (a string or a list of 0-255)", v, key) end
      local b = {}
      for i = 1, #v do
        local n = mtype(v[i]) == "integer" and v[i] or nil
        if not n or n < 0 or n > 255 then expected(ctx, "u8", v[i], key, i) end
        b[i] = string.char(n)
      end
      return table.concat(b)
    end
  end
  error("build: unsupported schema kind " .. tostring(k))
end

coercer = function(t)
  local c = compiled[t]
  if c then return c end
  -- a forwarding stub first, so that a type reached again while compiling finds it
  local real
  compiled[t] = function(v, ctx, key) return real(v, ctx, key) end
  local k = t.kind
  if k == "record" then real = t == S.root and compile_root(t) or compile_record(t)
  elseif k == "enum" then real = compile_enum(t)
  elseif k == "list" then real = compile_list(t)
  elseif k == "option" then
    local inner = coercer(t.of)
    real = function(v, ctx, key)
      if v == nil then return nil end
      return inner(v, ctx, key)
    end
  else real = compile_scalar(t) end
  compiled[t] = real
  return real
end

local build_root -- compiled on first use

local function build_and_validate(t, opts)
  local ctx = { timestamp = 0, stack = {}, depth = 0 }
  local ok, res = pcall(build_root, t, ctx, nil)
  if not ok then
    if getmetatable(res) ~= Fail then error(res, 0) end
    local path = res.path
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

--- Builds a snapshot from a friendly table.
-- @tparam table t the snapshot description (every field optional)
-- @tparam[opt] table opts `{validate = false}` to skip the §6 validation of the result
-- @treturn table|nil the snapshot
-- @treturn table a `BuildError` (`path`, `problem`, `message` = "path: problem"; `rule`
--   when the result breaks a validation rule)
function M.build(t, opts)
  if t == nil then t = {} end
  build_root = build_root or coercer(S.root)
  -- Nearly everything build allocates stays alive (it is the result; the coercers make
  -- no garbage but the validation's id sets), so collection steps during the build mark
  -- live data in vain: the collector is stopped for the build's duration and restarted
  -- (when it ran before) on every path. A longer pause was not enough: a cycle already
  -- begun when the build starts goes on stepping through the growing result.
  local running = collectgarbage("isrunning")
  collectgarbage("stop")
  local ok, res, err = pcall(build_and_validate, t, opts)
  if running then collectgarbage("restart") end
  if not ok then error(res, 0) end
  return res, err
end

return M
