--- `help()` / `aq.help(x)`: what can be done with a value, from the schema and the views'
-- method tables (nothing hand-listed about fields, criteria or variants).
-- @module actionqueue.storage.inspect.help
local view = require "actionqueue.storage.inspect.view"

local help = {}

local OVERVIEW = [[
aq.load(FILE|DIR)   a snapshot file, or a data dir's recovered state with its WAL events
aq.open(FILE|DIR)   the same, returning nil, err instead of raising
aq.show(x)          any part through the schema (a printable text); aq.print(x) prints it
aq.found(x)         false for nil and for a failed lookup such as s:run("zzz")
aq.wrap(snap)       the views over an in-memory snapshot table
aq.help(x)          what you can do with x: help(s), help(s.runs), help(s.runs[1]) ...
Paths (s:get, s:show, aqstore show/dump/query): runs[2].attempts, runs[-1], runs[*].lease.owner,
  runs[1f2e].state_history (id prefix; quote all-digit prefixes: runs["1234"])
Lists: s:runs{state = "Running"}, for r in list do ... end, ipairs(list), #list]]

local function field_names(T)
  while T and T.kind == "option" do T = T.of end
  if not T or T.kind ~= "record" then return nil end
  local names = {}
  for i, f in ipairs(T.fields) do names[i] = f.name end
  return table.concat(names, ", ")
end

--- The methods offered by a wrapped value (from its metatable's __index table), sorted.
function help.methods(x)
  local mt = getmetatable(x)
  local idx = mt and rawget(mt, "__index")
  local names = {}
  if type(idx) == "table" then
    for k, v in pairs(idx) do if type(v) == "function" then names[#names + 1] = k end end
  end
  table.sort(names)
  return names
end

--- The help text for `x` (a printable text object).
function help.text(x)
  local out = {}
  local function add(s) out[#out + 1] = s end
  if x == nil then
    add(OVERVIEW)
  elseif view.is_snapshot(x) then
    add("a snapshot (s): methods  s:" .. table.concat(help.methods(x), "  s:"))
    add("fields: " .. field_names(view.type_of(x)))
    add("lists are callable with criteria: s:runs{...} (" .. table.concat(view.criteria("runs"), ", ")
      .. "), s:tasks{...} (" .. table.concat(view.criteria("tasks"), ", ") .. "), s:events{...} ("
      .. table.concat(view.criteria("events"), ", ") .. ")")
  elseif getmetatable(x) and getmetatable(x).__name == "aq.list" then
    local T = view.type_of(x)
    add(string.format("a list of %d %s: #list, list[i], list[#list]", #x,
      T and T.of and (T.of.name or T.of.kind) or "entries"))
    add("loops: for x in list do ... end, for i, x in ipairs(list) do ... end")
    local crit = view.criteria(view.kind(x))
    add("filter: list{criteria} or list(function(x) return ... end) gives a new list"
      .. (#crit > 0 and ("; criteria: " .. table.concat(crit, ", ")) or ""))
    local el = T and T.of
    if el and field_names(el) then add("entry fields: " .. field_names(el)) end
  elseif type(x) == "table" and view.type_of(x) then
    local T = view.type_of(x)
    add(string.format("a %s", T.name or T.kind))
    if field_names(T) then add("fields: " .. field_names(T)) end
    local m = help.methods(x)
    if #m > 0 then add("methods: " .. table.concat(m, ", ")) end
    if T.kind == "enum" then
      local names = {}
      for i, v in ipairs(T.variants) do names[i] = v.name end
      add("variants: " .. table.concat(names, ", "))
    end
  else
    add(string.format("a %s value: %s", type(x), tostring(x)))
  end
  return view.text(table.concat(out, "\n"))
end

return help
