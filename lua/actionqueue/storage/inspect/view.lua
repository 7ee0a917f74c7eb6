--- REPL views: metatables over a raw snapshot so that every part prints usefully and
-- offers queries, without adding a single field to the data.
--
-- Design: `view.wrap(snap)` sets metatables on the raw tables themselves:
--
-- * the snapshot (`s`): `tostring(s)` is the one-screen summary; methods `s:task(prefix)`,
--   `s:run(prefix)`, `s:get(path)`, `s:show([path])`, `s:stats()`, `s:diff(other)`,
--   `s:validate()`, `s:summary()`; raw fields (`s.version`, `s.metadata` ...) read as usual;
-- * `s.tasks` and `s.runs` stay the raw lists but are callable: `s:runs{state = "Running"}`
--   (which is `s.runs(s, filter)`) returns a new filtered list; lists print as tables;
-- * every task and run prints (`tostring`) in detail; runs have `r:history()` (a timeline),
--   `r:task()`, `r:show()`; tasks have `t:runs()`, `t:show()`;
-- * other collections print through the schema pretty printer.
--
-- Method names never collide with schema field names (checked when this module loads),
-- and the encoders only read raw fields in schema order, so a wrapped snapshot still
-- encodes to the same bytes. Nothing here writes files.
-- @module actionqueue.storage.inspect.view
local S = require "actionqueue.storage.schema.snapshot"
local T = require "actionqueue.storage.schema.types"
local fmt = require "actionqueue.storage.inspect.fmt"
local show = require "actionqueue.storage.inspect.show"
local path = require "actionqueue.storage.inspect.path"
local stats = require "actionqueue.storage.inspect.stats"

local view = {}

--- Rows printed by a list before truncating.
view.MAX_ROWS = 20

local info = setmetatable({}, { __mode = "k" })   -- snapshot -> {file = ..., file_size = ...}
local owner = setmetatable({}, { __mode = "k" })  -- task/run/list -> snapshot
local list_kind = setmetatable({}, { __mode = "k" }) -- list -> "tasks" | "runs" | field name

local Snapshot, Task, Run, List, Text = {}, {}, {}, {}, {}

--- A piece of text that prints as itself in the REPL (and `tostring` gives the string).
function view.text(s) return setmetatable({ text = s }, Text) end
Text.__tostring = function(t) return t.text end
Text.__name = "aq.text"

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

-- Filters ------------------------------------------------------------------------------

