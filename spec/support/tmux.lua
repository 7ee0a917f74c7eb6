--- A private tmux server for the specs that drive `aqstore repl` in a real terminal.
-- tmux and lua-readline are in the Makefile's DEB_PKGS; where either is missing the specs
-- are pending with `tmux.missing` as the reason (busted's `describe` and `pending` exist
-- only inside spec files, so each spec makes that choice itself).
local files = require "support.files"
local run = require "support.aqstore_run"

local q = files.q

local tmux = {}

local function have(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

local reason
if not have("tmux -V") then
  reason = "tmux is not installed (make deps installs it)"
elseif not have("lua5.4 -e 'require \"readline\"'") then
  reason = "lua-readline is not installed (make deps installs it)"
elseif not run.snapshot_ready() then
  reason = "snapshot codec unavailable"
end

--- Why the terminal specs cannot run here, or nil when they can.
tmux.missing = reason

-- Long enough for a loaded 2-core CI machine running the suite under ASan.
local WAIT_SECONDS = 30

local Session = {}
Session.__index = Session

--- Runs `tmux ARGS` against this session's private server; returns its output.
function Session:cmd(args)
  local p = io.popen("tmux -S " .. q(self.sock) .. " -f /dev/null " .. args .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

--- The visible screen of window `t`.
function Session:screen() return self:cmd("capture-pane -p -t t") end

--- Waits until the screen matches Lua pattern `pattern`; returns the screen, or raises
-- with the screen when it never does.
function Session:wait_for(pattern)
  local text
  for _ = 1, WAIT_SECONDS * 10 do
    text = self:screen()
    if text:find(pattern) then return text end
    os.execute("sleep 0.1")
  end
  error("timed out waiting for " .. pattern .. "; screen:\n" .. tostring(text))
end

--- True while the session exists.
function Session:alive() return have("tmux -S " .. q(self.sock) .. " -f /dev/null has-session -t t") end

--- Waits for the session to end; true when it did.
function Session:gone()
  for _ = 1, WAIT_SECONDS * 10 do
    if not self:alive() then return true end
    os.execute("sleep 0.1")
  end
  return false
end

--- Starts window `t` (cols x rows) running shell command `command`.
function Session:start(cols, rows, command)
  self:cmd(string.format("new-session -d -s t -x %d -y %d %s", cols, rows, q(command)))
end

--- Stops the server.
function Session:kill() self:cmd("kill-server") end

--- A session whose server socket lives in `dir`, so it goes away with the temp dir.
function tmux.session(dir)
  return setmetatable({ sock = dir .. "/tmux.sock" }, Session)
end

return tmux
