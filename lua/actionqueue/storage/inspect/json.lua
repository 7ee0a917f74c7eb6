--- JSON writers for inspection output.
--
-- * `json.encode_typed(value, type)`: a schema value through the C canonical encoder
--   (`core.json_encode`, the project's one schema-driven JSON writer): keys in schema
--   order, u64 exact, compact or indented; what `aqstore dump` and `show --json` print.
-- * `json.encode(value)` writes plain Lua data (the `--json` documents of the CLI):
--   object keys sorted, `json.null` for null, `json.array(t)` to mark (empty) arrays.
-- @module actionqueue.storage.inspect.json
local core = require "actionqueue.storage.core"

local json = {}

--- The JSON `null` sentinel for `json.encode`.
json.null = setmetatable({}, { __tostring = function() return "null" end })

local ARRAY = setmetatable({}, { __mode = "k" })

--- Marks `t` as a JSON array (so that an empty table prints `[]`). Returns `t`.
function json.array(t)
  t = t or {}
  ARRAY[t] = true
  return t
end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\t"] = "\\t",
                  ["\n"] = "\\n", ["\f"] = "\\f", ["\r"] = "\\r" }

--- A JSON string literal (snapshot-format.md §4.1.2 escaping).
function json.string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == "\127" then return c end
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function newline(indent, depth)
  if not indent then return "" end
  return "\n" .. string.rep(indent, depth)
end

local function join(items, open, close, indent, depth)
  if #items == 0 then return open .. close end
  local sep = indent and ("," .. newline(indent, depth + 1)) or ","
  return open .. newline(indent, depth + 1) .. table.concat(items, sep) .. newline(indent, depth) .. close
end

local function colon(indent) return indent and ": " or ":" end

local WORKFLOW = { workflow = true }

--- Encodes `value` of schema type `T` with `core.json_encode`. Inspection shows whatever
-- was decoded, so feature-gated variants (Cron) are allowed. Raises on a value that does
-- not fit `T` (with the path of the problem).
-- @param value the Lua value
-- @tparam table T a schema type
-- @tparam[opt] table opts `{indent = 2}` (or `"  "`, `true`) for pretty output
-- @treturn string JSON text
function json.encode_typed(value, T, opts)
  local indent = opts and opts.indent or nil
  local text, err = core.json_encode(value, T, { indent = indent, features = WORKFLOW })
  if not text then error("encode_typed: " .. err, 2) end
  return text
end

local RAW = {}
RAW.__index = RAW

--- Wraps pre-formatted JSON text (e.g. an unsigned u64) so `json.encode` emits it verbatim.
function json.raw(text)
  return setmetatable({ text = text }, RAW)
end

local function is_array(t)
  if ARRAY[t] then return true end
  if next(t) == nil then return false end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function plain(v, indent, depth)
  local tv = type(v)
  if v == nil or v == json.null then return "null"
  elseif tv == "boolean" then return v and "true" or "false"
  elseif tv == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.17g", v)
  elseif tv == "string" then return json.string(v)
  elseif tv == "table" then
    if getmetatable(v) == RAW then return v.text end
    local items = {}
    if is_array(v) then
      for i = 1, #v do items[i] = plain(v[i], indent, depth + 1) end
      return join(items, "[", "]", indent, depth)
    end
    local keys = {}
    for key in pairs(v) do keys[#keys + 1] = tostring(key) end
    table.sort(keys)
    for i, key in ipairs(keys) do
      local val = v[key]
      if val == nil then val = v[tonumber(key)] end
      items[i] = json.string(key) .. colon(indent) .. plain(val, indent, depth + 1)
    end
    return join(items, "{", "}", indent, depth)
  end
  return json.string(tostring(v))
end

--- Encodes plain Lua data (keys sorted; integers exact; `json.raw` for u64 values).
-- @param value the data
-- @tparam[opt] table opts `{indent = "  "}`
function json.encode(value, opts)
  local indent = opts and opts.indent
  if indent == true then indent = "  " end
  return plain(value, indent, 0)
end

return json
