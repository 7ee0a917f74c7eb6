-- The REPL session (`aqstore repl [FILE]`) driven through a pipe.
local fixtures = require "support.fixtures"
local run = require "support.aqstore_run"

local EX = fixtures.repo .. "/examples/"

describe("aqstore repl", function()
  it("starts lua5.4 -i with aq loaded, reading commands from stdin", function()
    local r = run.cli({ "repl" }, { stdin = table.concat({
      'x = aq.wrap(dofile(' .. string.format("%q", EX .. "queue.lua") .. '))',
      'print(#x:runs{state = "Running"})',
      'x',
      'x:run("1f2e"):history()',
      'x:task "7a5c"',
      'print(x:task "zz")',
    }, "\n") .. "\n" })
    assert.equal(0, r.code)
    assert.matches("aq: load show", r.err)
    assert.truthy(r.out:find("\"Running\"})\n1\n", 1, true))
    assert.matches("ActionQueue snapshot\n  versions", r.out)
    assert.matches("Leased %-> Running", r.out)
    assert.matches("SnapshotTask\n  task_spec: TaskSpecWire\n    id: 7a5c41d2", r.out)
    assert.matches('not found: no task with id prefix "zz"', r.out)
  end)

  local describe_file = run.snapshot_ready() and describe or pending
  describe_file("with a FILE", function()
    local base = os.tmpname()   -- creates the empty file `base`: removed in teardown too
    local snap = base .. ".snap"
    setup(function()
      assert.equal(0, run.cli({ "build", EX .. "queue.lua", snap }).code)
    end)
    teardown(function() os.remove(snap); os.remove(base) end)

    it("has s loaded: summary and queries work", function()
      local r = run.cli({ "repl", snap }, { stdin = table.concat({
        'print(#s:runs{state = "Running"})',
        's',
        's:runs{state = "Running"}',
        's:run("0e9d"):history()',
        'print(s:show "engine")',
      }, "\n") .. "\n" })
      assert.equal(0, r.code)
      assert.matches("s = aq.load%(.-%): 4 tasks, 5 runs", r.err)
      assert.truthy(r.out:find("\"Running\"})\n1\n", 1, true))
      assert.matches("ActionQueue snapshot  " .. snap:gsub("%p", "%%%0"), r.out)
      assert.matches("runs%s+5: Scheduled 1, Ready 1, Running 1, Completed 1, Canceled 1", r.out)
      assert.matches("1 run\nrun%s+task%s+state%s+attempts%s+lease owner%s+age%s+in state\n"
        .. "1f2e3d4c%s+3b9e7f10%s+Running", r.out)
      assert.matches("Running %-> Completed", r.out)
      assert.matches("engine: SnapshotEngineControl\n  paused: false", r.out)
    end)

    it("leaves the file untouched", function()
      local before = fixtures.read(snap)
      run.cli({ "repl", snap }, { stdin = 's.runs[1].run_instance.state = "Failed"\ns:stats()\n' })
      assert.equal(before, fixtures.read(snap))
    end)

    it("prints a load error as one line and keeps the session", function()
      local r = run.cli({ "repl", fixtures.path("snapshot", "frame_03_bitflip_crc.snap") },
        { stdin = "print(s == nil)\nprint(pcall(aq.load, 'nope.snap'))\n" })
      assert.equal(0, r.code)
      assert.matches("aq.load [^\n]*frame_03_bitflip_crc.snap: Snapshot CRC%-32 mismatch[^\n]*\n", r.err)
      assert.not_matches("traceback", r.err)
      assert.truthy(r.out:find("print(s == nil)\ntrue\n", 1, true))
      assert.matches("false\taq.load nope.snap: no snapshot at nope.snap", r.out)
    end)
  end)
end)