local filters = {
  runs = {
    state = function(r, v) return r.run_instance.state == v end,
    task = function(r, v) return r.run_instance.task_id:sub(1, #v) == v:lower() end,
    id = function(r, v) return r.run_instance.id:sub(1, #v) == v:lower() end,
    owner = function(r, v) return r.lease ~= nil and r.lease.owner == v end,
    leased = function(r, v) return (r.lease ~= nil) == v end,
    terminal = function(r, v) return (T.TERMINAL_STATES[r.run_instance.state] or false) == v end,
  },
  tasks = {
    id = function(t, v) return t.task_spec.id:sub(1, #v) == v:lower() end,
    policy = function(t, v) return policy_name(t.task_spec.run_policy) == v end,
    tag = function(t, v)
      for _, tag in ipairs(t.task_spec.metadata.tags) do if tag == v then return true end end
      return false
    end,
    tenant = function(t, v) return t.task_spec.tenant_id ~= nil and t.task_spec.tenant_id:sub(1, #v) == v:lower() end,
    canceled = function(t, v) return (t.canceled_at ~= nil) == v end,
  },
}

local function new_list(items, kind, snap)
  list_kind[items] = kind
  owner[items] = snap
  return setmetatable(items, List)
end

--- Filters a tasks/runs list. `filter` is a predicate function or a table of criteria
-- (runs: state, task, id, owner, leased, terminal; tasks: id, policy, tag, tenant, canceled).
local function filter_list(list, filter)
  local kind = list_kind[list]
  local snap = owner[list]
  if filter == nil then return new_list({ table.unpack(list) }, kind, snap) end
  local preds = {}
  if type(filter) == "function" then
    preds[1] = function(x) return filter(x) end
  elseif type(filter) == "table" then
    local known = filters[kind] or {}
    for k, v in pairs(filter) do
      local f = known[k]
      if not f then
        local names = {}
        for n in pairs(known) do names[#names + 1] = n end
        table.sort(names)
        error(string.format("unknown %s filter %q (known: %s)", kind, tostring(k), table.concat(names, ", ")), 3)
      end
      if kind == "runs" and k == "state" and not T.RunState.by_name[v] then
        error(string.format("unknown run state %q", tostring(v)), 3)
      end
      preds[#preds + 1] = function(x) return f(x, v) end
    end
  else
    error("filter table or function expected", 3)
  end
  local out = {}
  for _, x in ipairs(list) do
    local ok = true
    for _, p in ipairs(preds) do if not p(x) then ok = false break end end
    if ok then out[#out + 1] = x end
  end
  return new_list(out, kind, snap)
end

-- Lists ----------------------------------------------------------------------------------

List.__name = "aq.list"
List.__call = function(list, self_or_filter, maybe_filter)
  -- `s:runs{...}` calls list(s, filter); `s.runs{...}` calls list(filter).
  if getmetatable(self_or_filter) == Snapshot then return filter_list(list, maybe_filter) end
  return filter_list(list, self_or_filter)
end

-- The shortest id prefix (at least 8 characters) that tells every id of the list apart.
local function unique_len(list, key)
  local len = 8
  while len < 36 do
    local seen, clash = {}, false
    for _, x in ipairs(list) do
      local p = key(x):sub(1, len)
      if seen[p] and seen[p] ~= key(x) then clash = true break end
      seen[p] = key(x)
    end
    if not clash then return len end
    len = len + 1
    if key(list[1]):sub(len, len) == "-" then len = len + 1 end
  end
  return 36
end

local function run_row(r, snap, w)
  local ri = r.run_instance
  return { ri.id:sub(1, w.id), ri.task_id:sub(1, w.task), ri.state,
           tostring(ri.attempt_count), r.lease and r.lease.owner or "", age(snap, ri.created_at) }
end

local function task_row(t, snap, w)
  local ts = t.task_spec
  local nruns = 0
  for _, r in ipairs(snap and snap.runs or {}) do if r.run_instance.task_id == ts.id then nruns = nruns + 1 end end
  local p = ts.run_policy
  local pol = policy_name(p)
  if type(p) == "table" and p.Repeat then pol = string.format("Repeat %dx/%ss", p.Repeat.count,
    fmt.u64(p.Repeat.interval_secs)) end
  return { ts.id:sub(1, w.id), pol, tostring(ts.metadata.priority), tostring(nruns),
           fmt.iso(t.created_at) or fmt.u64(t.created_at), t.canceled_at and "canceled" or "",
           ts.metadata.description or table.concat(ts.metadata.tags, ",") }
end

List.__tostring = function(list)
  local kind = list_kind[list]
  local snap = owner[list]
  local n = #list
  local shown = math.min(n, view.MAX_ROWS)
  local rows, headers = {}
  local head = { table.unpack(list, 1, shown) }
  if kind == "runs" then
    headers = { "run", "task", "state", "attempts", "lease owner", "age" }
    local w = shown > 0 and { id = unique_len(head, run_key),
                              task = unique_len(head, function(r) return r.run_instance.task_id end) }
    for i = 1, shown do rows[i] = run_row(list[i], snap, w) end
  elseif kind == "tasks" then
    headers = { "task", "policy", "prio", "runs", "created", "canceled", "description/tags" }
    local w = shown > 0 and { id = unique_len(head, task_key) }
    for i = 1, shown do rows[i] = task_row(list[i], snap, w) end
  else
    local f = S.root.by_name[kind]
    return show.render(list, f and f.type, { title = kind, max = view.MAX_ROWS })
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

--- The state history (and attempts) as a readable timeline.
function RunM:history()
  local ri = self.run_instance
  local out = { string.format("run %s (task %s): %s, %d attempt(s)", ri.id, fmt.short_id(ri.task_id), ri.state,
    ri.attempt_count) }
  local events = {}
  local base = ri.created_at
  for i, h in ipairs(self.state_history) do
    events[#events + 1] = { at = h.timestamp, order = i,
      text = (h.from and (h.from .. " -> ") or "-> ") .. h.to }
  end
  for i, a in ipairs(self.attempts) do
    events[#events + 1] = { at = a.started_at, order = 1000 + i, text = "attempt " .. fmt.short_id(a.attempt_id)
      .. " started" }
    if a.finished_at then
      local res = a.result or "finished"
      events[#events + 1] = { at = a.finished_at, order = 2000 + i, text = "attempt " .. fmt.short_id(a.attempt_id)
        .. " " .. res .. (a.error and (": " .. a.error) or "") }
    end
  end
  if self.lease then
    events[#events + 1] = { at = self.lease.acquired_at, order = 3000, text = "lease acquired by " .. self.lease.owner
      .. " (expires " .. (fmt.iso(self.lease.expiry) or fmt.u64(self.lease.expiry)) .. ")" }
  end
  table.sort(events, function(x, y)
    if x.at ~= y.at then return math.ult(x.at, y.at) end
    return x.order < y.order
  end)
  for _, e in ipairs(events) do
    local rel = base and ("+" .. fmt.duration(e.at - base)) or ""
    out[#out + 1] = string.format("  %-20s %-8s %s", fmt.iso(e.at) or fmt.u64(e.at), rel, e.text)
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
  local canceled, parts = 0, {}
  for _, t in ipairs(self.tasks or {}) do if t.canceled_at then canceled = canceled + 1 end end
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

--- Task by id or unique id prefix (nil and a message when absent or ambiguous).
function SnapshotM:task(prefix) return prefix_lookup(self.tasks, task_key, prefix, "task") end

--- Run by id or unique id prefix (nil and a message when absent or ambiguous).
function SnapshotM:run(prefix) return prefix_lookup(self.runs, run_key, prefix, "run") end

--- The part at `p` (`"runs[3].attempts"`) and its schema type; `nil, message` on a bad path
-- (an absent optional part gives `nil, type`).
function SnapshotM:get(p) return path.resolve(self, p) end

--- The part at `p` (default: everything) pretty-printed, as a printable text object.
function SnapshotM:show(p, opts)
  local v, Ty = path.resolve(self, p or "")
  if type(Ty) ~= "table" then return nil, Ty end
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

--- Attaches the views to a raw snapshot (in place; returns it).
-- @tparam table snap the snapshot
-- @tparam[opt] table meta `{file = path, file_size = n, payload_size = n}` shown in the summary
function view.wrap(snap, meta)
  info[snap] = meta or info[snap]
  setmetatable(snap, Snapshot)
  if type(snap.tasks) == "table" then
    new_list(snap.tasks, "tasks", snap)
    for _, t in ipairs(snap.tasks) do owner[t] = snap; setmetatable(t, Task) end
  end
  if type(snap.runs) == "table" then
    new_list(snap.runs, "runs", snap)
    for _, r in ipairs(snap.runs) do owner[r] = snap; setmetatable(r, Run) end
  end
  for _, f in ipairs(S.root.fields) do
    if f.type.kind == "list" and f.name ~= "tasks" and f.name ~= "runs" and type(snap[f.name]) == "table" then
      new_list(snap[f.name], f.name, snap)
    end
  end
  return snap
end

--- True when `x` is a wrapped snapshot.
function view.is_snapshot(x) return getmetatable(x) == Snapshot end

--- The metadata recorded by `wrap` (file name, sizes).
function view.info(snap) return info[snap] end

return view
