--- `aqstore repl [FILE|DIR]`: an interactive Lua 5.4 session with `aq` loaded and, given a
-- snapshot file or a data dir, `s = aq.load(FILE|DIR)` (a data dir's recovered state, with
-- its WAL events). The loop is `inspect.repl`: schema-aware printing and tab completion,
-- one-line errors, history in the XDG state dir. Read-only: nothing in the session writes
-- files unless you call a writer yourself. Commands piped on standard input run as a
-- script: the exit status is 1 when a line raised an error.
-- @module actionqueue.storage.cli.repl
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "repl",
    "Interactive Lua session with aq loaded (and s = the snapshot FILE or data dir DIR).",
    { "aqstore repl data/snapshots/snapshot.bin", "aqstore repl data/   # recovered state + WAL events",
      "echo 'print(#s:runs{state = \"Running\"})' | aqstore repl snap.bin" })
  cmd:argument("file", "Snapshot file, or data dir (its recovered state, read-only), to load as s."):args("?")
  cmd:flag("-q --quiet", "No banner.")
end

--- The banner lines (stderr) for a session with `s` loaded from `file` (or none).
function M.banner(file, s)
  local lines = {}
  if file and s then
    lines[#lines + 1] = string.format("s = aq.load(%q): %d tasks, %d runs; type s for the summary", file,
      #s.tasks, #s.runs)
  end
  lines[#lines + 1] = "aq: load show print help  |  s:runs{state=...}  s:task(prefix)  "
    .. "s:run(prefix):history()  s:show(path)  s:stats()  s:events{...}  |  help(x), Tab completes"
  return table.concat(lines, "\n")
end

function M.run(args)
  local aq = require "actionqueue.storage"
  local repl = require "actionqueue.storage.inspect.repl"
  local env = setmetatable({ aq = aq }, { __index = _G })
  local s
  if args.file then
    local ok, v = pcall(aq.load, args.file)
    if ok then
      s = v
      env.s = s
    else
      io.stderr:write(repl.error_text(v), "\n")
    end
  end
  return repl.run { env = env, banner = not args.quiet and M.banner(args.file, s) or nil }
end

return M
