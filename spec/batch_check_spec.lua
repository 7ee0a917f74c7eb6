-- `check` jobs classify exactly like `aqstore check`: ok for "OK tasks=N runs=M", failed
-- with error = the text after "ERR " otherwise, and failed with "no snapshot" for NONE.
-- Runs over copies of the golden fixtures (valid, canonical, compat, mapping, decode, frame).
local fixtures = require "support.fixtures"
local core = require "actionqueue.storage.core"
local lfs = require "lfs"
local H = require "support.batch"

describe("batch check jobs", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  it("match the aqstore check line of every snapshot fixture", function()
    if not H.have_snapshot() then
      pending("snapshot.load has not landed yet")
      return
    end
    local manifest = fixtures.manifest("snapshot")
    local jobs, expect = {}, {}
    for _, e in ipairs(manifest) do
      if e.file and e.expect then
        H.copy(H.fixture(e.file), dir .. "/" .. e.file)
        jobs[#jobs + 1] = { kind = "check", input = e.file }
        expect[#jobs] = e.expect
      end
    end
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    local code, _, err = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", dir .. "/r.json", "-q" })
    assert.are.equal(1, code, err) -- the manifest has corrupt and invalid files
    local r = H.report(dir .. "/r.json")
    assert.are.equal(#jobs, #r.jobs)
    local counts = { ok = 0, failed = 0, skipped = 0 }
    for i, e in ipairs(r.jobs) do
      assert.are.equal(jobs[i].input, e.input)
      local want = expect[i]
      if want:match("^OK ") then
        assert.are.equal("ok", e.status, e.input)
        assert.are.equal(want, string.format("OK tasks=%d runs=%d", e.tasks, e.runs))
      elseif want == "NONE" then
        assert.are.equal("failed", e.status, e.input)
        assert.are.equal("no snapshot", e.error)
      else
        assert.are.equal("failed", e.status, e.input)
        assert.are.equal(want:sub(5), e.error, e.input)
        assert.is_string(e.error_kind)
      end
      assert.are.equal(lfs.attributes(dir .. "/" .. e.input, "size"), e.bytes)
      counts[e.status] = counts[e.status] + 1
    end
    assert.are.same(counts, r.summary)
  end)

  it("rewrite jobs write canonical outputs atomically with their CRC in the report", function()
    if not H.have_snapshot() then
      pending("snapshot.load/write have not landed yet")
      return
    end
    local names = {}
    for _, e in ipairs(fixtures.manifest("snapshot")) do
      if e.kind == "compat" and e.canonical then names[#names + 1] = e end
    end
    assert.is_true(#names > 0)
    local jobs = {}
    for i, e in ipairs(names) do
      jobs[i] = { kind = "rewrite", input = H.fixture(e.file), output = string.format("%s/o%02d.snap", dir, i) }
    end
    local res = assert(require("actionqueue.storage.batch").run({ jobs = jobs, workers = 2, progress = false }))
    -- each job matches doing the same in-process: load + snapshot.write
    local snapshot = require "actionqueue.storage.snapshot"
    local failed = 0
    for i, e in ipairs(res.entries) do
      local direct = dir .. "/direct.snap"
      os.remove(direct)
      local snap = snapshot.load(jobs[i].input)
      local ok, err = snapshot.write(direct, snap)
      if ok then
        assert.are.equal("ok", e.status, tostring(e.error))
        local out = assert(H.read(jobs[i].output))
        assert.are.equal(H.read(direct), out, names[i].file)
        assert.are.equal(core.crc32(out), e.output_crc)
      else
        failed = failed + 1
        assert.are.equal("failed", e.status)
        assert.are.equal(tostring(err.message or err), e.error)
        assert.is_nil(H.read(jobs[i].output), "no output for a failed rewrite")
      end
    end
    assert.are.equal(failed == 0 and 0 or 1, res.exit_code)
  end)
end)
