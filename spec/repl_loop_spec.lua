-- Issue 16: the REPL loop of `aqstore repl`: one-line errors, exit status of a piped
-- session, failed lookups that explain themselves, schema-aware printing of scalars, and
-- the completion function the line editor calls.
local fixtures = require "support.fixtures"
local run = require "support.aqstore_run"

local EX = fixtures.repo .. "/examples/"
local LOAD = 's = aq.wrap(dofile(' .. string.format("%q", EX .. "queue.lua") .. '))'

local function session(lines)
  return run.cli({ "repl", "-q" }, { stdin = table.concat(lines, "\n") .. "\n" })
end

describe("aqstore repl loop", function()
  it("prints a typo as one line naming the valid values, with no traceback", function()
    local r = session { LOAD, 's:runs{state = "runing"}' }
    assert.matches('^error: unknown run state "runing" %(did you mean "Running"%?%); valid: Scheduled, Ready, '
      .. "Leased, Running, RetryWait, Suspended, Completed, Failed, Canceled\n$", r.err)
    assert.not_matches("traceback", r.err)
  end)

  it("never shows a traceback or a position inside the package", function()
    local r = session { LOAD, 's:show(42)', 'aq.load({})', 'nil + 1' }
    for line in r.err:gmatch("[^\n]+") do
      assert.matches("^error: ", line)
      assert.not_matches("actionqueue/storage/", line)
    end
    assert.not_matches("traceback", r.err)
  end)

  it("explains a failed lookup when chained", function()
    local r = session { LOAD, 's:run("zzz"):history()' }
    assert.equal('error: no run with id prefix "zzz"\n', r.err)
  end)

  it("exits non-zero when a piped line raised an error, zero otherwise", function()
    assert.equal(1, session { 'error("boom")', 'print(1)' }.code)
    assert.equal(1, session { "x = = 1" }.code)
    local ok = session { LOAD, "print(#s.runs)" }
    assert.equal(0, ok.code)
    assert.truthy(ok.out:find("> print(#s.runs)\n5\n", 1, true))
  end)

  it("reads multi-line chunks", function()
    local r = session { LOAD, "for r in s:runs{terminal = false} do", "  print(r.run_instance.state)", "end" }
    assert.equal(0, r.code, r.err)
    assert.matches("Running\nScheduled\nReady\n", (r.out:gsub(">>? [^\n]*\n", "")))
  end)

  it("prints scalars reached through the schema with their meaning", function()
    local r = session { LOAD, "s.timestamp", "s.runs[2].lease.expiry", "s.tasks[1].task_spec.payload.bytes" }
    assert.matches("> s.timestamp\n1767232800 %(2026%-01%-01T02:00:00Z%)\n", r.out)
    assert.matches("> s.runs%[2%].lease.expiry\n1767233100 %(2026%-01%-01T02:05:00Z%)\n", r.out)
    assert.matches("bytes%) hex ", r.out)
    local big = run.cli({ "repl", "-q", fixtures.path("snapshot", "valid_09_big_numbers.snap") },
      { stdin = "s.timestamp\ns.budgets[1].consumed\ns.metadata\n" })
    assert.matches("> s.timestamp\n18446744073709551615\n", big.out)
    assert.matches("> s.budgets%[1%].consumed\n18446744073709551614\n", big.out)
    assert.matches("wal_sequence: 18446744073709551615\n", big.out)
  end)
end)

describe("plain lua5.4 -i", function()
  it("keeps working with require \"actionqueue.storage\": views print, typos are one line", function()
    local files = require "support.files"
    local inp, out = os.tmpname(), os.tmpname()
    files.write(inp, LOAD .. "\ns:runs{state = 'Running'}\ns.engine\ns:runs{state = 'Runing'}\n")
    os.execute(string.format("cd %s && lua5.4 -i -e 'aq = require \"actionqueue.storage\"' <%s >%s 2>&1",
      files.q(fixtures.repo), files.q(inp), files.q(out)))
    local text = files.read(out)
    os.remove(inp); os.remove(out)
    assert.matches("1 run\nrun%s+task%s+state", text)
    assert.matches("SnapshotEngineControl\n  paused: false", text)
    assert.matches('unknown run state "Runing" %(did you mean "Running"%?%)[^\n]*\n', text)
    assert.not_matches("traceback", text)
  end)
end)

describe("repl.complete", function()
  local repl = require "actionqueue.storage.inspect.repl"
  local aq = require "actionqueue.storage"
  local env = setmetatable({ aq = aq, s = aq.wrap(dofile(EX .. "queue.lua")) }, { __index = _G })
  local function complete(line)
    -- readline's word: after the last break character (space, quote, brace, paren, =)
    local from = (line:match("^.*()[%s\"'{(=]") or 0) + 1
    return repl.complete(line, from, #line, env)
  end

  it("completes methods after s:", function()
    assert.same({ "s:run", "s:runs" }, complete("s:ru"))
    assert.same({ "s.runs[1]:history" }, complete("s.runs[1]:hi"))
  end)

  it("completes schema fields after a record", function()
    assert.same({ "s.runs[1].run_instance" }, complete("s.runs[1].ru"))
    assert.same({ "s.runs[1].state_history" }, complete("s.runs[1].st"))
    assert.same({ "s.engine.paused", "s.engine.paused_at" }, complete("s.engine.pa"))
  end)

  it("completes variant names inside a string where a state, policy or variant is expected", function()
    assert.same({ "Running" }, complete('s:runs{state = "Run'))
    assert.same({ "Ready", "RetryWait" }, complete('s:runs{state = "re'))
    assert.same({ "Repeat" }, complete('s:tasks{policy = "Rep'))
    assert.same({}, complete('print("Run'))
    assert.same({ "LeaseAcquired", "LeaseHeartbeat", "LeaseExpired", "LeaseReleased" },  -- schema order
      complete('s:events{variant = "Lease'))
  end)

  it("completes globals and collection names", function()
    assert.truthy(next(complete("pri")))
    assert.same({ "aq" }, complete("aq"))
    assert.same({ "aq.snapshot" }, complete("aq.snap"))   -- loaded lazily, completed all the same
    local names = complete("s:bu")
    assert.same({ "s:budgets" }, names)
  end)

  it("puts the history in the XDG state dir", function()
    local env_of = function(t) return function(k) return t[k] end end
    assert.equal("/x/state/actionqueue-storage/history", repl.history_path(env_of { XDG_STATE_HOME = "/x/state",
      HOME = "/home/u" }))
    assert.equal("/home/u/.local/state/actionqueue-storage/history", repl.history_path(env_of { HOME = "/home/u" }))
  end)
end)
