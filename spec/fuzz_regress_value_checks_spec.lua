-- Found by the snapshot_rules fuzz target: a table whose values the loader refuses at
-- decode time (snapshot-format.md §3.6: max_attempts 0, timeout_secs 0, an empty
-- concurrency key or capability list, a Repeat count or interval of 0, a nil task spec
-- id), but which breaks no §6 rule, passed snapshot.validate, and snapshot.write replaced
-- a good snapshot with a file that no longer loads. The checks that no §6 rule repeats
-- now run in validate too; the run-level ones keep the §6 rules' texts.
local snapshot = require "actionqueue.storage.snapshot"
local validate = require "actionqueue.storage.snapshot.validate"
local fixtures = require "support.fixtures"
local files = require "support.files"

local test = fixtures.available() and it or pending
local GOOD = "valid_01_tasks.snap"

local function good()
  return assert(snapshot.load(fixtures.path("snapshot", GOOD)))
end

local CASES = {
  { "max_attempts 0", function(s) s.tasks[1].task_spec.constraints.max_attempts = 0 end,
    "invalid max_attempts value: 0 (must be >= 1)" },
  { "timeout_secs 0", function(s) s.tasks[1].task_spec.constraints.timeout_secs = 0 end,
    "timeout_secs must not be zero" },
  { "empty capability list", function(s) s.tasks[1].task_spec.constraints.required_capabilities = {} end,
    "required capabilities list must not be empty" },
  { "Repeat count 0", function(s) s.tasks[1].task_spec.run_policy = { Repeat = { count = 0, interval_secs = 5 } } end,
    "invalid repeat count: 0 (must be >= 1)" },
  { "nil task spec id", function(s)
      local nil_id = "00000000-0000-0000-0000-000000000000"
      s.tasks[1].task_spec.id = nil_id
      for _, r in ipairs(s.runs) do r.task_id = nil_id end
    end, "invalid task identifier for task admission: 00000000-0000-0000-0000-000000000000" },
}

describe("snapshot.validate and write on values the loader refuses at decode time", function()
  for _, c in ipairs(CASES) do
    test(c[1] .. ": validate refuses, write keeps the previous snapshot", function()
      local snap = good()
      c[2](snap)
      local ok, v = validate.validate(snap)
      assert.is_nil(ok)
      -- the loader's text for the encoding (with its position in it)
      assert.equal("DecodeError", v.kind)
      assert.equal(1, v.message:find(c[3] .. " at line 1 column ", 1, true))
      local all = validate.validate(snap, { all = true })
      assert.equal(1, #all)
      assert.equal(v.message, all[1].message)
      local dir = files.tmpdir()
      finally(function() files.rmtree(dir) end)
      local path = dir .. "/snapshot.bin"
      local before = assert(files.read(fixtures.path("snapshot", GOOD)))
      files.write(path, before)
      local wok, err = snapshot.write(path, snap)
      assert.is_nil(wok)
      assert.matches(c[3], err.message, 1, true)
      assert.is_true(files.read(path) == before, "the previous snapshot was replaced")
      assert(snapshot.load(path))
    end)
  end

  test("the run-level decode checks keep their section 6 rules' texts", function()
    local snap = assert(snapshot.load(fixtures.path("snapshot", "valid_02_runs_all_states.snap")))
    snap.runs[1].run_instance.id = "00000000-0000-0000-0000-000000000000"
    local ok, v = validate.validate(snap)
    assert.is_nil(ok)
    assert.matches("^snapshot run has invalid nil run id", v.message)
  end)
end)
