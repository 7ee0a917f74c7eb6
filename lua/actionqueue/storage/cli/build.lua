--- `aqstore build SRC OUT`: a validated snapshot from a Lua file returning a table, or a
-- JSON file (a snapshot payload, decoded exactly; or friendly JSON for `snapshot.build`).
-- @module actionqueue.storage.cli.build
local cli = require "actionqueue.storage.cli"
local fsutil = require "actionqueue.storage.fsutil"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "build", "Build a validated snapshot from a Lua table file or a JSON file.",
    { "aqstore build examples/queue.lua /tmp/queue.snap", "aqstore build examples/queue.json /tmp/queue.snap" })
  cmd:argument("src", "Source: a .lua file returning a table, or a .json file.")
  cmd:argument("out", "Snapshot file to write (atomically replaced).")
  cli.json_flag(cmd)
end

-- JSON numbers decoded by cjson are floats: integral ones become integers again;
-- JSON null (cjson.null) becomes nil (an absent optional).
local function integerize(v, null)
  if v == null then return nil end
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do v[k] = integerize(x, null) end
  return v
end

--- Reads a source file into a table (not yet built).
-- A `.lua` file runs in a small environment (string, math, table, os.time/os.date) and
-- must return a table. A `.json` file that is a complete snapshot payload is decoded by
-- the snapshot codec (exact u64); other JSON goes through cjson (integers up to 2^53).
-- @return table, or nil and `{kind, message}`
function M.read_source(path)
  if path:match("%.json$") then
    local text, ioerr = fsutil.read_file(path)
    if not text then return nil, { kind = "IoError", message = tostring(ioerr) } end
    local ok_snapshot, snapshot = pcall(require, "actionqueue.storage.snapshot")
    if ok_snapshot and snapshot.decode then
      local snap = snapshot.decode(text)
      if snap then return snap end
    end
    local cjson = require "cjson.safe"
    local t, jerr = cjson.decode(text)
    if type(t) ~= "table" then
      return nil, { kind = "DecodeError", message = path .. ": invalid JSON: " .. tostring(jerr) }
    end
    return integerize(t, cjson.null)
  end
  local env = { string = string, math = math, table = table, utf8 = utf8, tostring = tostring,
                tonumber = tonumber, ipairs = ipairs, pairs = pairs, type = type, select = select,
                os = { time = os.time, date = os.date }, print = print, error = error, assert = assert }
  local chunk, lerr = loadfile(path, "t", env)
  if not chunk then return nil, { kind = "LoadError", message = tostring(lerr) } end
  local ok, t = pcall(chunk)
  if not ok then return nil, { kind = "LoadError", message = path .. ": " .. tostring(t) } end
  if type(t) ~= "table" then
    return nil, { kind = "LoadError", message = path .. ": must return a table, got " .. type(t) }
  end
  return t
end

function M.run(args)
  local snapshot = require "actionqueue.storage.snapshot"
  local t, err = M.read_source(args.src)
  if not t then return cli.file_error(args.src, err, args.json) end
  local snap, berr = snapshot.build(t)
  if not snap then
    local msg = (berr.path and berr.path ~= "" and (berr.path .. ": ") or "") .. tostring(berr.message)
    return cli.file_error(args.src, { kind = berr.kind or "BuildError", message = msg }, args.json)
  end
  local ok, werr = snapshot.write(args.out, snap)
  if not ok then return cli.file_error(args.out, werr, args.json) end
  local size = fsutil.file_size(args.out)
  if args.json then
    cli.json({ ok = true, src = args.src, out = args.out, tasks = #snap.tasks, runs = #snap.runs, bytes = size })
  else
    cli.out(cli.color("ok", "wrote"), " ", args.out, string.format(" (%d tasks, %d runs, %d bytes)",
      #snap.tasks, #snap.runs, size or 0))
  end
  return cli.OK
end

return M
