-- Issue 16: the line editor in a real terminal (tmux): tab completion from the schema and a
-- history that survives a restart. tmux is in the Makefile's DEB_PKGS; without it (or
-- without lua-readline, also in DEB_PKGS) the spec is pending with the reason.
local fixtures = require "support.fixtures"
local files = require "support.files"
local run = require "support.aqstore_run"

local q = files.q

local function have(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

local reason
if not have("tmux -V") then
  reason = "tmux is not installed (make deps installs it)"
elseif not have("lua5.4 -e 'require \"readline\"'") then
  reason = "lua-readline is not installed (make deps installs it)"
elseif not run.snapshot_ready() then
  reason = "snapshot codec unavailable"
end

local describe_tty = reason and function(name) pending(name .. ": " .. reason) end or describe

describe_tty("aqstore repl in a terminal (tmux)", function()
  local dir, snap, sock
  local function tmux(args)
    local p = io.popen("tmux -S " .. q(sock) .. " -f /dev/null " .. args .. " 2>&1")
    local out = p:read("a")
    p:close()
    return out
  end
  local function screen() return tmux("capture-pane -p -t t") end
  local function wait_for(pattern)
    local text
    for _ = 1, 100 do
      text = screen()
      if text:find(pattern) then return text end
      os.execute("sleep 0.1")
    end
    error("timed out waiting for " .. pattern .. "; screen:\n" .. tostring(text))
  end
  local function start()
    tmux(string.format("new-session -d -s t -x 160 -y 40 %s", q(string.format(
      "env HOME=%s XDG_STATE_HOME=%s TERM=xterm lua5.4 %s repl -q %s",
      q(dir), q(dir .. "/state"), q(run.aqstore), q(snap)))))
    wait_for("^>")
  end
  local function session_gone()
    for _ = 1, 100 do
      if not have("tmux -S " .. q(sock) .. " -f /dev/null has-session -t t") then return true end
      os.execute("sleep 0.1")
    end
    return false
  end

  setup(function()
    dir = files.tmpdir()
    snap = dir .. "/queue.snap"
    assert.equal(0, run.cli({ "build", fixtures.repo .. "/examples/queue.lua", snap }).code)
    sock = dir .. "/tmux.sock"   -- a private server whose socket goes away with the temp dir
  end)
  teardown(function()
    tmux("kill-server")
    files.rmtree(dir)
  end)

  it("completes methods, fields and state names, and keeps the history across a restart", function()
    start()
    -- s:ru completes to the common prefix s:run (readline); Tab Tab lists s:run and s:runs;
    -- "s" and Tab finish s:runs
    tmux("send-keys -t t 's:ru' Tab")
    wait_for("> s:run\n")
    tmux("send-keys -t t Tab")
    os.execute("sleep 0.2")
    tmux("send-keys -t t Tab")
    wait_for("s:run%s+s:runs\n")
    tmux("send-keys -t t 's' Tab")
    wait_for("> s:runs\n")
    tmux("send-keys -t t C-u 's.runs[1].st' Tab")
    wait_for("> s%.runs%[1%]%.state_history")
    tmux("send-keys -t t C-u 's:runs{state = \"Run' Tab")
    wait_for("> s:runs{state = \"Running\"\n")
    tmux("send-keys -t t '}' Enter")  -- readline closed the quote
    wait_for("1 run\n")
    tmux("send-keys -t t 'print(\"hist-\" .. 40 + 2)' Enter")
    wait_for("\nhist%-42")
    tmux("send-keys -t t C-d")
    assert.is_true(session_gone(), "the REPL did not exit on Ctrl-D")
    local hist = files.read(dir .. "/state/actionqueue-storage/history")
    assert.truthy(hist and hist:find('print("hist-" .. 40 + 2)', 1, true), "history file: " .. tostring(hist))
    start()
    tmux("send-keys -t t Up")
    wait_for('> print%("hist%-" %.%. 40 %+ 2%)')
    tmux("send-keys -t t C-u C-d")
    assert.is_true(session_gone())
  end)
end)
