--- WAL events as the REPL shows them: which run or task an event concerns, its time, a
-- one-line text (its scalar fields in schema order), and the key of the snapshot history
-- line it explains (so `r:history()` can show both on one line).
-- @module actionqueue.storage.inspect.events
local W = require "actionqueue.storage.schema.wal"
local fmt = require "actionqueue.storage.inspect.fmt"
local show = require "actionqueue.storage.inspect.show"

local events = {}

--- The run or task id an event concerns (`what` = "run" | "task"), or nil.
function events.subject(e, what)
  local _, p = next(e.event)
  if type(p) ~= "table" then return nil end
  if what == "run" then
    return p.run_id or (p.run_instance and p.run_instance.id)
  end
  return p.task_id or (p.task_spec and p.task_spec.id) or (p.run_instance and p.run_instance.task_id)
end

--- When the event happened: its `timestamp`, or a created run's `created_at` (nil if none).
function events.time(e)
  local _, p = next(e.event)
  return type(p) == "table" and (p.timestamp or (p.run_instance and p.run_instance.created_at)) or nil
end

--- Appends every id value below `v` (of schema type `T`) to `out`; returns `out`.
function events.collect_ids(v, T, out)
  while T.kind == "option" do T = T.of end
  if v == nil then return out end
  if T.kind == "id" then out[#out + 1] = v
  elseif T.kind == "record" then for _, f in ipairs(T.fields) do events.collect_ids(v[f.name], f.type, out) end
  elseif T.kind == "list" then for _, x in ipairs(v) do events.collect_ids(x, T.of, out) end
  elseif T.kind == "enum" and type(v) == "table" then
    local vname, p = next(v)
    local variant = T.by_name[vname]
    if variant and variant.type then events.collect_ids(p, variant.type, out) end
  end
  return out
end

--- One line of what an event says: the variant and its scalar fields in schema order
-- (`short` maps ids to the prefixes to print; times as ISO dates; bytes as a count).
function events.text(e, short)
  short = short or {}
  local vname, p = next(e.event)
  local variant = W.WalEventType.by_name[vname]
  local parts = {}
  if variant and variant.type and type(p) == "table" then
    for _, f in ipairs(variant.type.fields) do
      local v = p[f.name]
      local K = f.type
      while K.kind == "option" do K = K.of end
      if K.kind == "record" and type(v) == "table" and K.by_name.id and K.by_name.id.type.kind == "id" then
        parts[#parts + 1] = f.name .. ".id=" .. (short[v.id] or v.id)   -- the created task or run
      elseif f.name ~= "timestamp" and v ~= nil and K.kind ~= "record" and K.kind ~= "list" then
        local text
        if K.kind == "id" then text = short[v] or v
        elseif K.kind == "enum" then text = type(v) == "string" and v or tostring((next(v)))
        elseif K.kind == "u64" then
          text = show.is_time_field(f.name) and (fmt.iso(v) or fmt.u64(v)) or fmt.u64(v)
        elseif K.kind == "bytes" then text = #v .. " bytes"
        else text = tostring(v) end
        parts[#parts + 1] = f.name .. "=" .. text
      end
    end
  end
  return vname .. (#parts > 0 and (" " .. table.concat(parts, " ")) or "")
end

--- The key of the snapshot history line an event explains (state change, attempt start or
-- finish, lease acquisition; `r:history()` builds the same keys), or nil.
function events.history_key(e)
  local vname, p = next(e.event)
  if vname == "RunCreated" then return "state:>" .. p.run_instance.state .. "@" .. p.run_instance.created_at end
  if vname == "RunStateChanged" then
    return "state:" .. p.previous_state .. ">" .. p.new_state .. "@" .. p.timestamp
  end
  if vname == "AttemptStarted" then return "start:" .. p.attempt_id end
  if vname == "AttemptFinished" then return "finish:" .. p.attempt_id end
  if vname == "LeaseAcquired" then return "lease:" .. p.owner .. "@" .. p.timestamp end
  return nil
end

return events
