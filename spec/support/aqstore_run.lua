-- Runs scripts/aqstore (or any shell command) and captures stdout, stderr and the exit code.
-- Every spec that runs the CLI goes through `run.cli`.
local fixtures = require "support.fixtures"
local files = require "support.files"

local run = {}

--- Absolute path of the launcher (specs may run it from another directory).
run.aqstore = files.abs(fixtures.repo .. "/scripts/aqstore")

local shq = files.q
run.quote = shq

local function slurp(path) return files.read(path) or "" end

--- Runs `aqstore ARGS...` with NO_COLOR unset and stdout not a TTY.
-- opts: {stdin = text, env = "VAR=x ", merge = true (stderr goes to `out` too, in
-- order; `err` is then ""), cwd = directory to run in}
-- @treturn table {code = n, out = stdout, err = stderr}
function run.cli(args, opts)
  opts = opts or {}
  local parts = {}
  for i, a in ipairs(args) do parts[i] = shq(a) end
  local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
  files.write(inp, opts.stdin or "")
  local cmd = string.format("%s%s lua5.4 %s %s <%s >%s 2>%s",
    opts.cwd and ("cd " .. shq(opts.cwd) .. " && ") or "", opts.env or "", shq(run.aqstore),
    table.concat(parts, " "), shq(inp), shq(out), opts.merge and "&1" or shq(err))
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
