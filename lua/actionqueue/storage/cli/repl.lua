--- `aqstore repl [FILE]`: an interactive Lua 5.4 session (`lua5.4 -i`) with the package
-- paths set, `aq = require "actionqueue.storage"` and, given FILE, `s = aq.load(FILE)`.
-- Read-only: nothing in the session writes files unless you call a writer yourself.
-- Also works with commands piped on standard input.
-- @module actionqueue.storage.cli.repl
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "repl", "Interactive Lua session with aq loaded (and s = the snapshot FILE).",
    { "aqstore repl data/snapshots/snapshot.bin",
      "echo 'print(#s:runs{state = \"Running\"})' | aqstore repl snap.bin" })
  cmd:argument("file", "Snapshot file, or data dir (its recovered state, read-only), to load as s."):args("?")
  cmd:flag("-q --quiet", "No banner.")
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- The Lua chunk run before the prompt.
function M.prelude(file, quiet)
  local lines = { 'aq = require "actionqueue.storage"' }
  if file then
    lines[#lines + 1] = string.format([[
do
  local ok, v = pcall(aq.load, %q)
  if ok then
    s = v
    %s
  else
    io.stderr:write(tostring(v), "\n")
  end
end]], file, quiet and "" or 'io.stderr:write("s = aq.load(" .. string.format("%q", ' .. string.format("%q", file)
      .. ') .. "): " .. #s.tasks .. " tasks, " .. #s.runs .. " runs; type s for the summary\\n")')
  end
  if not quiet then
    lines[#lines + 1] = 'io.stderr:write("aq: load show open wrap  |  s:runs{state=...}  s:task(prefix)  '
      .. 's:run(prefix):history()  s:show(path)  s:stats()\\n")'
  end
  return table.concat(lines, "\n")
end

function M.run(args)
  local env = string.format("LUA_PATH=%s LUA_CPATH=%s LUA_INIT= ", shell_quote(package.path),
    shell_quote(package.cpath))
  local cmd = env .. shell_quote(cli.interpreter) .. " -i -e " .. shell_quote(M.prelude(args.file, args.quiet))
  io.stdout:flush()
  local ok, how, code = os.execute(cmd)
  if ok then return cli.OK end
  if how == "exit" then return code end
  return cli.BAD
end

return M
