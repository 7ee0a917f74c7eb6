--- `aqstore validate [--all] FILE`: decode a snapshot and run the semantic validation
-- (snapshot-format.md §6); with `--all` every violation is listed with its document path.
-- FILE may also be a Lua or JSON source, or `-` (standard input), as for `build`, to check it
-- before building.
-- @module actionqueue.storage.cli.validate
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "validate",
    "Validate a snapshot (or a .lua/.json source); --all lists every violation with its path.",
    { "aqstore validate --all snapshot.bin", "aqstore validate --all --json examples/broken.lua" })
  cmd:argument("file", "Snapshot file, a .lua/.json source file, or - (a source on standard input).")
  cmd:flag("--all", "Report every violation (default: the first, as the engine does).")
  cli.json_flag(cmd)
end

local function is_source(file)
  return file == "-" or file:match("%.lua$") or file:match("%.json$")
end

--- Reads FILE into a snapshot table without validating it.
-- A source (`.lua`, `.json`, `-` for standard input) goes through the one source reader
-- (`actionqueue.storage.source`); anything else is read as a snapshot file.
-- @return snap, or nil and an error value `{kind, message, path?}`
function M.read(file)
  local snapshot = require "actionqueue.storage.snapshot"
  if is_source(file) then
    local snap, err = require("actionqueue.storage.source").snapshot(file, { validate = false })
    if not snap then
      -- one path: the document path goes in `path`, the message is the problem alone
      return nil, { kind = err.kind, path = err.path, message = err.problem or err.detail }
    end
    return snap
  end
  local r = snapshot.verify(file)
  if r.status ~= "ok" then
    -- The loader gives the reference's display text for frame problems.
    local snap, err = snapshot.load(file)
    if snap == false then return nil, { kind = "NoSnapshot", message = "no snapshot at " .. file } end
    if not snap then return nil, err end
    return nil, { kind = r.status, message = r.status }
  end
  local snap, err = snapshot.decode(r.payload)
  if not snap then return nil, err end
  return snap
end

function M.run(args)
  local snapshot = require "actionqueue.storage.snapshot"
  local json = require "actionqueue.storage.inspect.json"
  local snap, err = M.read(args.file)
  local violations
  if not snap then
    local e = cli.error_doc(err)
    violations = { { kind = e.kind, path = type(err) == "table" and err.path or "", message = e.message } }
  elseif args.all then
    violations = snapshot.validate(snap, { all = true })
  else
    local ok, v = snapshot.validate(snap)
    violations = ok and {} or { v }
  end
  local valid = #violations == 0
  if args.json then
    local list = json.array()
    for i, v in ipairs(violations) do list[i] = { kind = v.kind, path = v.path or "", message = v.message } end
    cli.json({ file = args.file, valid = valid, readable = snap ~= nil, count = #violations, violations = list,
               tasks = snap and #snap.tasks or json.null, runs = snap and #snap.runs or json.null })
  elseif valid then
    cli.out(cli.color("ok", "VALID"), " ", args.file, string.format(" (%d tasks, %d runs)", #snap.tasks, #snap.runs))
  else
    local what = snap and (#violations .. " violation" .. (#violations == 1 and "" or "s")) or "unreadable"
    cli.out(cli.color("bad", "INVALID"), " ", args.file, ": ", what)
    for _, v in ipairs(violations) do
      local p = (v.path and v.path ~= "") and v.path or "(file)"
      cli.out("  ", cli.color("head", p), ": ", v.message, cli.color("dim", " [" .. tostring(v.kind) .. "]"))
    end
  end
  return valid and cli.OK or cli.BAD
end

return M
