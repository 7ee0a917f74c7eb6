--- Differences between two snapshots, walking the schema: tasks and runs matched by id
-- (added, removed, changed state, changed fields), every other collection compared as a
-- multiset of entries, and leaf-level changes of the scalar parts (engine, metadata ...).
-- @module actionqueue.storage.inspect.diff
local S = require "actionqueue.storage.schema.snapshot"
local fmt = require "actionqueue.storage.inspect.fmt"
local json = require "actionqueue.storage.inspect.json"
local show = require "actionqueue.storage.inspect.show"

local diff = {}

--- Maximum number of changed paths recorded per task or run.
diff.MAX_PATHS = 10

local KEYED = {
  tasks = function(t) return t.task_spec.id end,
  runs = function(r) return r.run_instance.id end,
}

local function leaf_text(v, T, name)
  while T.kind == "option" do
    if v == nil then return "null" end
    T = T.of
  end
  if T.kind == "u64" then return show.is_time_field(name) and fmt.timestamp(v) or fmt.u64(v) end
  if T.kind == "string" or T.kind == "bytes" then return json.string(v) end
  if T.kind == "record" or T.kind == "list" or T.kind == "enum" then return json.encode_typed(v, T) end
  return tostring(v)
end

--- Collects the paths where `a` and `b` (of type `T`) differ into `out`
-- (`{path = ..., from = text, to = text}`), at most `limit` of them.
function diff.values(a, b, T, prefix, out, limit, name)
  limit = limit or math.huge
  if #out >= limit then return out end
  local K = T
  while K.kind == "option" and a ~= nil and b ~= nil do K = K.of end
  if K.kind == "record" and a ~= nil and b ~= nil then
    for _, f in ipairs(K.fields) do
      local sub = prefix == "" and f.name or (prefix .. "." .. f.name)
      diff.values(a[f.name], b[f.name], f.type, sub, out, limit, f.name)
    end
    return out
  end
  if K.kind == "list" and a ~= nil and b ~= nil and #a == #b and K.of.kind == "record" then
    for i = 1, #a do diff.values(a[i], b[i], K.of, prefix .. "[" .. i .. "]", out, limit) end
    return out
  end
  local ta, tb = json.encode_typed(a, T), json.encode_typed(b, T)
  if ta ~= tb then
    out[#out + 1] = { path = prefix, from = leaf_text(a, T, name), to = leaf_text(b, T, name) }
  end
  return out
end

--- Compares snapshots `a` and `b`.
-- @treturn table `{identical = bool, fields = {...}, keyed = {tasks = ..., runs = ...}, collections = {...}}`
function diff.compare(a, b)
  local r = { identical = true, fields = {}, keyed = {}, collections = {} }
  for _, f in ipairs(S.root.fields) do
    if KEYED[f.name] then
      local key = KEYED[f.name]
      local la, lb = a[f.name] or {}, b[f.name] or {}
      local ia, ib = {}, {}
      for _, x in ipairs(la) do ia[key(x)] = x end
      for _, x in ipairs(lb) do ib[key(x)] = x end
      local k = { added = {}, removed = {}, changed = {} }
      for _, x in ipairs(lb) do if not ia[key(x)] then k.added[#k.added + 1] = key(x) end end
      for _, x in ipairs(la) do
        local id = key(x)
        local y = ib[id]
        if not y then
          k.removed[#k.removed + 1] = id
        else
          local paths = diff.values(x, y, f.type.of, "", {}, diff.MAX_PATHS)
          if #paths > 0 then
            local c = { id = id, paths = paths }
            if f.name == "runs" and x.run_instance.state ~= y.run_instance.state then
              c.from_state, c.to_state = x.run_instance.state, y.run_instance.state
            end
            k.changed[#k.changed + 1] = c
          end
        end
      end
      if #k.added + #k.removed + #k.changed > 0 then r.identical = false end
      r.keyed[f.name] = k
    elseif f.type.kind == "list" then
      local count = {}
      for _, x in ipairs(a[f.name] or {}) do
        local s = json.encode_typed(x, f.type.of)
        count[s] = (count[s] or 0) + 1
      end
      local added = 0
      for _, x in ipairs(b[f.name] or {}) do
        local s = json.encode_typed(x, f.type.of)
        if (count[s] or 0) > 0 then count[s] = count[s] - 1 else added = added + 1 end
      end
      local removed = 0
      for _, n in pairs(count) do removed = removed + n end
      r.collections[#r.collections + 1] = { name = f.name, added = added, removed = removed,
        from = #(a[f.name] or {}), to = #(b[f.name] or {}) }
      if added + removed > 0 then r.identical = false end
    else
      diff.values(a[f.name], b[f.name], f.type, f.name, r.fields, math.huge, f.name)
    end
  end
  if #r.fields > 0 then r.identical = false end
  return r
end

local function path_list(paths)
  local names = {}
  for i, p in ipairs(paths) do names[i] = p.path end
  return table.concat(names, ", ")
end

--- Renders a comparison as text (`a_name`/`b_name` label the two sides).
function diff.render(r, a_name, b_name)
  local out = { "--- " .. (a_name or "a"), "+++ " .. (b_name or "b") }
  if r.identical then out[#out + 1] = "no differences" return table.concat(out, "\n") end
  for _, c in ipairs(r.fields) do out[#out + 1] = string.format("%s: %s -> %s", c.path, c.from, c.to) end
  for _, name in ipairs { "tasks", "runs" } do
    local k = r.keyed[name]
    if k and #k.added + #k.removed + #k.changed > 0 then
      out[#out + 1] = string.format("%s: %d added, %d removed, %d changed", name, #k.added, #k.removed, #k.changed)
      for _, id in ipairs(k.added) do out[#out + 1] = "  + " .. id end
      for _, id in ipairs(k.removed) do out[#out + 1] = "  - " .. id end
      for _, c in ipairs(k.changed) do
        local st = c.from_state and (" " .. c.from_state .. " -> " .. c.to_state) or ""
        out[#out + 1] = "  ~ " .. c.id .. st .. " (" .. path_list(c.paths) .. ")"
      end
    end
  end
  for _, c in ipairs(r.collections) do
    if c.added + c.removed > 0 then
      out[#out + 1] = string.format("%s: %d added, %d removed (%d -> %d entries)", c.name, c.added, c.removed,
        c.from, c.to)
    end
  end
  return table.concat(out, "\n")
end

--- The comparison as plain data for `json.encode`.
function diff.to_json(r, a_name, b_name)
  local doc = { a = a_name or json.null, b = b_name or json.null, identical = r.identical,
                fields = json.array(), tasks = {}, runs = {}, collections = {} }
  for i, c in ipairs(r.fields) do doc.fields[i] = { path = c.path, from = c.from, to = c.to } end
  for _, name in ipairs { "tasks", "runs" } do
    local k = r.keyed[name]
    local d = { added = json.array(), removed = json.array(), changed = json.array() }
    for i, id in ipairs(k.added) do d.added[i] = id end
    for i, id in ipairs(k.removed) do d.removed[i] = id end
    for i, c in ipairs(k.changed) do
      local paths = json.array()
      for j, p in ipairs(c.paths) do paths[j] = p.path end
      d.changed[i] = { id = c.id, paths = paths, from_state = c.from_state or json.null,
                       to_state = c.to_state or json.null }
    end
    doc[name] = d
  end
  for _, c in ipairs(r.collections) do
    doc.collections[c.name] = { added = c.added, removed = c.removed, from = c.from, to = c.to }
  end
  return doc
end

return diff
