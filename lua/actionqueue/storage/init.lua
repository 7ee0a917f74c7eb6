--- actionqueue-storage: read, write, check and repair ActionQueue storage.
-- The umbrella module; submodules load lazily on first use, so
-- `require "actionqueue.storage"` stays cheap.
-- @module actionqueue.storage
local storage = { _VERSION = "0.1.0" }

local submodules = {
  core = "actionqueue.storage.core",
  errors = "actionqueue.storage.errors",
  u64 = "actionqueue.storage.u64",
  uuid = "actionqueue.storage.uuid",
  schema = "actionqueue.storage.schema",
  snapshot = "actionqueue.storage.snapshot",
  wal = "actionqueue.storage.wal",
  recovery = "actionqueue.storage.recovery",
  inspect = "actionqueue.storage.inspect",
  batch = "actionqueue.storage.batch",
}

-- REPL conveniences (read-only; see actionqueue.storage.inspect):
--   s = aq.load(path)   a snapshot view (raises a one-line error on failure)
--   aq.open(path)       the same, returning nil, err instead
--   aq.show(x [, T])    schema-aware pretty printer for any part
--   aq.wrap(snap)       views over an in-memory snapshot table
--   aq.print(x)         prints any part through the schema (for scripts)
--   aq.found(x)         false for nil and for a failed lookup (s:run("zzz"))
--   aq.help([x])        what you can do with x (or everything)
for _, name in ipairs { "load", "open", "show", "wrap", "print", "found", "help" } do
  storage[name] = function(...) return require("actionqueue.storage.inspect")[name](...) end
end

return setmetatable(storage, {
  __index = function(t, k)
    local name = submodules[k]
    if not name then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})
