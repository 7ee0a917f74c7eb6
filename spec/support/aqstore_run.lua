-- Runs scripts/aqstore (or any shell command) and captures stdout, stderr and the exit code.
local fixtures = require "support.fixtures"

local run = {}

run.aqstore = fixtures.repo .. "/scripts/aqstore"

local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
run.quote = shq

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local d = f:read("a")
  f:close()
  return d
end

--- Runs `aqstore ARGS...` with NO_COLOR unset and stdout not a TTY.
-- opts: {stdin = text, env = "VAR=x "}
-- @treturn table {code = n, out = stdout, err = stderr}
function run.cli(args, opts)
  opts = opts or {}
  local parts = {}
  for i, a in ipairs(args) do parts[i] = shq(a) end
  local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(inp, "wb"))
  f:write(opts.stdin or "")
  f:close()
  local cmd = string.format("%s lua5.4 %s %s <%s >%s 2>%s", opts.env or "", shq(run.aqstore),
    table.concat(parts, " "), shq(inp), shq(out), shq(err))
  local _, _, code = os.execute(cmd)
  local r = { code = code, out = slurp(out), err = slurp(err) }
  os.remove(out); os.remove(err); os.remove(inp)
  return r
end

--- True when the snapshot facade (load/verify/decode/write) is available.
function run.snapshot_ready()
  local ok, snapshot = pcall(require, "actionqueue.storage.snapshot")
  return ok and type(snapshot) == "table" and snapshot.load ~= nil and snapshot.verify ~= nil
    and snapshot.decode ~= nil and snapshot.write ~= nil
end

return run
