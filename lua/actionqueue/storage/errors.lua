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

--- Where an I/O error happened, to show after the engine's text (which contracts keep
-- unchanged): `step: OP, file: PATH` and the error's `hint`, from the structured fields
-- `err.op` (the step: "open temp", "write", "fsync", "rename", "fsync dir", ...),
-- `err.path` (the file that step acted on) and `err.hint`.
-- @param err an error value (or anything)
-- @treturn string|nil nil when `err` carries no step
function errors.where(err)
  if type(err) ~= "table" or type(err.op) ~= "string" then return nil end
  local s = "step: " .. err.op
  if type(err.path) == "string" then s = s .. ", file: " .. err.path end
  if type(err.hint) == "string" then s = s .. "; " .. err.hint end
  return s
end

--- Converts a plain table (e.g. decoded from JSON) back into an error value.
function errors.from_table(t)
  return errors.new(t.kind, t, t.message)
end

return errors
