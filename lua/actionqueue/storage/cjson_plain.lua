--- Plain Lua values from lua-cjson: the one place that undoes its two quirks.
-- lua-cjson decodes every JSON number as a float (`3` comes back as `3.0`) and JSON `null`
-- as the sentinel `cjson.null`. Fields that are integers in Lua (indexes, sizes, CRCs,
-- timestamps) must be integers again, and a `null` is an absent value. Integers above 2^53
-- are not exact through cjson at all: exact u64 JSON goes through the package's own
-- decoder (`core.json_decode`), never through here.
-- @module actionqueue.storage.cjson_plain
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local plain = {}

--- One value: `cjson.null` -> nil, an integral float -> its integer, anything else as is
-- (tables are gone into when `deep`).
-- @param v
-- @tparam[opt] boolean deep
function plain.value(v, deep)
  if v == cjson.null then return nil end
  if math.type(v) == "float" then return math.tointeger(v) or v end
  if deep and type(v) == "table" then plain.fields(v, true) end
  return v
end

--- Every field of table `t`, in place (`plain.value`); returns `t`.
-- @tparam table t
-- @tparam[opt] boolean deep also the tables inside
-- @treturn table t
function plain.fields(t, deep)
  for k, v in pairs(t) do t[k] = plain.value(v, deep) end
  return t
end

--- Decodes a JSON object or array into plain values (`cjson.safe`, then `plain.fields`).
-- @tparam string text
-- @tparam[opt] boolean deep
-- @treturn table|nil the value (nil when `text` is not JSON or not an object/array)
-- @treturn[opt] string cjson's message when it is not JSON
function plain.decode(text, deep)
  local t, err = cjson_safe.decode(text)
  if type(t) ~= "table" then return nil, err end
  return plain.fields(t, deep)
end

return plain
