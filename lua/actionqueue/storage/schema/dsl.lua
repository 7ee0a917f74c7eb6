--- The schema vocabulary: constructors for the type descriptions that drive every
-- codec (snapshot JSON, WAL postcard), validation, building and inspection.
--
-- A type is a plain table with a `kind`:
--
-- * scalars: `u8`, `u16`, `u32`, `u64`, `i32`, `bool`, `string`, `bytes` (a byte string:
--   JSON array of numbers 0-255, postcard length-prefixed raw bytes; a Lua string in memory);
-- * `id`: a UUID-based identifier (`name` = "TaskId", ...): lower-case hyphenated string in
--   memory, JSON string, postcard 16-byte byte string;
-- * `option` (`of`): absent is `nil` in memory, `null` in JSON, tag 00/01 in postcard;
-- * `list` (`of`): Lua sequence;
-- * `record` (`name`, `fields`, optional `check`): fields in declaration order, each
--   `{name = ..., type = ..., default = ...}`; a field with a `default` has an explicit
--   default (filled when the key is missing, may be left out at the end of the JSON
--   array form); `dsl.NONE` is the default "absent" of an optional field;
--   `check(value)` returns nil or the reference's decode-time validation text (a Lua
--   function, or `dsl.native(name)`: one of the C core's checks, csrc/checks.c);
--   `skip_if_none = true` on an optional field (serde's "skip serializing if none"): the
--   JSON encoder leaves the key out entirely when the value is nil instead of writing
--   `null`; it affects JSON output only (postcard always writes the Option tag);
--   used by CronPolicy.max_occurrences;
--   two attributes are read by `snapshot.build` only (the codecs ignore them):
--   `own_id = true` marks the field holding the record's own identity (a fresh v4 UUID
--   when missing), `build_default = v` (or a function returning it) the friendly default
--   of a field the engine requires (`max_attempts` 1, `priority` 0, `run_policy` "Once");
-- * `enum` (`name`, `variants`): each variant `{name = ..., index = i-1, type = nil|T,
--   check = fn, feature = "workflow"|nil}`; no `type` is a unit variant, a record `type` a
--   struct variant, any other `type` a newtype variant. Unit values are the variant name
--   string in memory; data-carrying values a one-key table `{Variant = payload}`.
--
-- Types are values: the same table is shared by every record that uses it.
-- @module actionqueue.storage.schema.dsl
local core = require "actionqueue.storage.core"

local dsl = {}

--- Sentinel default for an optional field whose explicit default is "absent".
dsl.NONE = setmetatable({}, { __tostring = function() return "NONE" end })

-- The scalar types `dsl.u8`, `dsl.u16`, `dsl.u32`, `dsl.u64`, `dsl.i32`, `dsl.bool`,
-- `dsl.string` and `dsl.bytes` are made from the C core's one table of kinds
-- (csrc/schema.c), which every codec enforces: a scalar kind is added there only, and
-- `min`/`max` here are its range, for the Lua code that checks values (build, validate).
for kind, k in pairs(core.schema_kinds()) do
  if k.scalar then dsl[kind] = { kind = kind, min = k.min, max = k.max } end
end

--- One of the C core's decode-time checks (csrc/checks.c), as a `check` function.
-- Every codec, the verdict path and `snapshot.build` run that one implementation.
-- @tparam string name "TaskSpec", "TaskConstraints", "RunInstance" or "Repeat"
-- @treturn function check(value) -> nil | text
function dsl.native(name)
  return core.schema_check(name)
end

--- A UUID-based identifier type.
-- @tparam string name e.g. "TaskId"
function dsl.id(name)
  return { kind = "id", name = name }
end

--- Optional T.
function dsl.option(of)
  assert(type(of) == "table" and of.kind, "option: type expected")
  return { kind = "option", of = of }
end

--- List of T.
function dsl.list(of)
  assert(type(of) == "table" and of.kind, "list: type expected")
  return { kind = "list", of = of }
end

--- A record (struct).
-- @tparam table spec `{ "Name", {"field", T [, default = v] [, skip_if_none = true]
--   [, own_id = true] [, build_default = v]}, ..., check = fn }`
function dsl.record(spec)
  local rec = { kind = "record", name = assert(spec[1], "record: name expected"),
                fields = {}, by_name = {}, check = spec.check }
  for i = 2, #spec do
    local f = spec[i]
    local field = { name = f[1], type = assert(f[2], "record field without type: " .. tostring(f[1])),
                    index = i - 1, default = f.default, skip_if_none = f.skip_if_none or nil,
                    own_id = f.own_id or nil, build_default = f.build_default }
    assert(field.type.kind, "record " .. rec.name .. " field " .. field.name .. ": not a type")
    assert(not field.skip_if_none or field.type.kind == "option",
      "record " .. rec.name .. " field " .. field.name .. ": skip_if_none needs an option type")
    rec.fields[#rec.fields + 1] = field
    rec.by_name[field.name] = field
  end
  return rec
end

--- An enum.
-- @tparam table spec `{ "Name", {"Unit"}, {"Struct", record}, {"Newtype", T}, ... }`
function dsl.enum(spec)
  local enum = { kind = "enum", name = assert(spec[1], "enum: name expected"),
                 variants = {}, by_name = {} }
  for i = 2, #spec do
    local v = spec[i]
    local variant = { name = v[1], type = v[2], index = i - 2, check = v.check, feature = v.feature }
    enum.variants[#enum.variants + 1] = variant
    enum.by_name[variant.name] = variant
  end
  return enum
end

--- True when the enum has only unit variants.
function dsl.is_unit_enum(enum)
  for _, v in ipairs(enum.variants) do
    if v.type then return false end
  end
  return true
end

--- The default value of a field, fresh for tables (nil when the field has none).
function dsl.default_of(field)
  local d = field.default
  if d == nil or d == dsl.NONE then return nil end
  if type(d) == "function" then return d() end
  return d
end

return dsl
