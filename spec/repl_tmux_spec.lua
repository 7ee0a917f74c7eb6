-- Issue 16: the line editor in a real terminal (tmux): tab completion from the schema and a
-- history that survives a restart. tmux is in the Makefile's DEB_PKGS; without it (or
-- without lua-readline, also in DEB_PKGS) the spec is pending with the reason.
local fixtures = require "support.fixtures"
local files = require "support.files"
local run = require "support.aqstore_run"
local tmux = require "support.tmux"

local q = files.q
local describe_tty = tmux.missing and function(name) pending(name .. ": " .. tmux.missing) end or describe

describe_tty("aqstore repl in a terminal (tmux)", function()
  local dir, snap, t
  local function start()
    t:start(160, 40, string.format("env HOME=%s XDG_STATE_HOME=%s TERM=xterm lua5.4 %s repl -q %s",
      q(dir), q(dir .. "/state"), q(run.aqstore), q(snap)))
    t:wait_for("^>")
  end

  setup(function()
    dir = files.tmpdir()
    snap = dir .. "/queue.snap"
    assert.equal(0, run.cli({ "build", fixtures.repo .. "/examples/queue.lua", snap }).code)
    t = tmux.session(dir)
  end)
  teardown(function()
    t:kill()
    files.rmtree(dir)
  end)

  it("completes methods, fields and state names, and keeps the history across a restart", function()
    start()
    -- s:ru completes to the common prefix s:run (readline); Tab Tab lists s:run and s:runs;
    -- "s" and Tab finish s:runs
    t:cmd("send-keys -t t 's:ru' Tab")
    t:wait_for("> s:run\n")
    t:cmd("send-keys -t t Tab")
    os.execute("sleep 0.2")
    t:cmd("send-keys -t t Tab")
    t:wait_for("s:run%s+s:runs\n")
    t:cmd("send-keys -t t 's' Tab")
    t:wait_for("> s:runs\n")
    t:cmd("send-keys -t t C-u 's.runs[1].st' Tab")
    t:wait_for("> s%.runs%[1%]%.state_history")
    t:cmd("send-keys -t t C-u 's:runs{state = \"Run' Tab")
    t:wait_for("> s:runs{state = \"Running\"\n")
    t:cmd("send-keys -t t '}' Enter")  -- readline closed the quote
    t:wait_for("1 run\n")
    t:cmd("send-keys -t t 'print(\"hist-\" .. 40 + 2)' Enter")
    t:wait_for("\nhist%-42")
    t:cmd("send-keys -t t C-d")
    assert.is_true(t:gone(), "the REPL did not exit on Ctrl-D")
    local hist = files.read(dir .. "/state/actionqueue-storage/history")
    assert.truthy(hist and hist:find('print("hist-" .. 40 + 2)', 1, true), "history file: " .. tostring(hist))
    start()
    t:cmd("send-keys -t t Up")
    t:wait_for('> print%("hist%-" %.%. 40 %+ 2%)')
    t:cmd("send-keys -t t C-u C-d")
    assert.is_true(t:gone())
  end)
end)
