--- Statistics about a snapshot: sizes, counts per collection, runs by state, tasks by
-- run policy, largest payloads, oldest unfinished runs. Collections and enum values come
-- from the schema.
-- @module actionqueue.storage.inspect.stats
local S = require "actionqueue.storage.schema.snapshot"
local T = require "actionqueue.storage.schema.types"
local fmt = require "actionqueue.storage.inspect.fmt"
local json = require "actionqueue.storage.inspect.json"

local stats = {}

--- How many entries `stats.compute` keeps in its top lists.
stats.TOP = 5

local function ult_sort(list, key)
  table.sort(list, function(x, y) return math.ult(x[key], y[key]) end)
end

-- Counts the entries of `list` by `variant_of(entry)`: one `{[label] = name, count}` per
-- variant of `enum`, in declaration order (zero counts included).
local function count_by_variant(list, variant_of, enum, label)
  local counts = {}
  for _, x in ipairs(list or {}) do
    local name = variant_of(x)
    counts[name] = (counts[name] or 0) + 1
  end
  local out = {}
  for _, v in ipairs(enum.variants) do out[#out + 1] = { [label] = v.name, count = counts[v.name] or 0 } end
  return out
end

--- Counts runs by state, in RunState declaration order: list of `{state, count}` (all states).
function stats.runs_by_state(snap)
  return count_by_variant(snap.runs, function(r) return r.run_instance.state end, T.RunState, "state")
end

--- Counts the canceled tasks (those with `canceled_at`).
function stats.canceled_tasks(snap)
  local n = 0
  for _, t in ipairs(snap.tasks or {}) do if t.canceled_at then n = n + 1 end end
  return n
end

--- Counts tasks by run policy variant (schema order): list of `{policy, count}`.
function stats.tasks_by_policy(snap)
  return count_by_variant(snap.tasks, function(t)
    local p = t.task_spec.run_policy
    return type(p) == "string" and p or next(p)
  end, T.RunPolicy, "policy")
end

--- Entry counts of every list field of the snapshot root, in schema order.
function stats.collections(snap)
  local out = {}
  for _, f in ipairs(S.root.fields) do
    if f.type.kind == "list" then
      out[#out + 1] = { name = f.name, count = #(snap[f.name] or {}) }
    end
  end
  return out
end

--- Computes the statistics.
-- @tparam table snap the snapshot
-- @tparam[opt] table info `{file = path, file_size = n, payload_size = n}`
-- @treturn table plain data (see `stats.render` and `stats.to_json`)
function stats.compute(snap, info)
  info = info or {}
  local r = { file = info.file, file_size = info.file_size, payload_size = info.payload_size,
              timestamp = snap.timestamp, wal_sequence = snap.metadata and snap.metadata.wal_sequence }
  r.collections = stats.collections(snap)
  r.json_sizes = {}
  for _, f in ipairs(S.root.fields) do
    if f.type.kind == "list" then
      r.json_sizes[#r.json_sizes + 1] = { name = f.name, bytes = #json.encode_typed(snap[f.name] or {}, f.type) }
    end
  end
  r.runs_by_state = stats.runs_by_state(snap)
  r.tasks_by_policy = stats.tasks_by_policy(snap)
  local attempts, leases, canceled = 0, 0, 0
  for _, run in ipairs(snap.runs or {}) do
    attempts = attempts + #(run.attempts or {})
    if run.lease then leases = leases + 1 end
  end
  for _, t in ipairs(snap.tasks or {}) do if t.canceled_at then canceled = canceled + 1 end end
  r.attempts, r.leases, r.canceled_tasks = attempts, leases, canceled
  local payloads = {}
  for _, t in ipairs(snap.tasks or {}) do
    payloads[#payloads + 1] = { task_id = t.task_spec.id, bytes = #t.task_spec.payload.bytes,
                                content_type = t.task_spec.payload.content_type }
  end
  table.sort(payloads, function(x, y)
    if x.bytes ~= y.bytes then return x.bytes > y.bytes end
    return x.task_id < y.task_id
  end)
  r.largest_payloads = { table.unpack(payloads, 1, math.min(#payloads, stats.TOP)) }
  local open = {}
  for _, run in ipairs(snap.runs or {}) do
    local ri = run.run_instance
    if not T.TERMINAL_STATES[ri.state] then
      open[#open + 1] = { run_id = ri.id, task_id = ri.task_id, state = ri.state, created_at = ri.created_at,
                          age = snap.timestamp and (snap.timestamp - ri.created_at) or nil }
    end
  end
  ult_sort(open, "created_at")
  r.oldest_runs = { table.unpack(open, 1, math.min(#open, stats.TOP)) }
  return r
end

local function u(n) return n and json.raw(fmt.u64(n)) or json.null end

--- The statistics as plain data for `json.encode` (stable field names, u64 exact).
function stats.to_json(r)
  local doc = { file = r.file or json.null, file_size = r.file_size or json.null,
                payload_size = r.payload_size or json.null, timestamp = u(r.timestamp),
                wal_sequence = u(r.wal_sequence), attempts = r.attempts, leases = r.leases,
                canceled_tasks = r.canceled_tasks, counts = {}, json_bytes = {}, runs_by_state = {},
                tasks_by_policy = {}, largest_payloads = json.array(), oldest_runs = json.array() }
  for _, c in ipairs(r.collections) do doc.counts[c.name] = c.count end
  for _, c in ipairs(r.json_sizes) do doc.json_bytes[c.name] = c.bytes end
  for _, c in ipairs(r.runs_by_state) do doc.runs_by_state[c.state] = c.count end
  for _, c in ipairs(r.tasks_by_policy) do doc.tasks_by_policy[c.policy] = c.count end
  for i, p in ipairs(r.largest_payloads) do
    doc.largest_payloads[i] = { task_id = p.task_id, bytes = p.bytes, content_type = p.content_type or json.null }
  end
  for i, o in ipairs(r.oldest_runs) do
    doc.oldest_runs[i] = { run_id = o.run_id, task_id = o.task_id, state = o.state,
                           created_at = u(o.created_at), age_secs = o.age or json.null }
  end
  return doc
end

--- Renders the statistics as text.
function stats.render(r)
  local out = {}
  local function add(s) out[#out + 1] = s end
  if r.file then add("file          " .. r.file) end
  if r.file_size then
    add(string.format("size          %d bytes (payload %s bytes)", r.file_size, tostring(r.payload_size or "?")))
  end
  if r.timestamp then add("taken at      " .. fmt.timestamp(r.timestamp)) end
  if r.wal_sequence then add("wal_sequence  " .. fmt.u64(r.wal_sequence)) end
  add("")
  local rows = {}
  for i, c in ipairs(r.collections) do rows[i] = { c.name, tostring(c.count), tostring(r.json_sizes[i].bytes) } end
  add(fmt.table({ "collection", "entries", "json bytes" }, rows))
  add("")
  local parts = {}
  for _, c in ipairs(r.runs_by_state) do if c.count > 0 then parts[#parts + 1] = c.state .. " " .. c.count end end
  add("runs by state     " .. (#parts > 0 and table.concat(parts, ", ") or "(none)"))
  parts = {}
  for _, c in ipairs(r.tasks_by_policy) do if c.count > 0 then parts[#parts + 1] = c.policy .. " " .. c.count end end
  add("tasks by policy   " .. (#parts > 0 and table.concat(parts, ", ") or "(none)"))
  add(string.format("attempts %d, leases %d, canceled tasks %d", r.attempts, r.leases, r.canceled_tasks))
  if #r.largest_payloads > 0 then
    add("")
    add("largest payloads")
    rows = {}
    for i, p in ipairs(r.largest_payloads) do rows[i] = { p.task_id, tostring(p.bytes), p.content_type or "" } end
    add(fmt.table({ "task", "bytes", "content_type" }, rows))
  end
  if #r.oldest_runs > 0 then
    add("")
    add("oldest unfinished runs")
    rows = {}
    local task_ids = {}
    for i, o in ipairs(r.oldest_runs) do task_ids[i] = o.task_id end
    local short = fmt.unique_prefixes(task_ids)   -- two tasks never share a cell
    for i, o in ipairs(r.oldest_runs) do
      rows[i] = { o.run_id, short[o.task_id], o.state, fmt.iso(o.created_at) or fmt.u64(o.created_at),
                  o.age and fmt.duration(o.age) or "" }
    end
    add(fmt.table({ "run", "task", "state", "created", "age" }, rows))
  end
  return table.concat(out, "\n")
end

return stats
