--- Structured error values.
-- Every error returned by the library is a table with a `kind`, the fields of that
-- error, and `message`: the reference engine's display text, which `tostring` returns.
-- @module actionqueue.storage.errors
local errors = {}

local Error = {}
Error.__index = Error
Error.__name = "actionqueue.storage.error"

function Error.__tostring(e)
  return e.message
end

--- Creates an error value.
-- @tparam string kind e.g. "DecodeError", "CrcMismatch", "Corruption"
-- @tparam[opt] table fields extra fields (copied)
-- @tparam string message the display text
-- @treturn table the error
function errors.new(kind, fields, message)
  local e = { kind = kind, message = message }
  if fields then
    for k, v in pairs(fields) do e[k] = v end
  end
  e.kind, e.message = kind, message
  return setmetatable(e, Error)
end

--- True when `v` is an error value made by `errors.new`.
function errors.is(v)
  return getmetatable(v) == Error
end

--- Converts a plain table (e.g. decoded from JSON) back into an error value.
function errors.from_table(t)
  return errors.new(t.kind, t, t.message)
end

return errors
