-- Issue 16: the REPL's queries from the shell (aqstore query) and one path language for
-- show, dump --path / dump PATH, query and the REPL: [*], negative indexes, id prefixes.
local fixtures = require "support.fixtures"
local run = require "support.aqstore_run"
local cjson = require "cjson"

local RUNS = fixtures.path("snapshot", "valid_02_runs_all_states.snap")
local STRINGS = fixtures.path("snapshot", "valid_08_strings.snap")

-- The answers computed straight from the decoded document (not through the views).
local function expected_running_older(file, secs)
  local snapshot = require "actionqueue.storage.snapshot"
  local s = assert(snapshot.load(file))
  local ids = {}
  for _, r in ipairs(s.runs) do
    if r.run_instance.state == "Running" and s.timestamp - r.run_instance.created_at >= secs then
      ids[#ids + 1] = r.run_instance.id
    end
  end
  return ids
end

local function expected_exhausted(file)
  local snapshot = require "actionqueue.storage.snapshot"
  local s = assert(snapshot.load(file))
  local max, hit, ids = {}, {}, {}
  for _, t in ipairs(s.tasks) do max[t.task_spec.id] = t.task_spec.constraints.max_attempts end
  for _, r in ipairs(s.runs) do
    local ri = r.run_instance
    if ri.state ~= "Completed" and ri.attempt_count >= max[ri.task_id] then hit[ri.task_id] = true end
  end
  for _, t in ipairs(s.tasks) do if hit[t.task_spec.id] then ids[#ids + 1] = t.task_spec.id end end
  return ids
end

describe("aqstore query", function()
  it("answers 'Running runs older than 1 h' as a table and as --json", function()
    local want = expected_running_older(RUNS, 3600)
    assert.is_true(#want > 0)
    local expr = 'runs{state = "Running", older = "1h"}'
    local r = run.cli({ "query", RUNS, expr })
    assert.equal(0, r.code, r.err)
    assert.matches("^" .. #want .. " runs?\nrun%s+task%s+state%s+attempts%s+lease owner%s+age%s+in state\n", r.out)
    for _, id in ipairs(want) do assert.truthy(r.out:find("\n" .. id:sub(1, 8), 1, true), id) end
    local j = run.cli({ "query", "--json", RUNS, expr })
    assert.equal(0, j.code, j.err)
    local doc = cjson.decode(j.out)
    assert.is_true(doc.ok)
    assert.equal(#want, doc.count)
    for i, id in ipairs(want) do
      assert.equal(id, doc.value[i].run_instance.id)
      assert.equal("Running", doc.value[i].run_instance.state)
    end
  end)

  it("answers 'tasks with exhausted attempts' as a table and as --json", function()
    local want = expected_exhausted(STRINGS)
    assert.is_true(#want > 0)
    local r = run.cli({ "query", STRINGS, "tasks{exhausted = true}" })
    assert.equal(0, r.code, r.err)
    assert.matches("^" .. #want .. " tasks?\ntask%s+policy", r.out)
    local j = run.cli({ "query", "--json", STRINGS, "tasks{exhausted = true}" })
    local doc = cjson.decode(j.out)
    assert.equal(#want, doc.count)
    for i, id in ipairs(want) do assert.equal(id, doc.value[i].task_spec.id) end
  end)

  it("takes paths with [*], negative indexes and id prefixes", function()
    local r = run.cli({ "query", "--json", RUNS, "runs[*].lease.owner" })
    assert.equal(0, r.code, r.err)
    local doc = cjson.decode(r.out)
    assert.equal(25, doc.count)
    assert.equal("runs[3].lease.owner", doc.matches[3].path)
    assert.equal("worker-1", doc.matches[3].value)
    r = run.cli({ "query", RUNS, "runs[-1].run_instance.id" })
    assert.matches("^runs%[%-1%]%.run_instance%.id: 12a00000%-0000%-4000%-8000%-000000000019\n$", r.out)
    r = run.cli({ "query", RUNS, 'runs["12a00000-0000-4000-8000-000000000005"].lease.owner' })
    assert.matches('"worker%-3"', r.out)
    r = run.cli({ "query", RUNS, "runs[12a0].lease" })
    assert.equal(2, r.code)
    assert.matches("ambiguous", r.err)
  end)

  it("reports typos in one line with the valid values (exit 2)", function()
    local r = run.cli({ "query", RUNS, 'runs{state = "Runing"}' })
    assert.equal(2, r.code)
    assert.matches('did you mean "Running"%?%); valid: Scheduled', r.err)
    r = run.cli({ "query", RUNS, 'runs{colour = 1}' })
    assert.equal(2, r.code)
    assert.matches("valid: exhausted, id, in_state_for, leased, older, owner, state, task, terminal", r.err)
  end)

  it("queries a data dir (recovered state and WAL events)", function()
    local dir = fixtures.path("wal", "recovery", "attempt_in_flight_snapshot_plus_tail")
    local r = run.cli({ "query", "--json", dir, 'events{variant = "LeaseAcquired"}' })
    assert.equal(0, r.code, r.err)
    local doc = cjson.decode(r.out)
    assert.equal(2, doc.count)
    assert.truthy(doc.value[1].event.LeaseAcquired)
  end)
end)

describe("show and dump share the path language and both forms", function()
  it("show takes PATH as operand or --path; dump takes --path or operand", function()
    local a = run.cli({ "show", RUNS, "runs[-1].run_instance.state" })
    local b = run.cli({ "show", "--path", "runs[-1].run_instance.state", RUNS })
    assert.equal(0, a.code, a.err)
    assert.equal(a.out, b.out)
    local c = run.cli({ "dump", "--path", "runs[-1].run_instance", RUNS })
    local d = run.cli({ "dump", RUNS, "runs[-1].run_instance" })
    assert.equal(0, c.code, c.err)
    assert.equal(c.out, d.out)
    assert.matches('"state": "Failed"', c.out)
    local e = run.cli({ "dump", "--compact", RUNS, "runs[*].lease.owner" })
    local owners = cjson.decode(e.out)
    assert.equal("worker-1", owners[3])
    assert.equal(2, run.cli({ "show", RUNS, "engine", "--path", "metadata" }).code)
  end)
end)
