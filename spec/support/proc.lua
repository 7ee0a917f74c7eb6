--- Background processes for the specs that race or kill them: short sleeps, waiting for
-- a file, and waiting for a pid (zombie-aware).
local lfs = require "lfs"

local proc = {}

--- Sleeps `s` seconds (fractions allowed).
function proc.sleep(s) os.execute(string.format("sleep %.3f", s)) end

--- True when strace can trace here (ptrace allowed; never under the sanitizer preloads,
-- which strace cannot run with).
function proc.have_strace()
  return os.getenv("LD_PRELOAD") == nil
    and os.execute("strace -qq -o /dev/null -e trace=none true >/dev/null 2>&1") == true
end

--- Names in `dir` that look like a writer's temp file of ours (`TARGET.tmp.<pid>.<hex>`).
function proc.writer_temps(dir)
  local found = {}
  for name in lfs.dir(dir) do
    if name:match("%.tmp%.%d+%.%x+$") then found[#found + 1] = name end
  end
  return found
end

--- Waits (bounded) until `path` exists; true when it does.
function proc.wait_for_file(path, seconds)
  for _ = 1, seconds * 50 do
    if lfs.attributes(path) then return true end
    proc.sleep(0.02)
  end
  return false
end

--- True while `pid` runs. A process that exited but is not reaped yet (our children are
-- reparented to pid 1, which may reap late) is a zombie: dead for us, although
-- `kill -0` still succeeds.
function proc.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end
  local stat = f:read("a") or ""
  f:close()
  local state = stat:match("%) (%a)")
  return state ~= nil and state ~= "Z"
end

--- Waits (bounded) for `pid` to end; true when it did. On time-out it kills `pid` and
-- its process group (when it leads one) with SIGKILL and returns false.
function proc.wait_pid(pid, seconds)
  for _ = 1, seconds * 50 do
    if not proc.alive(pid) then return true end
    proc.sleep(0.02)
  end
  os.execute("kill -9 -- -" .. pid .. " 2>/dev/null; kill -9 " .. pid .. " 2>/dev/null")
  return false
end

return proc
