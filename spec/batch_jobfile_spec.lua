-- Job files: loading (Lua and JSON), validation messages naming the bad entry, exit code 2.
local jobfile = require "actionqueue.storage.batch.jobfile"
local shard = require "actionqueue.storage.batch.shard"
local H = require "support.batch"

describe("batch job files", function()
  it("normalises defaults, kinds and relative paths", function()
    local jobs = assert(jobfile.normalise({
      defaults = { kind = "check", timeout = 5 },
      jobs = { { input = "a.snap" }, { kind = "rewrite", input = "/abs/b.snap", output = "out/b.snap" } },
    }, "/base"))
    assert.are.equal(2, #jobs)
    assert.are.same({ "check", "a.snap", "/base/a.snap", 5, 1 },
      { jobs[1].kind, jobs[1].input, jobs[1].path, jobs[1].timeout, jobs[1].index })
    assert.are.equal("/abs/b.snap", jobs[2].path)
    assert.are.equal("/base/out/b.snap", jobs[2].output_path)
  end)

  it("accepts a bare list of jobs", function()
    local jobs = assert(jobfile.normalise({ { kind = "verify", input = "x" } }))
    assert.are.equal("verify", jobs[1].kind)
  end)

  local bad = {
    { { jobs = { { kind = "check", input = "a" }, { kind = "check", input = "b" }, { kind = "chek", input = "c" } } },
      'jobs[3].kind: unknown kind "chek"' },
    { { jobs = { { input = "a" } } }, "jobs[1].kind: missing" },
    { { jobs = { { kind = "check" } } }, "jobs[1].input: missing" },
    { { jobs = { { kind = "rewrite", input = "a" } } }, 'jobs[1].output: required for kind "rewrite"' },
    { { jobs = { { kind = "check", input = "a", output = "b" } } }, 'jobs[1].output: not used by kind "check"' },
    { { jobs = { { kind = "check", input = "a", inptu = "b" } } }, "jobs[1].inptu: unknown field" },
    { { jobs = { { kind = "check", input = 3 } } }, "jobs[1].input: expected a string, got number" },
    { { jobs = { "a.snap" } }, "jobs[1]: expected a table, got string" },
    { { defaults = { kind = 1 }, jobs = {} }, "defaults.kind: expected a string, got number" },
    { { jobs = { { kind = "check", input = "a", timeout = -1 } } }, "jobs[1].timeout: must be positive" },
    { { jbos = {} }, "jbos: unknown field" },
  }
  for _, case in ipairs(bad) do
    it("rejects: " .. case[2], function()
      local jobs, err = jobfile.normalise(case[1])
      assert.is_nil(jobs)
      assert.are.equal(case[2], err)
    end)
  end

  it("knows a kind registered through kinds.register, with its own fields (the test kind)", function()
    local kinds = require "actionqueue.storage.batch.kinds"
    if not kinds.get("test") then
      assert.is_nil(jobfile.normalise({ { kind = "test", input = "x" } }))
      assert.are.equal("jobs[1].action: unknown field", select(2, jobfile.normalise({ { kind = "check", input = "x",
        action = "copy" } })))
    end
    require "support.batch_test_kind"
    local jobs = assert(jobfile.normalise({ { kind = "test", input = "x", action = "copy", seconds = 1 } }))
    assert.are.same({ "test", "copy", 1 }, { jobs[1].kind, jobs[1].action, jobs[1].seconds })
    assert.are.equal("jobs[1].seconds: expected a number, got string",
      select(2, jobfile.normalise({ { kind = "test", input = "x", seconds = "1" } })))
    -- its fields go to the workers, and the workers load its module
    local wire = jobfile.wire_fields()
    for _, f in ipairs({ "kind", "input", "output", "path", "output_path", "timestamp", "action", "seconds" }) do
      assert.is_truthy(table.concat(wire, " "):find(f, 1, true), f)
    end
    assert.is_falsy(table.concat(wire, " "):find("timeout", 1, true))
    assert.are.same({ "support.batch_test_kind" }, kinds.modules())
  end)

  it("the help lists every registered kind from the one table", function()
    local kinds = require "actionqueue.storage.batch.kinds"
    local code, out = H.run({ "--help" })
    assert.are.equal(0, code)
    for _, name in ipairs(kinds.names()) do
      if name ~= "test" then assert.matches("\n  " .. name .. " ", out, 1, true) end
    end
  end)

  describe("files", function()
    local dir
    before_each(function() dir = H.tmpdir() end)
    after_each(function() H.rmtree(dir) end)

    it("loads JSON job files", function()
      H.write(dir .. "/jobs.json", '{"defaults": {"kind": "verify"}, "jobs": [{"input": "a.snap"}]}')
      local jobs = assert(jobfile.load(dir .. "/jobs.json"))
      assert.are.equal(dir .. "/a.snap", jobs[1].path)
    end)

    it("aqstore batch exits 2 on a bad entry and names it", function()
      H.jobfile(dir .. "/jobs.lua", { jobs = { { kind = "check", input = "a" }, { kind = "chek", input = "b" } } })
      local code, _, err = H.run({ dir .. "/jobs.lua", "-q" })
      assert.are.equal(2, code)
      assert.matches('jobs[2].kind: unknown kind "chek"', err, 1, true)
    end)

    it("aqstore batch exits 2 on unreadable or broken job files", function()
      local code = H.run({ dir .. "/nope.lua", "-q" })
      assert.are.equal(2, code)
      H.write(dir .. "/broken.json", '{"jobs": [')
      local code2, _, err2 = H.run({ dir .. "/broken.json", "-q" })
      assert.are.equal(2, code2)
      assert.matches("invalid JSON", err2, 1, true)
    end)
  end)
end)

describe("batch shards", function()
  it("parses I/N and rejects bad specs", function()
    assert.are.same({ 2, 3 }, { shard.parse("2/3") })
    for _, s in ipairs({ "0/3", "4/3", "1/0", "x", "1/3/4", "" }) do
      assert.is_nil((shard.parse(s)), s)
    end
  end)

  it("1/3, 2/3, 3/3 cover every job exactly once", function()
    for _, total in ipairs({ 0, 1, 2, 3, 10, 31 }) do
      local jobs = {}
      for i = 1, total do jobs[i] = { index = i } end
      local seen = {}
      for i = 1, 3 do
        for _, j in ipairs(shard.select(jobs, i, 3)) do
          assert.is_nil(seen[j.index], "job in two shards")
          seen[j.index] = i
        end
      end
      for i = 1, total do assert.are.equal((i - 1) % 3 + 1, seen[i]) end
    end
  end)
end)
