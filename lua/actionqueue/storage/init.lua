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
  source = "actionqueue.storage.source",
  wal = "actionqueue.storage.wal",
  recovery = "actionqueue.storage.recovery",
  inspect = "actionqueue.storage.inspect",
  batch = "actionqueue.storage.batch",
  datadir = "actionqueue.storage.datadir",
  filekind = "actionqueue.storage.filekind",
}

-- REPL conveniences (read-only), loaded on first use from actionqueue.storage.inspect.
local function inspect() return require "actionqueue.storage.inspect" end

--- Loads a snapshot file, or the state a data dir recovers to (with its WAL events),
-- read-only into the REPL views (`s = aq.load(path)`).
-- @tparam string path
-- @tparam[opt] table opts for a data dir: `timestamp` of the recovered snapshot
-- @return the snapshot view; raises a one-line error value on failure
function storage.load(path, opts) return inspect().load(path, opts) end

--- Like `load`, but returns `nil, err` instead of raising.
-- @tparam string path
-- @tparam[opt] table opts as for `load`
-- @return the snapshot view, or `nil, err`
function storage.open(path, opts) return inspect().open(path, opts) end

--- The WAL records of a data dir or WAL file up to the first problem (a list filtering like
-- `s:events{...}`), also when the data dir does not recover; the problem is the 2nd value.
function storage.events(path) return inspect().events(path) end

--- Schema-aware pretty printer for any part of a snapshot (`aq.show(s.runs[1])`).
-- @param x the value
-- @tparam[opt] table|string T schema type or record name (`"SnapshotRun"`); guessed when absent
-- @tparam[opt] table opts `{max = 20, title = "..."}`
-- @return a text object (the REPL prints it; `tostring` gives the string)
function storage.show(x, T, opts) return inspect().show(x, T, opts) end

--- The REPL views over an in-memory snapshot table (from `snapshot.build` or `decode`).
-- @tparam table snap
-- @tparam[opt] table meta `{file = ..., file_size = ...}`
-- @return the snapshot view
function storage.wrap(snap, meta) return inspect().wrap(snap, meta) end

--- Prints any part through the schema (`aq.show` for scripts).
function storage.print(...) return inspect().print(...) end

--- False for nil and for a failed lookup (`s:run("zzz")`), else true.
function storage.found(x) return inspect().found(x) end

--- What you can do with `x` (or an overview without it), as a printable text.
function storage.help(x) return inspect().help(x) end

return setmetatable(storage, {
  modules = submodules,  -- the lazily loaded names (the REPL completes them after `aq.`)
  __index = function(t, k)
    local name = submodules[k]
    if not name then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})
