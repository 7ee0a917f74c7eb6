--- Compiled forms of the schema for the C codecs.
-- The C core compiles a type table once into a C structure (cached per root table in a
-- weak registry table), so decoding does no schema lookups in Lua. This module is the
-- Lua entry point to that cache.
-- @module actionqueue.storage.schema.compile
local core = require "actionqueue.storage.core"

local compile = {}

--- The compiled JSON schema (a `JsonSchema` userdata) of a root type.
-- @tparam table root a schema type, e.g. `schema.snapshot.root`
-- @treturn userdata compiled schema (the same object on every call for one root)
function compile.json(root)
  return core.json_schema(root)
end

return compile
