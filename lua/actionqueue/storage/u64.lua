--- Unsigned 64-bit integers on top of Lua's signed ones.
-- A u64 above 2^63-1 is kept as the same 64-bit pattern (a negative Lua integer):
-- arithmetic wraps exactly like u64, only printing, parsing and ordering need help.
-- @module actionqueue.storage.u64
local core = require "actionqueue.storage.core"

local math_type, ult = math.type, math.ult

local u64 = {}

--- Largest u64 (18446744073709551615), as its bit pattern (-1).
u64.MAX = -1

--- Decimal text of `n` read as unsigned.
-- @tparam integer n
-- @treturn string e.g. `"18446744073709551615"` for -1
function u64.tostring(n)
  return core.u64_tostring(n)
end

--- Parses a decimal u64 (digits only, at most 18446744073709551615).
-- @tparam string s
-- @treturn ?integer the value's bit pattern, or nil when `s` is not a u64
function u64.parse(s)
  if type(s) ~= "string" then return nil end
  return core.u64_parse(s)
end

--- Unsigned `a < b`.
-- @tparam integer a
-- @tparam integer b
-- @treturn boolean
function u64.lt(a, b)
  return ult(a, b)
end

--- Unsigned `a <= b`.
-- @tparam integer a
-- @tparam integer b
-- @treturn boolean
function u64.le(a, b)
  return a == b or ult(a, b)
end

--- Unsigned comparison: -1, 0 or 1.
-- @tparam integer a
-- @tparam integer b
-- @treturn integer
function u64.compare(a, b)
  if a == b then return 0 end
  return ult(a, b) and -1 or 1
end

--- Unsigned maximum of two values.
-- @tparam integer a
-- @tparam integer b
-- @treturn integer
function u64.max(a, b)
  return ult(a, b) and b or a
end

--- `a + 1` saturating at `u64.MAX` (used for "next sequence" displays).
-- @tparam integer a
-- @treturn integer
function u64.succ_sat(a)
  if a == -1 then return a end
  return a + 1
end

--- True when `v` is a Lua integer (every integer is some u64 bit pattern).
-- @param v any value
-- @treturn boolean
function u64.is(v)
  return math_type(v) == "integer"
end

--- JSON number text for `n`, exact for every u64 (JSON libraries that go through
-- doubles would round values above 2^53); embed it raw in JSON output.
-- @tparam integer n
-- @treturn string
function u64.tojson(n)
  return core.u64_tostring(n)
end

return u64
