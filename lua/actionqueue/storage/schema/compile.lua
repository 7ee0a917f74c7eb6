--- The compiled form of the schema for the C codecs.
-- The C core compiles a root type table once into one C type graph (csrc/schema.c,
-- cached per root table in one weak registry table) that the JSON decoder, the JSON
-- encoder and the postcard codec all walk, so coding does no schema lookups in Lua.
-- This module is the Lua entry point to that cache.
-- @module actionqueue.storage.schema.compile
local core = require "actionqueue.storage.core"

local compile = {}

--- The compiled schema (a `Schema` userdata) of a root type.
-- Every codec (`core.json_decode`, `core.json_encode`, `core.postcard_decode`,
-- `core.postcard_encode`) accepts it in place of the type table.
-- @tparam table root a schema type, e.g. `schema.snapshot.root` or `schema.wal.WalEvent`
-- @treturn userdata compiled schema (the same object on every call for one root)
function compile.schema(root)
  return core.schema(root)
end

return compile
