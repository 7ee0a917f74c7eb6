-- Batch safety (issue 13): one writer per output, resume never discards journaled progress
-- (killed at many moments of `batch --resume` itself), a compaction inside its own data dir
-- keeps that input's fingerprint.
local core = require "actionqueue.storage.core"
local lfs = require "lfs"
local H = require "support.batch"

local TEST_ENV = H.TEST_KIND_ENV
-- `make crash` (AQS_RELIABILITY=full) kills `batch --resume` at 40 moments; `make test` at 7.
local full = os.getenv("AQS_RELIABILITY") == "full"

local function sleep(s) os.execute(string.format("sleep %.3f", s)) end

-- Starts `aqstore batch ARGS` in its own process group; returns the handle (`pgid` is the
-- runner's pid).
local function start(args, env)
  local sub = H.tmpdir()
  local h = H.start_group(sub, { H.aqstore, "batch", table.unpack(args) }, env)
  h.dir = sub
  return h
end

-- kill -9 of the runner alone (a crash), then waits for its orphaned workers: each ends
-- its current job and exits (they would otherwise race the next run for the same outputs).
local function crash(h)
  core.proc_kill(h.pgid, 9)
  H.wait_exit(h)
  H.wait_group_empty(h.pgid)
  H.rmtree(h.dir)
end

-- Indexes of the jobs a report or journal records as done (ok or skipped).
local function done_set(entries)
  local s = {}
  for _, e in ipairs(entries) do
    if e.status == "ok" or e.status == "skipped" then s[e.index] = true end
  end
  return s
end

local function count(s)
  local n = 0
  for _ in pairs(s) do n = n + 1 end
  return n
end

local function missing_from(have, want)
  for i in pairs(want) do
    if not have[i] then return i end
  end
  return nil
end

describe("batch safety", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  describe("two jobs writing one output", function()
    local function setup(jobs)
      assert(lfs.mkdir(dir .. "/out"))
      H.copy(H.fixture("valid_01_tasks.snap"), dir .. "/a.snap")
      H.copy(H.fixture("valid_01_tasks.snap"), dir .. "/b.snap")
      H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    end

    it("are refused before anything runs: exit 2, naming both job numbers", function()
      setup({
        { kind = "verify", input = "a.snap" },
        { kind = "rewrite", input = "a.snap", output = "out/x.snap" },
        { kind = "rewrite", input = "b.snap", output = "out/y.snap" },
        { kind = "rewrite", input = "b.snap", output = "out/x.snap" },
      })
      local code, out, err = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", dir .. "/r.json" })
      assert.are.equal(2, code, out)
      assert.matches("jobs[2] and jobs[4] write the same output out/x.snap", err, 1, true)
      assert.is_nil(lfs.attributes(dir .. "/out/x.snap"), "nothing ran")
      assert.is_nil(lfs.attributes(dir .. "/out/y.snap"), "nothing ran")
      assert.is_nil(lfs.attributes(dir .. "/r.json.journal"), "no journal started")
    end)

    it("are recognised through ./, .. and a symbolic link to the directory", function()
      assert(lfs.mkdir(dir .. "/sub"))
      assert(lfs.link(dir .. "/out", dir .. "/alias", true))
      setup({
        { kind = "rewrite", input = "a.snap", output = "sub/../out/./x.snap" },
        { kind = "rewrite", input = "b.snap", output = "alias/x.snap" },
      })
      local code, _, err = H.run({ dir .. "/jobs.lua", "-q" })
      assert.are.equal(2, code)
      assert.matches("jobs[1] and jobs[2] write the same output alias/x.snap", err, 1, true)
      assert.is_nil(lfs.attributes(dir .. "/out/x.snap"))
      -- distinct outputs in one directory are fine
      local outputs = require "actionqueue.storage.batch.outputs"
      assert.is_true(outputs.check_unique({
        { index = 1, output = "x", output_path = dir .. "/out/x.snap" },
        { index = 2, output = "y", output_path = dir .. "/alias/y.snap" },
      }))
      assert.are.equal(outputs.canonical(dir .. "/out/x.snap"), outputs.canonical(dir .. "/alias/x.snap"))
    end)
  end)

  it("batch --resume R --report R killed at any moment never loses journaled progress", function()
    local n = full and 48 or 16
    local jobs = H.slow_copy_jobs(dir, n, 0.2)
    local moments = { 0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.35 }
    if full then
      moments = {}
      for k = 0, 39 do moments[#moments + 1] = k * 0.015 end
    end
    local rp = dir .. "/r.json"
    local jp = rp .. ".journal"

    -- a first run, killed once a few jobs are journaled
    local h = start({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "-q" }, TEST_ENV)
    for _ = 1, 1000 do
      if count(done_set(H.journal(jp))) >= 3 then break end
      sleep(0.01)
    end
    core.proc_kill(h.pgid, 9)
    local done = done_set(H.journal(jp))
    assert.is_true(count(done) >= 3 and count(done) < n, "the kill landed midway")
    crash(h)

    -- resumed runs into the same report, each killed at a different moment; the journal is
    -- watched all the while: what it recorded as done must stay recorded
    for _, after in ipairs(moments) do
      h = start({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "--resume", rp, "-q" }, TEST_ENV)
      local t0 = core.proc_clock()
      repeat
        local now = done_set(H.journal(jp))
        local lost = missing_from(now, done)
        assert.is_nil(lost, string.format("job %s vanished from the journal %.3fs into a resume",
          tostring(lost), core.proc_clock() - t0))
        done = now
      until core.proc_clock() - t0 >= after or H.read(h.rc) ~= nil
      core.proc_kill(h.pgid, 9)
      crash(h)
      local now = done_set(H.journal(jp))
      assert.is_nil(missing_from(now, done), "a job vanished from the journal after kill -9")
      done = now
    end

    -- the last resume finishes: every job done once, the earlier ones skipped
    local code, _, err = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "--resume", rp, "-q" }, TEST_ENV)
    assert.are.equal(0, code, err)
    local r = H.report(rp)
    assert.are.equal(n, #r.jobs)
    for i, e in ipairs(r.jobs) do
      if done[i] then assert.are.equal("skipped", e.status, "job " .. i) end
      local out = assert(H.read(dir .. "/" .. jobs[i].output))
      assert.are.equal(core.crc32(out), e.output_crc)
    end
    assert.are.equal(count(done), r.summary.skipped)
    assert.is_nil(lfs.attributes(jp), "journal removed after the final report")
  end)

  it("a journal whose last line was torn by a kill is appended to on a new line", function()
    local report = require "actionqueue.storage.batch.report"
    local rp = dir .. "/r.json"
    local line = report.encode_entry({ index = 1, input = "a", kind = "verify", status = "ok", seconds = 0,
      bytes = 1, input_size = 1, input_mtime = 1, input_crc = 1 })
    H.write(rp .. ".journal", line .. "\n" .. '{"index":2,"inp')
    local j = assert(report.journal(rp, { append = true }))
    j.append({ index = 3, input = "c", kind = "verify", status = "ok", seconds = 0, bytes = 1 })
    assert(j.commit())
    j.close(false)
    local entries = assert(report.load(rp))
    assert.are.same({ 1, 3 }, { entries[1].index, entries[2].index })
  end)

  for _, where in ipairs({ "snapshots/snapshot.bin", "compacted.snap" }) do
    it("a compaction writing " .. where .. " inside its own data dir is skipped by the next resume", function()
      local ok, recovery = pcall(require, "actionqueue.storage.recovery")
      if not (ok and type(recovery) == "table" and recovery.compact) then return pending("no recovery.compact") end
      for _, d in ipairs({ "/data", "/data/snapshots", "/data/wal" }) do assert(lfs.mkdir(dir .. d)) end
      H.copy(H.fixture("valid_01_tasks.snap"), dir .. "/data/snapshots/snapshot.bin")
      H.write(dir .. "/data/wal/actionqueue.wal", "")
      H.jobfile(dir .. "/jobs.lua", { jobs = {
        { kind = "compact", input = "data", output = "data/" .. where, timestamp = 1700000000 },
      } })
      local rp = dir .. "/r.json"
      local code, _, err = H.run({ dir .. "/jobs.lua", "--report", rp, "-q" })
      assert.are.equal(0, code, err)
      assert.are.equal("ok", H.report(rp).jobs[1].status)
      code, _, err = H.run({ dir .. "/jobs.lua", "--report", rp, "--resume", rp, "-q" })
      assert.are.equal(0, code, err)
      assert.are.equal("skipped", H.report(rp).jobs[1].status)
      -- a real change of the input still counts
      H.write(dir .. "/data/wal/extra.bin", "x")
      code, _, err = H.run({ dir .. "/jobs.lua", "--report", rp, "--resume", rp, "-q" })
      assert.are.equal(0, code, err)
      assert.are.equal("ok", H.report(rp).jobs[1].status)
    end)
  end
end)
