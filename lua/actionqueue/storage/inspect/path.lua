--- Document paths resolved against the schema: `runs[3].attempts`,
-- `tasks[1].task_spec.run_policy.Repeat.count`, `engine.paused_at`.
--
-- Syntax: dotted field names and 1-based `[i]` indexes (the same form validation
-- violations use). A step into an enum value names the variant (`run_policy.Repeat`).
-- Every step is checked against the schema, so a typo gets the list of valid fields.
-- @module actionqueue.storage.inspect.path
local schema = require "actionqueue.storage.schema.snapshot"

local path = {}

--- Parses a path into steps `{field = "runs"}` / `{index = 3}`.
-- @treturn table|nil steps, or nil and an error text
function path.parse(s)
  local steps = {}
  local pos, len = 1, #s
  if s == "" or s == "." or s == "$" then return steps end
  while pos <= len do
    local name, after = s:match("^([%a_][%w_]*)()", pos)
    if name then
      steps[#steps + 1] = { field = name }
      pos = after
    else
      local idx, after2 = s:match("^%[(%d+)%]()", pos)
      if not idx then
        return nil, string.format("bad path %q at character %d (expected a field name or [index])", s, pos)
      end
      steps[#steps + 1] = { index = math.tointeger(tonumber(idx)) }
      pos = after2
    end
    if pos <= len then
      local c = s:sub(pos, pos)
      if c == "." then
        pos = pos + 1
        if pos > len then return nil, string.format("bad path %q: ends with '.'", s) end
      elseif c ~= "[" then
        return nil, string.format("bad path %q at character %d (unexpected %q)", s, pos, c)
      end
    end
  end
  return steps
end

--- Formats steps back into path text.
function path.format(steps)
  local out = {}
  for _, st in ipairs(steps) do
    if st.index then out[#out + 1] = "[" .. st.index .. "]"
    else out[#out + 1] = (#out > 0 and "." or "") .. st.field end
  end
  return table.concat(out)
end

local function field_names(rec)
  local names = {}
  for i, f in ipairs(rec.fields) do names[i] = f.name end
  return table.concat(names, ", ")
end

--- Resolves `p` (text or steps) in `value` of schema type `T` (default: the snapshot root).
-- @return value, type (a table) of that part (value nil for an absent optional part)
-- @return nil, error text (a string) when the path does not fit the schema or the data
function path.resolve(value, p, T)
  T = T or schema.root
  local steps, perr = p, nil
  if type(p) == "string" then steps, perr = path.parse(p) end
  if not steps then return nil, perr end
  local done = {}
  for _, st in ipairs(steps) do
    local where = #done > 0 and path.format(done) or "the document"
    while T.kind == "option" do
      if value == nil then return nil, where .. " is absent (null)" end
      T = T.of
    end
    if st.index then
      if T.kind ~= "list" then
        return nil, string.format("%s is a %s, not a list: cannot index [%d]", where, T.name or T.kind, st.index)
      end
      if st.index < 1 or st.index > #value then
        return nil, string.format("%s has %d entries: [%d] is out of range", where, #value, st.index)
      end
      value, T = value[st.index], T.of
    elseif T.kind == "record" then
      local f = T.by_name[st.field]
      if not f then
        return nil, string.format("%s (%s) has no field %q; fields: %s", where, T.name, st.field, field_names(T))
      end
      value, T = value[f.name], f.type
    elseif T.kind == "enum" then
      local variant = T.by_name[st.field]
      if not variant then
        local names = {}
        for i, v in ipairs(T.variants) do names[i] = v.name end
        return nil, string.format("%s (%s) has no variant %q; variants: %s", where, T.name, st.field,
          table.concat(names, ", "))
      end
      local current = type(value) == "string" and value or (type(value) == "table" and next(value))
      if current ~= variant.name then
        return nil, string.format("%s is %s, not %s", where, tostring(current), variant.name)
      end
      if not variant.type then return nil, string.format("%s.%s is a unit variant", where, variant.name) end
      value, T = value[variant.name], variant.type
    else
      return nil, string.format("%s is a %s: no field %q", where, T.kind, st.field)
    end
    done[#done + 1] = st
  end
  return value, T
end

--- Every record type reachable from `T` (default: the snapshot root), in schema order.
function path.records(T)
  T = T or schema.root
  local seen, list = {}, {}
  local function walk(t)
    if seen[t] then return end
    seen[t] = true
    if t.kind == "record" then
      list[#list + 1] = t
      for _, f in ipairs(t.fields) do walk(f.type) end
    elseif t.kind == "option" or t.kind == "list" then
      walk(t.of)
    elseif t.kind == "enum" then
      for _, v in ipairs(t.variants) do if v.type then walk(v.type) end end
    end
  end
  walk(T)
  return list
end

--- Guesses the schema type of a raw table: the record whose fields cover all its keys
-- and whose non-optional fields are present (lists: the type of the first element).
function path.guess(value)
  if type(value) ~= "table" then return nil end
  if #value > 0 and next(value, #value) == nil and type(value[1]) == "table" then
    local el = path.guess(value[1])
    return el and { kind = "list", of = el } or nil
  end
  local best, best_score
  for _, rec in ipairs(path.records()) do
    local ok, score = true, 0
    for k in pairs(value) do
      if not rec.by_name[k] then ok = false break end
      score = score + 1
    end
    if ok then
      for _, f in ipairs(rec.fields) do
        if value[f.name] == nil and f.type.kind ~= "option" and f.default == nil then ok = false break end
      end
    end
    if ok and (not best or score > best_score) then best, best_score = rec, score end
  end
  return best
end

return path
