--- Snapshot sources: the one reader of the files `aqstore build`, `aqstore validate`, the
-- batch `build` kind and scripts turn into snapshots.
--
-- Two formats, told apart by the extension (`.lua`, `.json`) or, for other names and for
-- standard input (`-`), by the first non-blank byte (`{` or `[` is JSON; a Lua chunk
-- cannot start with either):
--
-- * **JSON** is a snapshot payload document, as `aqstore dump` writes it (any key order,
--   any whitespace, the optional and defaulted fields may be left out, as the engine
--   reads it). It is read by the package's schema-driven decoder (`core.json_decode` with
--   the snapshot schema): u64 values are exact up to 2^64-1, ids in the four spellings,
--   and errors are the engine's decode texts with line and column.
-- * **Lua** is a chunk returning a friendly table for `snapshot.build` (see that module).
--   It is data, so it runs in `actionqueue.storage.sandbox`: copies of the libraries, no
--   access to anything of the caller, CPU and memory budgets.
--
-- Every error is an error value (`errors.new`) with `file`, `kind`, `detail` (the text
-- after the file name) and `message` = `FILE: detail`; document problems name one path:
-- `queue.lua: tasks[2].task_spec.constraints.max_attempts: expected u32, got -1`.
-- @module actionqueue.storage.source
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local sandbox = require "actionqueue.storage.sandbox"
local codec = require "actionqueue.storage.snapshot.codec"

local source = {}

--- The name standing for standard input.
source.STDIN = "-"

local function fail(kind, file, detail, fields)
  local f = { file = file, detail = detail }
  for k, v in pairs(fields or {}) do f[k] = v end
  return nil, errors.new(kind, f, file .. ": " .. detail)
end

--- The format of a source: "json" or "lua".
-- @tparam string name file name (or "-")
-- @tparam string text its contents
-- @treturn string
function source.format(name, text)
  if name:match("%.json$") then return "json" end
  if name:match("%.lua$") then return "lua" end
  local first = text:match("^[ \t\r\n]*(.)")
  if first == "{" or first == "[" then return "json" end
  return "lua"
end

local function read_text(path)
  if path == source.STDIN then
    local text, err = io.stdin:read("a")
    if not text then return fail("IoError", "(stdin)", "read standard input: " .. tostring(err)) end
    return text
  end
  local f, oerr = io.open(path, "rb")
  if not f then
    -- io.open's message starts with the path ("x.lua: No such file or directory")
    local detail = oerr:sub(1, #path + 2) == path .. ": " and oerr:sub(#path + 3) or oerr
    return fail("IoError", path, "open: " .. detail)
  end
  local text, rerr = f:read("a")
  f:close()
  if not text then return fail("IoError", path, "read: " .. tostring(rerr)) end
  return text
end

--- Decodes a JSON snapshot document exactly (no §6 validation).
-- @tparam string text the JSON text
-- @tparam[opt] string name for messages
-- @return the snapshot table, or `nil, err` (`DecodeError` with `line`, `column`)
function source.decode_json(text, name)
  name = name or "(json)"
  local snap, msg, line, column = core.json_decode(text, codec.schema())
  if snap == nil then
    return fail("DecodeError", name, msg, { line = line, column = column })
  end
  return snap
end

--- Reads a source into a table, without building or validating it.
-- @tparam string path a file name, or "-" for standard input
-- @tparam[opt] table opts `format` ("lua" | "json", overrides the guess), `name` (used in
--   messages; default the path, "(stdin)" for "-"), `instructions`, `memory` (sandbox
--   budgets for Lua sources)
-- @return the table, and the format ("json": a complete decoded snapshot; "lua": a friendly
--   table for `snapshot.build`); or `nil, err`
function source.read(path, opts)
  assert(type(path) == "string", "source.read: path expected")
  opts = opts or {}
  local text, err = read_text(path)
  if not text then return nil, err end
  local name = opts.name or (path == source.STDIN and "(stdin)" or path)
  local format = opts.format or source.format(path, text)
  if format == "json" then
    local snap, derr = source.decode_json(text, name)
    if not snap then return nil, derr end
    return snap, "json"
  end
  local t
  t, err = sandbox.run(text, name, opts)
  if err then return nil, err end
  if type(t) ~= "table" then
    return fail("LoadError", name, "must return a table, got " .. type(t))
  end
  return t, "lua"
end

--- Reads a source and makes the snapshot it describes.
-- A JSON source is the decoded snapshot itself (every value exact); a Lua source goes
-- through `snapshot.build`. The result is validated (snapshot-format.md §6) unless
-- `opts.validate == false`.
-- @tparam string path a file name, or "-" for standard input
-- @tparam[opt] table opts as for `source.read`, plus `validate`
-- @return the snapshot, or `nil, err`: `err.kind` is `IoError`, `DecodeError`,
--   `LoadError`, `RuntimeError`, `BudgetExceeded` or `BuildError` (with `path`, the
--   document path, `problem`, the text after it, and `rule` for a validation rule)
function source.snapshot(path, opts)
  opts = opts or {}
  local t, format = source.read(path, opts)
  if not t then return nil, format end
  local name = opts.name or (path == source.STDIN and "(stdin)" or path)
  local build = require "actionqueue.storage.snapshot.build"
  if format == "lua" then
    local snap, berr = build.build(t, { validate = opts.validate })
    if not snap then
      return fail("BuildError", name, berr.message,
        { path = berr.path, problem = berr.problem, rule = berr.rule })
    end
    return snap
  end
  if opts.validate ~= false then
    local valid, v = require("actionqueue.storage.snapshot.validate").validate(t)
    if not valid then
      return fail("BuildError", name, v.path .. ": " .. v.message,
        { path = v.path, problem = v.message, rule = v.kind })
    end
  end
  return t
end

return source
