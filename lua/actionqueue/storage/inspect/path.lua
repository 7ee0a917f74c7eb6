--- Document paths resolved against the schema: `runs[3].attempts`,
-- `tasks[1].task_spec.run_policy.Repeat.count`, `engine.paused_at`, `runs[-1]`,
-- `runs[1f2e].state_history`, `runs[*].lease.owner`.
--
-- Syntax: dotted field names and `[...]` steps: a 1-based index (`[3]`; negative counts
-- from the end, `[-1]` is the last entry), `[*]` (every entry: only `path.query` takes it),
-- or an id prefix of the entry (`[1f2e]`, git style; quote a prefix made of digits only:
-- `["1234"]`). An entry's id is the schema's: the entry's `id` field, or the `id` of its
-- first record field that has one (`run_instance.id`, `task_spec.id`), else its first id
-- field (`task_id` of a budget). A step into an enum value names the variant
-- (`run_policy.Repeat`). Every step is checked against the schema, so a typo gets the
-- list of valid fields. `show`, `dump --path`, `query` and the REPL (`s:get`, `s:show`)
-- share this language.
-- @module actionqueue.storage.inspect.path
local schema = require "actionqueue.storage.schema.snapshot"

local path = {}

--- Parses a path into steps `{field = "runs"}` / `{index = 3}` (negative: from the end) /
-- `{all = true}` (`[*]`) / `{id = "1f2e"}`.
-- @treturn table|nil steps, or nil and an error text
function path.parse(s)
  local steps = {}
  local pos, len = 1, #s
  if s == "" or s == "." or s == "$" then return steps end
  if s:sub(1, 1) == "." and s:sub(2, 2):match("[%a_]") then pos = 2 end
  while pos <= len do
    local name, after = s:match("^([%a_][%w_]*)()", pos)
    if name then
      steps[#steps + 1] = { field = name }
      pos = after
    else
      local idx, a2 = s:match("^%[(%-?%d+)%]()", pos)
      local star, a3 = s:match("^%[(%*)%]()", pos)
      local _, quoted, a4 = s:match("^%[([\"'])([^\"']*)%1%]()", pos)
      local hex, a5 = s:match("^%[([%x%-]*[a-fA-F][%x%-]*)%]()", pos)
      if idx and tonumber(idx) ~= 0 then
        steps[#steps + 1] = { index = math.tointeger(tonumber(idx)) }
        pos = a2
      elseif star then
        steps[#steps + 1] = { all = true }
        pos = a3
      elseif quoted and quoted ~= "" then
        steps[#steps + 1] = { id = quoted:lower() }
        pos = a4
      elseif hex then
        steps[#steps + 1] = { id = hex:lower() }
        pos = a5
      else
        return nil, string.format("bad path %q at character %d (expected a field name, [index], [-index], "
          .. "[*] or [id prefix])", s, pos)
      end
    end
    if pos <= len then
      local c = s:sub(pos, pos)
      if c == "." then
        pos = pos + 1
        if pos > len then return nil, string.format("bad path %q: ends with '.'", s) end
        if not s:sub(pos, pos):match("[%a_]") then
          return nil, string.format("bad path %q at character %d (expected a field name after '.')", s, pos)
        end
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
    elseif st.all then out[#out + 1] = "[*]"
    elseif st.id then
      out[#out + 1] = st.id:match("%a") and ("[" .. st.id .. "]") or ('["' .. st.id .. '"]')
    else out[#out + 1] = (#out > 0 and "." or "") .. st.field end
  end
  return table.concat(out)
end

--- The id of a list entry of record type `T` (see the module doc), or nil.
function path.entry_id(v, T)
  while T.kind == "option" do T = T.of end
  if T.kind ~= "record" or type(v) ~= "table" then return nil end
  local f = T.by_name.id
  if f and f.type.kind == "id" then return v.id end
  for _, g in ipairs(T.fields) do
    local G = g.type
    if G.kind == "record" and G.by_name.id and G.by_name.id.type.kind == "id" and type(v[g.name]) == "table" then
      return v[g.name].id
    end
  end
  for _, g in ipairs(T.fields) do
    if g.type.kind == "id" then return v[g.name] end
  end
  return nil
end

local function field_names(rec)
  local names = {}
  for i, f in ipairs(rec.fields) do names[i] = f.name end
  return table.concat(names, ", ")
end

-- One step from `value` of type `T`: returns value, type, the concrete step (an index for
-- `[-1]` and `[id]`), or nil, error text. `where` names the part for messages.
local function step_into(value, T, st, where)
  while T.kind == "option" do
    if value == nil then return nil, where .. " is absent (null)" end
    T = T.of
  end
  if st.index or st.id then
    if T.kind ~= "list" then
      return nil, string.format("%s is a %s, not a list: cannot index %s", where, T.name or T.kind,
        path.format { st })
    end
    local i = st.index
    if st.id then
      local found, ids = {}, {}
      for j, x in ipairs(value) do
        local id = path.entry_id(x, T.of)
        if id and id:sub(1, #st.id) == st.id then found[#found + 1] = j; ids[#ids + 1] = id end
      end
      if #found == 0 then
        if T.of.kind ~= "record" or not path.entry_id(value[1] or {}, T.of) and #value > 0 then
          return nil, string.format("%s: its entries have no id to look up [%s]", where, st.id)
        end
        return nil, string.format("%s has no entry with id prefix %q", where, st.id)
      end
      local distinct = {}
      for _, id in ipairs(ids) do distinct[id] = true end
      if next(distinct, next(distinct)) then
        return nil, string.format("%s: id prefix %q is ambiguous (%d entries: %s%s)", where, st.id, #found,
          table.concat(ids, ", ", 1, math.min(#ids, 5)), #ids > 5 and ", ..." or "")
      end
      i = found[1]
    elseif i < 0 then
      i = #value + 1 + i
    end
    if i < 1 or i > #value then
      return nil, string.format("%s has %d entries: [%d] is out of range", where, #value, st.index)
    end
    return value[i], T.of, { index = i }
  elseif st.all then
    return nil, where .. ": [*] gives several parts (use a query)"
  elseif T.kind == "record" then
    local f = T.by_name[st.field]
    if not f then
      return nil, string.format("%s (%s) has no field %q; fields: %s", where, T.name, st.field, field_names(T))
    end
    return value[f.name], f.type, st
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
    return value[variant.name], variant.type, st
  end
  return nil, string.format("%s is a %s: no field %q", where, T.kind, st.field or path.format { st })
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
    local v, Ty, concrete = step_into(value, T, st, where)
    if Ty == nil or type(Ty) == "string" then return nil, Ty end
    value, T = v, Ty
    done[#done + 1] = concrete
  end
  return value, T
end

--- Every part matched by `p` (`[*]` expands to each entry), in document order.
-- @return list of `{path = "runs[2].lease.owner", value = v, type = T}` (value nil for an
--   absent optional part; a `[*]` below an absent part yields nothing), or nil, error text
function path.query(value, p, T)
  T = T or schema.root
  local steps, perr = p, nil
  if type(p) == "string" then steps, perr = path.parse(p) end
  if not steps then return nil, perr end
  local out = {}
  local function walk(v, Ty, k, done)
    if k > #steps then
      out[#out + 1] = { path = #done > 0 and path.format(done) or ".", value = v, type = Ty }
      return true
    end
    local st = steps[k]
    local where = #done > 0 and path.format(done) or "the document"
    if st.all then
      local L = Ty
      while L.kind == "option" do
        if v == nil then return true end
        L = L.of
      end
      if L.kind ~= "list" then
        return nil, string.format("%s is a %s, not a list: cannot take [*]", where, L.name or L.kind)
      end
      for i, x in ipairs(v) do
        done[#done + 1] = { index = i }
        local ok, err = walk(x, L.of, k + 1, done)
        done[#done] = nil
        if not ok then return nil, err end
      end
      return true
    end
    local x, Tx, concrete = step_into(v, Ty, st, where)
    if Tx == nil or type(Tx) == "string" then
      -- an absent optional part below a [*]: that entry has no such part
      if v == nil and k > 1 then
        local any_all = false
        for j = 1, k - 1 do if steps[j].all then any_all = true end end
        if any_all then
          out[#out + 1] = { path = path.format(done), value = nil, type = Ty, absent = true }
          return true
        end
      end
      return nil, Tx
    end
    done[#done + 1] = concrete
    local ok, err = walk(x, Tx, k + 1, done)
    done[#done] = nil
    return ok, err
  end
  local ok, err = walk(value, T, 1, {})
  if not ok then return nil, err end
  return out
end

--- True when the steps (or path text) contain `[*]`.
function path.has_wildcard(p)
  local steps = type(p) == "string" and path.parse(p) or p
  for _, st in ipairs(steps or {}) do if st.all then return true end end
  return false
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
