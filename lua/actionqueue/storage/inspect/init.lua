--- Inspection: REPL views, the schema-aware pretty printer, paths, stats and diff.
--
--     local inspect = require "actionqueue.storage.inspect"
--     local s = assert(inspect.open("data/snapshots/snapshot.bin"))  -- nil, err on failure
--     print(s)                                   -- one-screen summary
--     print(s:runs{state = "Running"})           -- table of runs
--     print(inspect.show(s.runs[1]))             -- pretty printer for any part
--
-- `inspect.load` is the REPL flavour of `open`: it raises a one-line error instead of
-- returning `nil, err` (the umbrella module exposes it as `aq.load`).
-- @module actionqueue.storage.inspect
local fsutil = require "actionqueue.storage.fsutil"
local fmt = require "actionqueue.storage.inspect.fmt"
local path = require "actionqueue.storage.inspect.path"
local show = require "actionqueue.storage.inspect.show"
local view = require "actionqueue.storage.inspect.view"

local inspect = {
  fmt = fmt, path = path, view = view,
  json = require "actionqueue.storage.inspect.json",
  stats = require "actionqueue.storage.inspect.stats",
  diff = require "actionqueue.storage.inspect.diff",
}

local LoadError = { __name = "aq.load_error" }
LoadError.__tostring = function(e) return e.message end

--- Loads a snapshot file, or the state a data dir recovers to, read-only, and wraps it in
-- the REPL views. A data dir's view also has its WAL events (`s:events{...}`) and merges
-- them into `r:history()`.
-- @tparam string p the file or data dir
-- @tparam[opt] table opts for a data dir: `timestamp` of the recovered snapshot
-- @return the wrapped snapshot, or `nil, err` (err has `kind`, `message`; `false` from
-- the loader, "no snapshot", becomes an error of kind `NoSnapshot`)
function inspect.open(p, opts)
  local datadir = require "actionqueue.storage.inspect.datadir"
  if datadir.is_dir(p) then return datadir.open(p, opts) end
  local snapshot = require "actionqueue.storage.snapshot"
  local snap, err = snapshot.load(p)
  if snap == false then
    return nil, { kind = "NoSnapshot", message = "no snapshot at " .. p }
  end
  if not snap then return nil, err end
  local meta = { file = p, file_size = fsutil.file_size(p) }
  local ok, r = pcall(snapshot.verify, p)
  if ok and type(r) == "table" and r.length then meta.payload_size = r.length end
  return view.wrap(snap, meta)
end

--- Like `open`, but raises a one-line error value (prints without a traceback in the REPL).
function inspect.load(p, opts)
  if type(p) ~= "string" then error("aq.load: file name expected", 2) end
  local s, err = inspect.open(p, opts)
  if not s then
    local msg = type(err) == "table" and (err.message or tostring(err)) or tostring(err)
    error(setmetatable({ kind = type(err) == "table" and err.kind or "Error", file = p,
                         message = "aq.load " .. p .. ": " .. msg }, LoadError), 2)
  end
  return s
end

--- The WAL records of a data dir or WAL file up to the first problem, as a list that
-- filters like `s:events{...}` (for a data dir that does not recover); the problem, if any,
-- is the second value. Read-only.
function inspect.events(p)
  if type(p) ~= "string" then error("aq.events: data dir or WAL file name expected", 2) end
  return require("actionqueue.storage.inspect.datadir").events(p)
end

--- True unless `x` is nil or a failed lookup (`s:run("zzz")` returns a value that explains
-- itself when used; this tells it apart in scripts: `if aq.found(r) then ... end`).
function inspect.found(x) return view.found(x) end

--- Prints any part through the schema (what the REPL shows for it), for scripts.
-- @param ... values (each printed on its own lines)
function inspect.print(...)
  local n = select("#", ...)
  for i = 1, n do
    local x = select(i, ...)
    local mt = getmetatable(x)
    if type(x) == "table" and not (mt and mt.__tostring) then x = inspect.show(x) end
    print(tostring(x))
  end
end

--- What you can do with `x` (or an overview without it), as a printable text.
function inspect.help(x) return require("actionqueue.storage.inspect.help").text(x) end

--- Wraps an in-memory snapshot table (e.g. from `snapshot.decode` or `snapshot.build`).
function inspect.wrap(snap, meta) return view.wrap(snap, meta) end

--- Pretty-prints any part (type guessed from its keys unless given) as a printable text.
-- @param x the value
-- @tparam[opt] table|string T schema type, or a record name such as "SnapshotRun"
-- @tparam[opt] table opts `{max = 20, title = "..."}` (see `show.render`)
-- @return a text object: the REPL prints it, `tostring` gives the string (`aq.print(x)`
-- prints it from a script)
function inspect.show(x, T, opts)
  if type(T) == "string" then
    local name = T
    T = nil
    for _, rec in ipairs(path.records()) do if rec.name == name then T = rec end end
    if not T then error("aq.show: unknown record type " .. name, 2) end
  end
  if not T then T = view.type_of(x) end
  return view.text(show.render(x, T, opts))
end

return inspect
