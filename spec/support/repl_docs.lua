-- docs/repl.md is made of real runs: every block in it that starts with `$ aqstore ...`
-- (or another shell command) is run in a scratch directory holding the example files, and
-- its text must be exactly what the command prints (stdout and stderr merged, then
-- `[exit N]` when N is not 0). In an `aqstore repl` block the lines starting with `> ` or
-- `>> ` are the input: the piped REPL echoes them, so the transcript is its output.
--
--   lua5.4 spec/support/repl_docs.lua --write    regenerates docs/repl.md in place
--   spec/repl_docs_spec.lua                      checks it
local fixtures = require "support.fixtures"
local files = require "support.files"
local run = require "support.aqstore_run"

local M = {}

M.DOC = fixtures.repo .. "/docs/repl.md"

--- A scratch directory with the files the document uses: queue.snap (built from
-- examples/queue.lua), runs.snap and strings.snap (golden snapshots), data/ (a golden
-- data dir: snapshot at sequence 26 + WAL up to 37) and torn/ (a WAL with a torn tail).
function M.workdir()
  local dir = files.tmpdir()
  assert(run.cli({ "build", fixtures.repo .. "/examples/queue.lua", dir .. "/queue.snap" }).code == 0)
  files.copy(fixtures.path("snapshot", "valid_02_runs_all_states.snap"), dir .. "/runs.snap")
  files.copy(fixtures.path("snapshot", "valid_08_strings.snap"), dir .. "/strings.snap")
  assert(os.execute("cp -r " .. files.q(fixtures.path("wal", "recovery", "attempt_in_flight_snapshot_plus_tail"))
    .. " " .. files.q(dir .. "/data")))
  assert(os.execute("cp -r " .. files.q(fixtures.path("wal", "recovery", "wal_torn_tail")) .. " "
    .. files.q(dir .. "/torn")))
  return dir
end

--- Runs one documented command line in `dir` and returns its transcript.
function M.run(dir, line, inputs)
  local cmd = line:gsub("^aqstore", "lua5.4 " .. files.q(run.aqstore)):gsub("| *aqstore",
    "| lua5.4 " .. files.q(run.aqstore))
  local inp, out = os.tmpname(), os.tmpname()
  files.write(inp, inputs and (table.concat(inputs, "\n") .. "\n") or "")
  -- scripts find the package as an installed one would be found
  local repo = files.abs(fixtures.repo)
  local env = string.format("LUA_PATH=%s LUA_CPATH=%s", files.q(repo .. "/lua/?.lua;" .. repo .. "/lua/?/init.lua;;"),
    files.q(repo .. "/build/?.so;;"))
  local _, _, code = os.execute(string.format("cd %s && NO_COLOR=1 LUA_INIT= %s sh -c %s <%s >%s 2>&1",
    files.q(dir), env, files.q(cmd), files.q(inp), files.q(out)))
  local text = files.read(out) or ""
  os.remove(inp); os.remove(out)
  if code ~= 0 then text = text .. "[exit " .. code .. "]\n" end
  return text
end

--- The runnable blocks of the document: `{first, last, line, inputs, text}` (line numbers
-- of the block body, the `$` command, REPL input lines, the expected transcript).
function M.blocks(doc)
  local lines = {}
  for l in (doc .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  local out, i = {}, 1
  while i <= #lines do
    if lines[i]:match("^```") and lines[i + 1] and lines[i + 1]:match("^%$ ") then
      local b = { first = i + 1, line = lines[i + 1]:sub(3), inputs = {} }
      local j = i + 2
      local body = {}
      while lines[j] and not lines[j]:match("^```") do
        body[#body + 1] = lines[j]
        if b.line:match("^aqstore repl") then
          local input = lines[j]:match("^>>? (.*)$") or (lines[j] == ">" and "")
          if input then b.inputs[#b.inputs + 1] = input end
        end
        j = j + 1
      end
      b.last = j - 1
      b.text = #body > 0 and (table.concat(body, "\n") .. "\n") or ""
      if #b.inputs == 0 then b.inputs = nil end
      out[#out + 1] = b
      i = j + 1
    else
      i = i + 1
    end
  end
  return out, lines
end

--- The document with every block's body replaced by a fresh run.
function M.regenerate(doc, dir)
  local blocks, lines = M.blocks(doc)
  for k = #blocks, 1, -1 do
    local b = blocks[k]
    local text = M.run(dir, b.line, b.inputs):gsub("\n$", "")
    local new = {}
    for l in (text .. "\n"):gmatch("(.-)\n") do new[#new + 1] = l end
    for _ = b.first + 1, b.last do table.remove(lines, b.first + 1) end
    for n = #new, 1, -1 do table.insert(lines, b.first + 1, new[n]) end
  end
  return table.concat(lines, "\n")
end

if arg and arg[0] and arg[0]:match("repl_docs%.lua$") and arg[1] == "--write" then
  local dir = M.workdir()
  local doc = assert(files.read(M.DOC))
  local new = M.regenerate(doc, dir)
  files.write(M.DOC, new)
  files.rmtree(dir)
  print("regenerated " .. M.DOC)
end

return M
