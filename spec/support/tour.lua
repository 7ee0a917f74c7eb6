--- Replays docs/tour.md: every `$ aqstore ...` line of its fenced blocks runs in one
-- temporary directory (copies of examples/queue.lua, examples/broken.lua and the shared
-- fixtures the tour names), in order; its output (stdout and stderr, then `[exit N]` when
-- not 0) must be the text that follows it in the block. A `$ aqstore repl FILE` session
-- gets its `> ` lines as standard input (the REPL echoes them when piped).
-- Regenerate the transcripts after an intended output change:
--   lua5.4 spec/support/tour.lua --update
local tour = {}

local FIXTURES = { "valid_02_runs_all_states", "valid_04_engine_resumed", "valid_05_engine_repaused",
  "frame_03_bitflip_crc" }

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- The commands of a tour text: list of {cmd, want, input, first, last} (line numbers of
-- the output lines `first..last`, so that `update` can replace them).
function tour.parse(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  if lines[#lines] == "" then lines[#lines] = nil end
  local cmds, inblock, cur = {}, false, nil
  local function close(last)
    if cur then
      cur.last = last
      cur.want = table.concat(lines, "\n", cur.first, cur.last)
      cmds[#cmds + 1] = cur
      cur = nil
    end
  end
  for i, line in ipairs(lines) do
    if line:match("^```") then
      if inblock then close(i - 1) end
      inblock = not inblock
    elseif inblock then
      local c = line:match("^%$ (aqstore .*)$")
      if c then
        close(i - 1)
        cur = { cmd = c, first = i + 1, input = {} }
      elseif cur and cur.cmd:match("^aqstore repl ") then
        local inp = line:match("^> (.+)$")
        if inp then cur.input[#cur.input + 1] = inp end
      end
    end
  end
  return cmds, lines
end

--- Prepares the working directory: the tour's input files and `bin/aqstore`.
function tour.setup(dir, repo, fixtures_root)
  assert(os.execute("mkdir -p " .. q(dir .. "/bin")))
  local f = assert(io.open(dir .. "/bin/aqstore", "w"))
  f:write("#!/bin/sh\nexec lua5.4 ", q(repo .. "/scripts/aqstore"), ' "$@"\n')
  f:close()
  assert(os.execute("chmod +x " .. q(dir .. "/bin/aqstore")))
  for _, name in ipairs { "queue.lua", "broken.lua" } do
    assert(os.execute("cp " .. q(repo .. "/examples/" .. name) .. " " .. q(dir)))
  end
  for _, name in ipairs(FIXTURES) do
    assert(os.execute("cp " .. q(fixtures_root .. "/snapshot/" .. name .. ".snap") .. " " .. q(dir)))
  end
end

--- Runs one command in `dir`; returns the transcript text that should follow it.
function tour.run(dir, c)
  local input = "/dev/null"
  if #c.input > 0 then
    input = dir .. "/.input"
    local f = assert(io.open(input, "w"))
    f:write(table.concat(c.input, "\n"), "\n")
    f:close()
  end
  -- a newline ends a trailing `# comment` before the subshell's parenthesis
  local p = assert(io.popen(string.format("cd %s && unset LUA_PATH LUA_CPATH NO_COLOR; PATH=%s:\"$PATH\" "
    .. "sh -c %s <%s 2>&1; echo \"[exit $?]\"", q(dir), q(dir .. "/bin"), q("(" .. c.cmd .. "\n) 2>&1"), q(input))))
  local out = p:read("a")
  p:close()
  out = out:gsub("%[exit 0%]\n$", ""):gsub("\n$", "")
  return out
end

--- Replays `text`; returns the list of {cmd, want, got} and the text with every
-- transcript replaced by what the commands print now.
function tour.replay(text, dir, repo, fixtures_root)
  local cmds, lines = tour.parse(text)
  tour.setup(dir, repo, fixtures_root)
  local results = {}
  for _, c in ipairs(cmds) do
    results[#results + 1] = { cmd = c.cmd, want = c.want, got = tour.run(dir, c), first = c.first, last = c.last }
  end
  local out, i = {}, 1
  for _, r in ipairs(results) do
    for k = i, r.first - 1 do out[#out + 1] = lines[k] end
    out[#out + 1] = r.got
    i = r.last + 1
  end
  for k = i, #lines do out[#out + 1] = lines[k] end
  return results, table.concat(out, "\n") .. "\n"
end

if arg and arg[0] and arg[0]:match("tour%.lua$") and arg[1] == "--update" then
  local repo = arg[0]:match("^(.*)/spec/support/tour%.lua$") or "."
  package.path = repo .. "/spec/?.lua;" .. package.path
  local fixtures = require "support.fixtures"
  local path = repo .. "/docs/tour.md"
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local dir = os.tmpname()
  os.remove(dir)
  local root = fixtures.root:sub(1, 1) == "/" and fixtures.root or (os.getenv("PWD") .. "/" .. fixtures.root)
  local abs_repo = repo:sub(1, 1) == "/" and repo or (os.getenv("PWD") .. "/" .. repo)
  local _, new = tour.replay(text, dir, abs_repo, root)
  os.execute("rm -rf " .. q(dir))
  f = assert(io.open(path, "wb"))
  f:write(new)
  f:close()
  print("updated " .. path)
end

return tour
