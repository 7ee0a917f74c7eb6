local stats = require "actionqueue.storage.inspect.stats"
local diff = require "actionqueue.storage.inspect.diff"
local json = require "actionqueue.storage.inspect.json"
local S = require "actionqueue.storage.schema.snapshot"
local data = require "support.inspect_data"

describe("inspect.stats", function()
  it("counts collections, states, policies and ranks payloads and old runs", function()
    local snap = data.snapshot()
    local r = stats.compute(snap, { file = "q.snap", file_size = 100, payload_size = 88 })
    local n = 0
    for _, f in ipairs(S.root.fields) do if f.type.kind == "list" then n = n + 1 end end
    assert.equal(n, #r.collections)
    assert.equal(4, r.collections[1].count)
    local by = {}
    for _, c in ipairs(r.runs_by_state) do by[c.state] = c.count end
    assert.same({ Scheduled = 1, Ready = 1, Leased = 0, Running = 1, RetryWait = 0, Suspended = 0,
                  Completed = 1, Failed = 0, Canceled = 1 }, by)
    assert.equal(3, r.attempts)
    assert.equal(1, r.leases)
    assert.equal(45, r.largest_payloads[1].bytes)
    assert.equal("7a5c41d2-9e8f-4a1b-b2c3-d4e5f6a7b8c9", r.largest_payloads[1].task_id)
    assert.equal(3, #r.oldest_runs)
    assert.equal("Running", r.oldest_runs[1].state)
    assert.equal(7140, r.oldest_runs[1].age)
    local text = stats.render(r)
    assert.matches("size%s+100 bytes %(payload 88 bytes%)", text)
    assert.matches("oldest unfinished runs", text)
    local doc = json.encode(stats.to_json(r))
    assert.matches('"wal_sequence":57', doc)
    assert.matches('"runs_by_state":{[^}]*"Running":1', doc)
  end)

  it("tells tasks apart in the oldest-runs table (issue 16: no two equal cells)", function()
    local snap = data.snapshot()
    snap.tasks[2].task_spec.id = "7a5c0000-0000-4000-8000-000000000002"
    snap.tasks[3].task_spec.id = "7a5c0000-0000-4000-8000-000000000003"
    for _, r in ipairs(snap.runs) do
      if r.run_instance.task_id == "3b9e7f10-2c4d-4e6f-8a1b-0c2d3e4f5a6b" then
        r.run_instance.task_id = snap.tasks[2].task_spec.id
      elseif r.run_instance.task_id == "c4d8e2a1-6b7c-4d8e-9f01-a2b3c4d5e6f7" then
        r.run_instance.task_id = snap.tasks[3].task_spec.id
      end
    end
    local text = stats.render(stats.compute(snap))
    local cells = {}
    for task in text:match("oldest unfinished runs\n.-\n(.*)$"):gmatch("\n?%S+%s+(%S+)") do
      cells[#cells + 1] = task
    end
    assert.is_true(#cells >= 2)
    local seen = {}
    for _, c in ipairs(cells) do seen[c] = (seen[c] or 0) + 1 end
    assert.is_nil(seen["7a5c0000"], text)
  end)

  it("writes u64 above 2^63-1 unsigned in JSON", function()
    local snap = data.snapshot()
    snap.metadata.wal_sequence = -2
    assert.matches('"wal_sequence":18446744073709551614', json.encode(stats.to_json(stats.compute(snap))))
  end)
end)

describe("inspect.diff", function()
  it("finds no differences between equal snapshots", function()
    local r = diff.compare(data.snapshot(), data.snapshot())
    assert.is_true(r.identical)
    assert.matches("no differences", diff.render(r))
  end)

  it("reports tasks and runs added, removed and changed, and engine and collections", function()
    local a, b = data.snapshot(), data.snapshot()
    table.remove(b.tasks, 4)
    b.tasks[#b.tasks + 1] = data.copy(a.tasks[1])
    b.tasks[#b.tasks].task_spec.id = "ffffffff-0000-4000-8000-000000000001"
    b.tasks[1].task_spec.metadata.priority = 9
    b.runs[4].run_instance.state = "Leased"
    b.engine.paused = true
    b.budgets[1].consumed = 50000
    b.tenants = {}
    local r = diff.compare(a, b)
    assert.is_false(r.identical)
    assert.same({ "ffffffff-0000-4000-8000-000000000001" }, r.keyed.tasks.added)
    assert.same({ "e91f0a3b-4c5d-4e6f-a7b8-c9d0e1f2a3b4" }, r.keyed.tasks.removed)
    assert.equal("task_spec.metadata.priority", r.keyed.tasks.changed[1].paths[1].path)
    assert.equal("Ready", r.keyed.runs.changed[1].from_state)
    assert.equal("Leased", r.keyed.runs.changed[1].to_state)
    assert.same({ path = "engine.paused", from = "false", to = "true" }, r.fields[1])
    local text = diff.render(r, "a.snap", "b.snap")
    assert.matches("^%-%-%- a.snap\n%+%+%+ b.snap", text)
    assert.matches("tasks: 1 added, 1 removed, 1 changed", text)
    assert.matches("  ~ 4d5e6f70%-8192%-4a3b%-bc4d%-5e6f708192a3 Ready %-> Leased", text)
    assert.matches("budgets: 1 added, 1 removed", text)
    assert.matches("tenants: 0 added, 1 removed %(1 %-> 0 entries%)", text)
    local doc = json.encode(diff.to_json(r, "a", "b"))
    assert.matches('"identical":false', doc)
    assert.matches('"to_state":"Leased"', doc)
  end)
end)

describe("inspect.json", function()
  it("writes typed values in schema order with exact u64 and canonical escapes", function()
    local snap = data.snapshot()
    snap.metadata.wal_sequence = -1
    local text = json.encode_typed(snap.metadata, S.Metadata)
    assert.equal('{"schema_version":8,"wal_sequence":18446744073709551615,"task_count":4,"run_count":5}', text)
    assert.equal('"a\\"b\\\\c\\n\\u001f/\127é"', json.string('a"b\\c\n\31/\127é'))
    assert.equal("[104,105]", json.encode_typed("hi", { kind = "bytes" }))
    local pretty = json.encode_typed(snap.engine, S.EngineControl, { indent = "  " })
    assert.equal('{\n  "paused": false,\n  "paused_at": 1767229200,\n  "resumed_at": 1767229300\n}', pretty)
    assert.equal('{"Repeat":{"count":7,"interval_secs":86400}}',
      json.encode_typed(snap.tasks[2].task_spec.run_policy, S.Task.by_name.task_spec.type.by_name.run_policy.type))
  end)

  it("writes plain data with sorted keys, arrays and raw numbers", function()
    assert.equal('{"a":[],"b":null,"c":[1,2],"d":18446744073709551615}',
      json.encode({ c = { 1, 2 }, a = json.array(), b = json.null, d = json.raw("18446744073709551615") }))
  end)
end)
