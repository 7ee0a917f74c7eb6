local inspect = require "actionqueue.storage.inspect"
local json = require "actionqueue.storage.inspect.json"
local S = require "actionqueue.storage.schema.snapshot"
local data = require "support.inspect_data"

describe("inspect views", function()
  local s
  before_each(function() s = inspect.wrap(data.snapshot(), { file = "queue.snap", file_size = 1234 }) end)

  it("summarises the snapshot on one screen", function()
    local text = tostring(s)
    assert.matches("^ActionQueue snapshot  queue.snap %(1234 bytes%)", text)
    assert.matches("frame v4, version 4, schema_version 8", text)
    assert.matches("wal_sequence%s+57\n", text)
    assert.matches("taken at%s+1767232800 %(2026%-01%-01T02:00:00Z%)", text)
    assert.matches("engine%s+running %(resumed 2026%-01%-01T01:01:40Z%)", text)
    assert.matches("tasks%s+4: Once 3, Repeat 1 %(1 canceled%)", text)
    assert.matches("runs%s+5: Scheduled 1, Ready 1, Running 1, Completed 1, Canceled 1", text)
    for _, f in ipairs(S.root.fields) do
      if f.type.kind == "list" and f.name ~= "tasks" and f.name ~= "runs" then
        assert.matches("\n  " .. f.name .. "%s+1", text)
      end
    end
    local lines = select(2, text:gsub("\n", "")) + 1
    assert.is_true(lines <= 24)
  end)

  it("says when the engine is paused", function()
    s.engine = { paused = true, paused_at = 1767229200 }
    assert.matches("engine%s+PAUSED since 2026%-01%-01T01:00:00Z", tostring(s))
  end)

  it("filters runs with s:runs{...} and prints them as a table", function()
    local running = s:runs { state = "Running" }
    assert.equal(1, #running)
    assert.equal("1f2e3d4c-5b6a-4978-8877-665544332211", running[1].run_instance.id)
    local text = tostring(running)
    assert.matches("^1 run\nrun%s+task%s+state%s+attempts%s+lease owner%s+age", text)
    assert.matches("1f2e3d4c%s+3b9e7f10%s+Running%s+2%s+worker%-2%s+1h59m", text)
    assert.equal(2, #s:runs { task = "3b9e" })
    assert.equal(2, #s:runs { terminal = true })
    assert.equal(1, #s:runs { owner = "worker-2" })
    assert.equal(3, #s:runs(function(r) return r.run_instance.attempt_count == 0 end))
    assert.equal(1, #s:runs { task = "3b9e" } { state = "Scheduled" })
    assert.has_error(function() s:runs { colour = "red" } end)
    assert.has_error(function() s:runs { state = "runnin" } end)
  end)

  it("keeps s.runs the raw list and adds no fields to the data", function()
    assert.equal(5, #s.runs)
    assert.equal("Completed", s.runs[1].run_instance.state)
    for k in pairs(s) do assert.truthy(S.root.by_name[k], "unexpected key " .. tostring(k)) end
    for k in pairs(s.runs[2]) do assert.truthy(S.Run.by_name[k], "unexpected run key " .. tostring(k)) end
    assert.equal(json.encode_typed(data.snapshot(), S.root), json.encode_typed(s, S.root))
  end)

  it("finds tasks and runs by id or unique prefix and reports ambiguity", function()
    assert.equal("7a5c41d2-9e8f-4a1b-b2c3-d4e5f6a7b8c9", s:task("7a5c").task_spec.id)
    assert.equal(s.tasks[1], s:task("7A5C41D2-9E8F-4A1B-B2C3-D4E5F6A7B8C9"))
    local t, err = s:task("zz")
    assert.is_false(inspect.found(t))
    assert.equal('no task with id prefix "zz"', err)
    t, err = s:task("")
    assert.is_false(inspect.found(t))
    assert.matches("expected", err)
    -- two runs start with "2a"/"4d": make a shared prefix
    local r = s:run("")
    assert.is_false(inspect.found(r))
    s.runs[3].run_instance.id = "1f2e0000-0000-4000-8000-000000000000"
    r, err = s:run("1f2e")
    assert.is_false(inspect.found(r))
    assert.matches('^ambiguous run id prefix "1f2e": 2 matches %(1f2e3d4c', err)
    assert.equal(s.runs[2], s:run("1f2e3"))
    -- tables widen the id column until the ids are told apart
    assert.matches("\n1f2e3d4c  3b9e7f10  Running", tostring(s.runs))
    s.runs[3].run_instance.id = "1f2e3d4c-0000-4000-8000-000000000000"
    assert.matches("\n1f2e3d4c%-5  3b9e7f10  Running", tostring(s.runs))
    assert.matches("\n1f2e3d4c%-0  3b9e7f10  Scheduled", tostring(s.runs))
    -- prefixes are unique among all runs of the snapshot, so a filtered table's cells can
    -- be typed into s:run(prefix)
    assert.matches("\n1f2e3d4c%-5  3b9e7f10  Running", tostring(s:runs { state = "Running" }))
  end)

  it("shows a run's history as a timeline", function()
    local text = tostring(s:run("1f2e"):history())
    assert.matches("^run 1f2e3d4c%-5b6a%-4978%-8877%-665544332211 %(task 3b9e7f10%): Running, 2 attempt%(s%)", text)
    assert.matches("2026%-01%-01T00:01:00Z %+0s%s+%-> Scheduled", text)
    assert.matches("00:11:06Z %+10m6s%s+Running %-> RetryWait", text)
    assert.matches("attempt 708192a3 Timeout: query exceeded 600s", text)
    assert.matches("lease acquired by worker%-2", text)
    local pos_ready = text:find("RetryWait -> Ready", 1, true)
    local pos_run = text:find("Leased -> Running", pos_ready, true)
    assert.truthy(pos_ready and pos_run)
  end)

  it("links runs and tasks", function()
    assert.equal(s.tasks[2], s.runs[2]:task())
    assert.equal(2, #s.tasks[2]:runs())
    assert.matches("^SnapshotRun\n", tostring(s.runs[1]))
    assert.matches("^SnapshotTask\n", tostring(s.tasks[1]))
    assert.matches("^4 tasks\ntask%s+policy", tostring(s.tasks))
    assert.matches("Repeat 7x/86400s", tostring(s.tasks))
    assert.matches("^budgets: 1 entry", tostring(s.budgets))
  end)

  it("offers get/show by path, stats and diff", function()
    assert.equal(s.engine, (s:get "engine"))
    assert.matches("^runs%[2%]%.lease: SnapshotLeaseMetadata", tostring(s:show "runs[2].lease"))
    local none, err = s:show "nope"
    assert.is_false(inspect.found(none))
    assert.matches('has no field "nope"', err)
    assert.matches('has no field "nope"', tostring(none))
    assert.equal("Canceled", s:get "runs[-1].run_instance.state")
    assert.equal("worker-2", s:get "runs[1f2e].lease.owner")
    assert.is_nil(s:get "runs[1].lease")
    local owners = s:get "runs[*].lease.owner"
    assert.equal(5, #owners.data)
    assert.matches('runs%[2%]%.lease%.owner: "worker%-2"', tostring(owners))
    assert.matches("runs%[1%]%.lease: null", tostring(s:show "runs[*].lease.owner"))
    assert.matches("runs by state%s+Scheduled 1", tostring(s:stats()))
    assert.equal(5, s:stats().data.collections[2].count)
    local other = inspect.wrap(data.snapshot())
    assert.is_true(s:diff(other).data.identical)
  end)

  it("truncates long lists with a count", function()
    local many = {}
    for i = 1, 45 do many[i] = data.copy(s.runs[1 + i % 5]) end
    local big = data.snapshot()
    big.runs = many
    big = inspect.wrap(big)
    local text = tostring(big.runs)
    assert.matches("^45 runs", text)
    assert.matches("%.%.%. 25 more %(of 45%)$", text)
  end)

  it("aq.show pretty-prints any part, by guess or by type name", function()
    local aq = require "actionqueue.storage"
    assert.matches("^SnapshotEngineControl", tostring(aq.show(s.engine)))
    assert.matches("^Snapshot\n", tostring(aq.show(s)))
    assert.matches("^SnapshotLeaseMetadata", tostring(aq.show(s.runs[2].lease, "SnapshotLeaseMetadata")))
    assert.has_error(function() aq.show({}, "NoSuchRecord") end)
  end)
end)
