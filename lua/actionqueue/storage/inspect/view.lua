--- REPL views: metatables over a raw snapshot so that every part prints usefully and
-- offers queries, without adding a single field to the data.
--
-- Design: `view.wrap(snap)` walks the snapshot along its schema and sets metatables on
-- the raw tables themselves (a weak table remembers each one's schema type):
--
-- * the snapshot (`s`): `tostring(s)` is the one-screen summary; methods `s:task(prefix)`,
--   `s:run(prefix)`, `s:get(path)`, `s:show([path])`, `s:stats()`, `s:diff(other)`,
--   `s:validate()`, `s:summary()`, `s:events{...}` (data dirs); raw fields read as usual;
-- * every list is callable: `s:runs{state = "Running"}` (which is `s.runs(s, filter)`)
--   returns a new filtered list; `for r in list do` walks it (the generic-for protocol
--   calls the list with no filter); lists print as tables (tasks, runs, WAL events) or
--   through the schema;
-- * every task and run prints (`tostring`) in detail; runs have `r:history()` (a timeline,
--   merged with the run's WAL events for a data dir), `r:task()`, `r:show()`; tasks have
--   `t:runs()`, `t:show()`;
-- * every other record and data-carrying enum value prints through the schema.
--
-- Method names never collide with schema field names (checked when this module loads),
-- and the encoders only read raw fields in schema order, so a wrapped snapshot still
-- encodes to the same bytes. Nothing here writes files.
-- @module actionqueue.storage.inspect.view
local S = require "actionqueue.storage.schema.snapshot"
local T = require "actionqueue.storage.schema.types"
local W = require "actionqueue.storage.schema.wal"
local fmt = require "actionqueue.storage.inspect.fmt"
local show = require "actionqueue.storage.inspect.show"
local path = require "actionqueue.storage.inspect.path"
local stats = require "actionqueue.storage.inspect.stats"
local events = require "actionqueue.storage.inspect.events"

local view = {}

--- Rows printed by a list before truncating.
view.MAX_ROWS = 20

local info = setmetatable({}, { __mode = "k" })   -- snapshot -> {file = ..., events = ...}
local owner = setmetatable({}, { __mode = "k" })  -- task/run/list/event -> snapshot
local list_kind = setmetatable({}, { __mode = "k" }) -- list -> "tasks" | "runs" | field name
local type_of = setmetatable({}, { __mode = "k" })   -- wrapped table -> schema type
local offset_of = setmetatable({}, { __mode = "k" }) -- WAL event -> byte offset in the log
local positions = setmetatable({}, { __mode = "k" }) -- list -> {element -> index}

local Snapshot, Task, Run, List, Text, Value, Missing, Event = {}, {}, {}, {}, {}, {}, {}, {}

--- A piece of text that prints as itself in the REPL (and `tostring` gives the string).
function view.text(s) return setmetatable({ text = s }, Text) end
Text.__tostring = function(t) return t.text end
Text.__name = "aq.text"

--- The error values raised by the views: one line, printed without a traceback (also by
-- plain `lua5.4 -i`, which prints an error object through its `__tostring`).
local ViewError = { __name = "aq.error" }
ViewError.__tostring = function(e) return e.message end

--- Raises a one-line error value (`kind`, `message`).
function view.fail(message, kind)
  error(setmetatable({ kind = kind or "UsageError", message = message }, ViewError), 0)
end

--- True when `e` is an error value raised by the views (or aq.load).
function view.is_error(e) local mt = getmetatable(e) return mt == ViewError or (mt and mt.__name == "aq.load_error") end

-- Failed lookups: a value that prints its reason and raises it on any further use, so
-- `s:run("zzz"):history()` says "no run with id prefix ..." instead of "index a nil value".
Missing.__name = "aq.missing"
Missing.__tostring = function(m) return "not found: " .. rawget(m, "message") end
Missing.__index = function(m) view.fail(rawget(m, "message"), "NotFound") end
Missing.__call = Missing.__index

--- A failed lookup value for `message`.
function view.missing(message) return setmetatable({ message = message }, Missing) end

--- True unless `x` is nil or a failed lookup.
function view.found(x) return x ~= nil and getmetatable(x) ~= Missing end

-- Records and enum values below the snapshot print through the schema.
Value.__name = "aq.value"
Value.__tostring = function(v)
  local Ty = type_of[v]
  local label = Ty and Ty.kind == "enum" and (Ty.name .. ": ") or nil
  local text = show.render(v, Ty)
  if label then text = text:gsub("^", label) end
  return text
end

-- Method tables (looked up through __index after the raw fields).
local SnapshotM, TaskM, RunM = {}, {}, {}

local function check_names(methods, rec)
  for name in pairs(methods) do
    assert(not rec.by_name[name], "view method " .. name .. " collides with a field of " .. rec.name)
  end
end

local function prefix_lookup(list, key, prefix, what)
  if type(prefix) ~= "string" or prefix == "" then
    return nil, what .. " id or id prefix (a string) expected"
  end
  prefix = prefix:lower()
  local found = {}
  for _, x in ipairs(list) do
    local id = key(x)
    if id == prefix then return x end
    if id:sub(1, #prefix) == prefix then found[#found + 1] = x end
  end
  if #found == 1 then return found[1] end
  if #found == 0 then return nil, string.format("no %s with id prefix %q", what, prefix) end
  local ids = {}
  for i = 1, math.min(#found, 5) do ids[i] = key(found[i]) end
  return nil, string.format("ambiguous %s id prefix %q: %d matches (%s%s)", what, prefix, #found,
    table.concat(ids, ", "), #found > 5 and ", ..." or "")
end

local function task_key(t) return t.task_spec.id end
local function run_key(r) return r.run_instance.id end

local function policy_name(p) return type(p) == "string" and p or (next(p)) end

local function age(snap, at)
  if not snap or not snap.timestamp or not at then return "" end
  return fmt.duration(snap.timestamp - at)
end

--- When the run entered its current state: `last_state_change_at`, or (0 = not recorded)
-- the last state history entry, or its creation.
function view.state_since(r)
  local ri = r.run_instance
  if ri.last_state_change_at and ri.last_state_change_at ~= 0 then return ri.last_state_change_at end
  local h = r.state_history
  if h and #h > 0 then return h[#h].timestamp end
  return ri.created_at
end

local function variant_names(enum)
  local names = {}
  for i, v in ipairs(enum.variants) do names[i] = v.name end
  return names
end

-- The variant of `enum` that `v` names (any case), or a one-line error with the valid ones.
local function enum_value(enum, v, what)
  local names = variant_names(enum)
  local name, same = fmt.closest(v, names)
  if same then return name end
  view.fail(string.format("unknown %s %q%s; valid: %s", what, tostring(v),
    name and string.format(' (did you mean "%s"?)', name) or "", table.concat(names, ", ")))
end

local function duration_value(v, what)
  local secs, err = fmt.parse_duration(v)
  if not secs then view.fail(what .. ": " .. err) end
  return secs
end

--- True when a run has used up its attempts: `attempt_count >= max_attempts` of its task and
-- it did not complete (a Failed run that cannot retry, or a run on its last attempt).
function view.run_exhausted(r, task)
  local ri = r.run_instance
  return task ~= nil and ri.state ~= "Completed" and ri.attempt_count >= task.task_spec.constraints.max_attempts
end

-- Task ids with a run that has used up its attempts.
local function exhausted_runs(snap)
  local tasks = {}
  for _, t in ipairs(snap and snap.tasks or {}) do tasks[t.task_spec.id] = t end
  local out = {}
  for _, r in ipairs(snap and snap.runs or {}) do
    local id = r.run_instance.task_id
    if view.run_exhausted(r, tasks[id]) then out[id] = true end
  end
  return out
end

-- Filters --------------------------------------------------------------------------------
-- Each criterion: `prepare(value, snap)` (checks/normalises the value, raises a one-line
-- error) and `test(x, prepared, snap)`.

local function prefix_of(v) return tostring(v):lower() end

local filters = {
  runs = {
    state = { enum = T.RunState, prepare = function(v) return enum_value(T.RunState, v, "run state") end,
              test = function(r, v) return r.run_instance.state == v end },
    task = { prepare = prefix_of, test = function(r, v) return r.run_instance.task_id:sub(1, #v) == v end },
    id = { prepare = prefix_of, test = function(r, v) return r.run_instance.id:sub(1, #v) == v end },
    owner = { test = function(r, v) return r.lease ~= nil and r.lease.owner == v end },
    leased = { test = function(r, v) return (r.lease ~= nil) == v end },
    terminal = { test = function(r, v) return (T.TERMINAL_STATES[r.run_instance.state] or false) == v end },
    older = { prepare = function(v) return duration_value(v, "older") end,
              test = function(r, v, snap) return snap.timestamp - r.run_instance.created_at >= v end },
    in_state_for = { prepare = function(v) return duration_value(v, "in_state_for") end,
                     test = function(r, v, snap) return snap.timestamp - view.state_since(r) >= v end },
    exhausted = { test = function(r, v) return view.run_exhausted(r, r:task()) == v end },
  },
  tasks = {
    id = { prepare = prefix_of, test = function(t, v) return t.task_spec.id:sub(1, #v) == v end },
    policy = { enum = T.RunPolicy, prepare = function(v) return enum_value(T.RunPolicy, v, "run policy") end,
               test = function(t, v) return policy_name(t.task_spec.run_policy) == v end },
    tag = { test = function(t, v)
      for _, tag in ipairs(t.task_spec.metadata.tags) do if tag == v then return true end end
      return false
    end },
    tenant = { prepare = prefix_of, test = function(t, v)
      return t.task_spec.tenant_id ~= nil and t.task_spec.tenant_id:sub(1, #v) == v end },
    canceled = { test = function(t, v) return (t.canceled_at ~= nil) == v end },
    exhausted = { test = function(t, v, snap) return (exhausted_runs(snap)[t.task_spec.id] or false) == v end },
  },
  events = {
    run = { prepare = prefix_of, test = function(e, v)
      local id = view.event_subject(e, "run") return id ~= nil and id:sub(1, #v) == v end },
    task = { prepare = prefix_of, test = function(e, v)
      local id = view.event_subject(e, "task") return id ~= nil and id:sub(1, #v) == v end },
    variant = { enum = W.WalEventType,
                prepare = function(v) return enum_value(W.WalEventType, v, "WAL event variant") end,
                test = function(e, v) return (next(e.event)) == v end },
    since = { test = function(e, v) return not math.ult(e.sequence, v) end },
    ["until"] = { test = function(e, v) return not math.ult(v, e.sequence) end },
  },
}

--- The enum whose variant names a criterion takes (`state` -> RunState ...), or nil.
function view.criterion_enum(key)
  for _, kind in ipairs { "runs", "tasks", "events" } do
    local f = filters[kind][key]
    if f and f.enum then return f.enum end
  end
  return nil
end

--- The filter criteria names of a list kind ("runs", "tasks", "events"), sorted.
function view.criteria(kind)
  local names = {}
  for n in pairs(filters[kind] or {}) do names[#names + 1] = n end
  table.sort(names)
  return names
end

local function new_list(items, kind, snap, Ty)
  list_kind[items] = kind
  owner[items] = snap
  type_of[items] = Ty
  return setmetatable(items, List)
end

--- Filters a list. `filter` is a predicate function or a table of criteria
-- (runs: state, task, id, owner, leased, terminal, older, in_state_for, exhausted;
-- tasks: id, policy, tag, tenant, canceled, exhausted; events: run, task, variant, since,
-- until).
local function filter_list(list, filter)
  local kind = list_kind[list]
  local snap = owner[list]
  if filter == nil then return new_list({ table.unpack(list) }, kind, snap, type_of[list]) end
  local preds = {}
  if type(filter) == "function" then
    preds[1] = function(x) return filter(x) end
  elseif type(filter) == "table" then
    local known = filters[kind] or {}
    local keys = {}
    for k in pairs(filter) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)  -- same error for the same input
    for _, k in ipairs(keys) do
      local v = filter[k]
      local f = known[k]
      if not f then
        local names = view.criteria(kind)
        view.fail(string.format("unknown %s filter %q; valid: %s", kind, tostring(k),
          #names > 0 and table.concat(names, ", ") or "(none: pass a predicate function)"))
      end
      if f.prepare then v = f.prepare(v, snap) end
      preds[#preds + 1] = function(x) return f.test(x, v, snap) end
    end
  else
    view.fail("filter table or function expected, got " .. type(filter))
  end
  local out = {}
  for _, x in ipairs(list) do
    local ok = true
    for _, p in ipairs(preds) do if not p(x) then ok = false break end end
    if ok then out[#out + 1] = x end
  end
  return new_list(out, kind, snap, type_of[list])
end

-- Lists ----------------------------------------------------------------------------------

-- `for x in list do`: the generic for calls list(nil, previous). Elements are tables
-- (records), so the previous element finds its index; lists of scalars cannot do that.
local function iterate(list, previous)
  if previous == nil then
    if list[1] ~= nil and type(list[1]) ~= "table" then
      view.fail("for x in list: this list holds plain values; use for i, x in ipairs(list) do")
    end
    return list[1]
  end
  local pos = positions[list]
  local i = pos and pos[previous]
  if not i or list[i] ~= previous then
    pos = {}
    for j, x in ipairs(list) do if pos[x] == nil then pos[x] = j end end
    positions[list] = pos
    i = pos[previous]
  end
  if not i then view.fail("for x in list: the list changed during the loop; use ipairs(list)") end
  return list[i + 1]
end

List.__name = "aq.list"
List.__call = function(list, self_or_filter, maybe_filter)
  -- `s:runs{...}` calls list(s, filter); `s.runs{...}` calls list(filter); the generic
  -- for calls list(nil, previous).
  if getmetatable(self_or_filter) == Snapshot then return filter_list(list, maybe_filter) end
  if self_or_filter == nil then return iterate(list, maybe_filter) end
  return filter_list(list, self_or_filter)
end

-- Shortest unique prefixes of the ids `key` gives, over `all` and the shown rows.
local function id_prefixes(all, shown, key)
  local ids = {}
  for _, x in ipairs(all or {}) do ids[#ids + 1] = key(x) end
  for _, x in ipairs(shown) do ids[#ids + 1] = key(x) end
  local prefixes, width = fmt.unique_prefixes(ids)
  return function(id) return fmt.pad(prefixes[id] or id, width):gsub("%s+$", "") end
end

local function run_row(r, snap, ids)
  local ri = r.run_instance
  return { ids.run(ri.id), ids.task(ri.task_id), ri.state,
           tostring(ri.attempt_count), r.lease and r.lease.owner or "", age(snap, ri.created_at),
           age(snap, view.state_since(r)) }
end

local function task_row(t, snap, ids)
  local ts = t.task_spec
  local nruns = 0
  for _, r in ipairs(snap and snap.runs or {}) do if r.run_instance.task_id == ts.id then nruns = nruns + 1 end end
  local p = ts.run_policy
  local pol = policy_name(p)
  if type(p) == "table" and p.Repeat then pol = string.format("Repeat %dx/%ss", p.Repeat.count,
    fmt.u64(p.Repeat.interval_secs)) end
  return { ids.task(ts.id), pol, tostring(ts.metadata.priority), tostring(nruns),
           fmt.iso(t.created_at) or fmt.u64(t.created_at), t.canceled_at and "canceled" or "",
           ts.metadata.description or table.concat(ts.metadata.tags, ",") }
end

view.event_subject = events.subject
view.event_time = events.time
local event_time = events.time

-- Every id of a snapshot and its events -> its shortest unique prefix (cached per snapshot).
local function short_ids(snap)
  local i = snap and info[snap]
  if i and i.short then return i.short end
  local ids = {}
  if snap then
    events.collect_ids(snap.tasks, S.root.by_name.tasks.type, ids)
    events.collect_ids(snap.runs, S.root.by_name.runs.type, ids)
    for _, e in ipairs(i and i.events or {}) do events.collect_ids(e, W.WalEvent, ids) end
  end
  local short = fmt.unique_prefixes(ids)
  if i then i.short = short end
  return short
end

--- One line of what an event says (its scalar fields, schema order, ids by unique prefix).
function view.event_text(e) return events.text(e, short_ids(owner[e])) end

List.__tostring = function(list)
  local kind = list_kind[list]
  local snap = owner[list]
  local n = #list
  local shown = math.min(n, view.MAX_ROWS)
  local rows, headers = {}
  local head = { table.unpack(list, 1, shown) }
  if kind == "runs" then
    headers = { "run", "task", "state", "attempts", "lease owner", "age", "in state" }
    local ids = { run = id_prefixes(snap and snap.runs, head, run_key),
                  task = id_prefixes(snap and snap.tasks, head, function(x)
                    return x.run_instance and x.run_instance.task_id or x.task_spec.id end) }
    for i = 1, shown do rows[i] = run_row(list[i], snap, ids) end
  elseif kind == "tasks" then
    headers = { "task", "policy", "prio", "runs", "created", "canceled", "description/tags" }
    local ids = { task = id_prefixes(snap and snap.tasks, head, task_key) }
    for i = 1, shown do rows[i] = task_row(list[i], snap, ids) end
  elseif kind == "events" then
    headers = { "seq", "offset", "time", "event" }
    for i = 1, shown do
      local e = list[i]
      local at = event_time(e)
      rows[i] = { fmt.u64(e.sequence), tostring(offset_of[e] or ""), at and (fmt.iso(at) or fmt.u64(at)) or "",
                  view.event_text(e) }
    end
  else
    local Ty = type_of[list]
    if not Ty then
      local f = S.root.by_name[kind]
      Ty = f and f.type
    end
    return show.render(list, Ty, { title = kind, max = view.MAX_ROWS })
  end
  local text = string.format("%d %s\n", n, n == 1 and kind:sub(1, -2) or kind) .. fmt.table(headers, rows)
  if n > shown then text = text .. string.format("\n... %d more (of %d)", n - shown, n) end
  return text
end

-- Tasks ----------------------------------------------------------------------------------

Task.__name = "aq.task"
Task.__index = TaskM
Task.__tostring = function(t) return show.render(t, S.Task) end

--- The runs of this task.
function TaskM:runs()
  local snap = owner[self]
  local out = {}
  for _, r in ipairs(snap and snap.runs or {}) do
    if r.run_instance.task_id == self.task_spec.id then out[#out + 1] = r end
  end
  return new_list(out, "runs", snap)
end

--- The task pretty-printed (a printable text object).
function TaskM:show() return view.text(show.render(self, S.Task)) end

-- Runs -----------------------------------------------------------------------------------

Run.__name = "aq.run"
Run.__index = RunM
Run.__tostring = function(r) return show.render(r, S.Run) end

--- The owning task (or nil when the run references an unknown task).
function RunM:task()
  local snap = owner[self]
  if not snap then return nil end
  for _, t in ipairs(snap.tasks) do if t.task_spec.id == self.run_instance.task_id then return t end end
  return nil
end

--- The run pretty-printed (a printable text object).
function RunM:show() return view.text(show.render(self, S.Run)) end

--- The state history, attempts, lease and (for a data dir) the run's WAL events as one
-- timeline. A WAL event that a history line records is shown on that line
-- (`#seq @offset`); the others (heartbeats, releases, ...) get lines of their own.
function RunM:history()
  local ri = self.run_instance
  local snap = owner[self]
  local task_ids = {}
  for i, t in ipairs(snap and snap.tasks or {}) do task_ids[i] = t.task_spec.id end
  task_ids[#task_ids + 1] = ri.task_id
  local out = { string.format("run %s (task %s): %s, %d attempt(s)", ri.id, fmt.unique_prefixes(task_ids)[ri.task_id],
    ri.state, ri.attempt_count) }
  local entries = {}
  local base = ri.created_at
  local attempt_ids = {}
  for _, a in ipairs(self.attempts) do attempt_ids[#attempt_ids + 1] = a.attempt_id end
  local short = fmt.unique_prefixes(attempt_ids)
  for i, h in ipairs(self.state_history) do
    entries[#entries + 1] = { at = h.timestamp, order = i,
      key = "state:" .. (h.from or "") .. ">" .. h.to .. "@" .. h.timestamp,
      text = (h.from and (h.from .. " -> ") or "-> ") .. h.to }
  end
  for i, a in ipairs(self.attempts) do
    entries[#entries + 1] = { at = a.started_at, order = 1000 + i, key = "start:" .. a.attempt_id,
      text = "attempt " .. short[a.attempt_id] .. " started" }
    if a.finished_at then
      local res = a.result or "finished"
      entries[#entries + 1] = { at = a.finished_at, order = 2000 + i, key = "finish:" .. a.attempt_id,
        text = "attempt " .. short[a.attempt_id] .. " " .. res .. (a.error and (": " .. a.error) or "") }
    end
  end
  if self.lease then
    entries[#entries + 1] = { at = self.lease.acquired_at, order = 3000,
      key = "lease:" .. self.lease.owner .. "@" .. self.lease.acquired_at,
      text = "lease acquired by " .. self.lease.owner
      .. " (expires " .. (fmt.iso(self.lease.expiry) or fmt.u64(self.lease.expiry)) .. ")" }
  end
  local logged = snap and info[snap] and info[snap].events
  if logged then
    local by_key = {}
    for _, e in ipairs(entries) do if e.key and not by_key[e.key] then by_key[e.key] = e end end
    for _, ev in ipairs(logged) do
      if view.event_subject(ev, "run") == ri.id then
        local k = events.history_key(ev)
        local e = k and by_key[k]
        local tag = string.format("#%s @%s", fmt.u64(ev.sequence), tostring(offset_of[ev]))
        if e and not e.wal then
          e.wal = tag .. " " .. (next(ev.event))
          by_key[k] = nil
        else
          entries[#entries + 1] = { at = event_time(ev) or 0, order = 4000 + ev.sequence,
            wal = tag, text = view.event_text(ev) }
        end
      end
    end
  end
  table.sort(entries, function(x, y)
    if x.at ~= y.at then return math.ult(x.at, y.at) end
    return x.order < y.order
  end)
  local with_wal = logged ~= nil
  for _, e in ipairs(entries) do
    local rel = base and ("+" .. fmt.duration(e.at - base)) or ""
    local line = string.format("  %-20s %-8s %s", fmt.iso(e.at) or fmt.u64(e.at), rel, e.text)
    if with_wal then
      line = string.format("  %-20s %-8s %-28s %s", fmt.iso(e.at) or fmt.u64(e.at), rel, e.wal or "(snapshot)", e.text)
    end
    out[#out + 1] = line
  end
  return view.text(table.concat(out, "\n"))
end

-- Snapshot -------------------------------------------------------------------------------

Snapshot.__name = "aq.snapshot"
Snapshot.__index = SnapshotM

--- The one-screen summary text.
function SnapshotM:summary()
  local i = info[self] or {}
  local out = {}
  local function add(k, v) out[#out + 1] = string.format("  %-24s %s", k, v) end
  out[1] = "ActionQueue snapshot" .. (i.file and ("  " .. i.file) or "")
    .. (i.file_size and string.format(" (%d bytes)", i.file_size) or "")
  if i.recovered then
    local rc = i.recovered
    out[1] = "ActionQueue data dir  " .. i.dir .. " (recovered, read-only)"
    add("recovered", string.format("snapshot %s + %d WAL event(s) replayed -> sequence %s",
      rc.snapshot_loaded and ("at sequence " .. fmt.u64(rc.snapshot_sequence)) or "none",
      rc.wal_replay_events_applied or 0, fmt.u64(rc.latest_sequence or 0)))
    add("WAL", string.format("%d record(s), %d bytes%s  (s:events{...})", i.wal_records or 0, i.wal_bytes or 0,
      i.wal_error and (", then " .. tostring(i.wal_error.message or i.wal_error)) or ""))
    for _, w in ipairs(rc.warnings or {}) do add("warning", w) end
  end
  local md = self.metadata or {}
  add("versions", string.format("frame v%d, version %s, schema_version %s", S.FRAME_VERSION,
    tostring(self.version), tostring(md.schema_version)))
  add("wal_sequence", md.wal_sequence and fmt.u64(md.wal_sequence) or "?")
  add("taken at", self.timestamp and fmt.timestamp(self.timestamp) or "?")
  local e = self.engine or {}
  local engine
  if e.paused then
    engine = "PAUSED" .. (e.paused_at and (" since " .. (fmt.iso(e.paused_at) or fmt.u64(e.paused_at))) or "")
  else
    local resumed = e.resumed_at and (fmt.iso(e.resumed_at) or fmt.u64(e.resumed_at))
    engine = "running" .. (resumed and (" (resumed " .. resumed .. ")") or "")
  end
  add("engine", engine)
  local canceled, parts = stats.canceled_tasks(self), {}
  for _, p in ipairs(stats.tasks_by_policy(self)) do
    if p.count > 0 then parts[#parts + 1] = p.policy .. " " .. p.count end
  end
  add("tasks", string.format("%d%s%s", #(self.tasks or {}), #parts > 0 and (": " .. table.concat(parts, ", ")) or "",
    canceled > 0 and string.format(" (%d canceled)", canceled) or ""))
  parts = {}
  for _, c in ipairs(stats.runs_by_state(self)) do
    if c.count > 0 then parts[#parts + 1] = c.state .. " " .. c.count end
  end
  add("runs", string.format("%d%s", #(self.runs or {}), #parts > 0 and (": " .. table.concat(parts, ", ")) or ""))
  for _, c in ipairs(stats.collections(self)) do
    if c.name ~= "tasks" and c.name ~= "runs" then add(c.name, tostring(c.count)) end
  end
  return table.concat(out, "\n")
end

Snapshot.__tostring = function(s) return s:summary() end

local function lookup(list, key, prefix, what)
  local x, err = prefix_lookup(list, key, prefix, what)
  if x then return x end
  return view.missing(err), err
end

--- Task by id or unique id prefix. When absent or ambiguous: a failed-lookup value that
-- prints the reason and raises it when used (`aq.found(t)` is false), and the message.
function SnapshotM:task(prefix) return lookup(self.tasks, task_key, prefix, "task") end

--- Run by id or unique id prefix (a failed-lookup value and the message when absent or
-- ambiguous, as for `s:task`).
function SnapshotM:run(prefix) return lookup(self.runs, run_key, prefix, "run") end

--- The WAL events read from a data dir's log (`aq.load(DIR)`), filtered like lists:
-- `s:events{run = prefix, task = prefix, variant = "LeaseAcquired", since = seq, until = seq}`.
-- A snapshot file has no events (an error says so).
function SnapshotM:events(filter)
  local logged = info[self] and info[self].events
  if not logged then view.fail("s:events(): no WAL here (load a data dir: aq.load(DIR))") end
  return filter_list(logged, filter)
end

-- The parts matched by a path with [*] as a printable text (`.data` = the matches).
local function matches_text(self, p, opts)
  local matches, err = path.query(self, p)
  if not matches then return view.missing(err), err end
  local out = {}
  for i, m in ipairs(matches) do
    out[i] = show.render(m.value, m.type, { title = m.path, max = opts and opts.max })
  end
  return setmetatable({ data = matches, text = #out > 0 and table.concat(out, "\n") or "(no match)" }, Text)
end

--- The part at `p` (`"runs[3].attempts"`, `"runs[-1]"`, `"runs[1f2e].lease"`): the value
-- (nil for an absent optional part). A path with `[*]` gives the matches as a printable
-- text (its `.data` lists `{path, value, type}`). A path that does not fit gives a
-- failed-lookup value (it prints the reason; `aq.found` is false) and the message.
function SnapshotM:get(p)
  if path.has_wildcard(p) then return matches_text(self, p) end
  local v, Ty = path.resolve(self, p)
  if type(Ty) ~= "table" then return view.missing(Ty), Ty end
  return v
end

--- The part at `p` (default: everything; `[*]` allowed) pretty-printed, as a printable
-- text object (a failed-lookup value for a path that does not fit).
function SnapshotM:show(p, opts)
  if p and path.has_wildcard(p) then return matches_text(self, p, opts) end
  local v, Ty = path.resolve(self, p or "")
  if type(Ty) ~= "table" then return view.missing(Ty), Ty end
  opts = opts or {}
  opts.title = opts.title or p
  return view.text(show.render(v, Ty, opts))
end

--- Statistics (prints as text; the plain data is in `.data`).
function SnapshotM:stats()
  local i = info[self] or {}
  local data = stats.compute(self, i)
  return setmetatable({ data = data, text = stats.render(data) }, Text)
end

--- Differences to another snapshot (prints as text; the plain data is in `.data`).
function SnapshotM:diff(other)
  local diff = require "actionqueue.storage.inspect.diff"
  if type(other) == "string" then other = require("actionqueue.storage.inspect").load(other) end
  if not view.is_snapshot(other) and type(other) ~= "table" then
    view.fail("s:diff(other): a snapshot or a file name expected, got " .. type(other))
  end
  local data = diff.compare(self, other)
  local text = diff.render(data, (info[self] or {}).file, (info[other] or {}).file)
  return setmetatable({ data = data, text = text }, Text)
end

--- Every validation violation (a list printing one line per violation).
function SnapshotM:validate()
  local snapshot = require "actionqueue.storage.snapshot"
  local list = snapshot.validate(self, { all = true })
  local lines = { #list == 0 and "valid: no violations" or (#list .. " violation(s)") }
  for i, v in ipairs(list) do lines[i + 1] = string.format("  %s: %s (%s)", v.path, v.message, v.kind) end
  return setmetatable({ data = list, text = table.concat(lines, "\n") }, Text)
end

check_names(SnapshotM, S.Snapshot)
check_names(TaskM, S.Task)
check_names(RunM, S.Run)

-- Sets the metatables below `v` of schema type `Ty` (lists, records, enum payloads).
local function attach(v, Ty, snap, name)
  while Ty.kind == "option" do Ty = Ty.of end
  if type(v) ~= "table" then return end
  if Ty.kind == "list" then
    new_list(v, name or "entries", snap, Ty)
    local el = Ty.of
    while el.kind == "option" do el = el.of end
    if el.kind == "record" or el.kind == "list" or el.kind == "enum" then
      for _, x in ipairs(v) do attach(x, el, snap) end
    end
  elseif Ty.kind == "record" then
    type_of[v] = Ty
    owner[v] = snap
    if Ty == S.Task then setmetatable(v, Task)
    elseif Ty == S.Run then setmetatable(v, Run)
    elseif Ty == W.WalEvent then setmetatable(v, Event)
    elseif getmetatable(v) == nil or getmetatable(v) == Value then setmetatable(v, Value) end
    for _, f in ipairs(Ty.fields) do attach(v[f.name], f.type, snap, f.name) end
  elseif Ty.kind == "enum" then
    local vname, payload = next(v)
    local variant = Ty.by_name[vname]
    type_of[v] = Ty
    if getmetatable(v) == nil then setmetatable(v, Value) end
    if variant and variant.type then attach(payload, variant.type, snap, vname) end
  end
end

-- WAL events print through the schema, with their offset in the log.
Event.__name = "aq.wal_event"
Event.__tostring = function(e)
  local text = show.render(e, W.WalEvent)
  if offset_of[e] then text = text:gsub("^WalEvent", "WalEvent at offset " .. offset_of[e]) end
  return text
end

--- Attaches the views to a raw snapshot (in place; returns it).
-- @tparam table snap the snapshot
-- @tparam[opt] table meta `{file = path, file_size = n, payload_size = n}` shown in the
--   summary; a data dir adds `dir`, `recovered` (recovery.summary) and `events` (the WAL
--   records `{sequence =, event =}`) with `offsets` (record -> byte offset)
function view.wrap(snap, meta)
  info[snap] = meta or info[snap]
  for _, f in ipairs(S.root.fields) do attach(snap[f.name], f.type, snap, f.name) end
  setmetatable(snap, Snapshot)
  type_of[snap] = S.root
  meta = info[snap]
  if meta and meta.events then
    for _, e in ipairs(meta.events) do
      attach(e, W.WalEvent, snap)
      if meta.offsets then offset_of[e] = meta.offsets[e] end
    end
    new_list(meta.events, "events", snap, { kind = "list", of = W.WalEvent })
  end
  return snap
end

--- The kind of a wrapped list ("runs", "tasks", "events" or the field name), else nil.
function view.kind(x) return list_kind[x] end

--- The schema type recorded for a wrapped table (nil for others).
function view.type_of(x) return type_of[x] end

--- Wraps WAL records without a snapshot (a log that does not recover, a WAL file): a list
-- of kind "events" that prints as a table and filters like `s:events{...}`.
-- @tparam table records list of `{sequence =, event =}`
-- @tparam[opt] table offsets record -> byte offset in the log
function view.wrap_events(records, offsets)
  for _, e in ipairs(records) do
    attach(e, W.WalEvent, nil)
    if offsets then offset_of[e] = offsets[e] end
  end
  return new_list(records, "events", nil, { kind = "list", of = W.WalEvent })
end

--- True when `x` is a wrapped snapshot.
function view.is_snapshot(x) return getmetatable(x) == Snapshot end

--- The metadata recorded by `wrap` (file name, sizes).
function view.info(snap) return info[snap] end

return view
