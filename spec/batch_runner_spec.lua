-- The batch runner end to end: worker processes, failure isolation (bad files, crashes,
-- timeouts), the report contract, scanning, sharding + merge.
local core = require "actionqueue.storage.core"
local cjson = require "cjson"
local fixtures = require "support.fixtures"
local H = require "support.batch"
local batch = require "actionqueue.storage.batch"

local TEST_ENV = H.TEST_KIND_ENV

local function frame_fixtures()
  local good, bad = {}, {}
  for _, e in ipairs(fixtures.manifest("snapshot")) do
    if e.kind == "valid" and #good < 3 then good[#good + 1] = e.file end
    if e.kind == "frame" and e.expect:match("^ERR") and #bad < 3 then bad[#bad + 1] = e.file end
  end
  return good, bad
end

describe("batch runner", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  it("runs a mix of good, corrupt, missing, crashing, hanging and failing jobs; every entry is right", function()
    local good, bad = frame_fixtures()
    local jobs = {}
    for _, f in ipairs(good) do
      H.copy(fixtures.path("snapshot", f), dir .. "/" .. f)
      jobs[#jobs + 1] = { kind = "verify", input = f }
    end
    for _, f in ipairs(bad) do
      H.copy(fixtures.path("snapshot", f), dir .. "/" .. f)
      jobs[#jobs + 1] = { kind = "verify", input = f }
    end
    jobs[#jobs + 1] = { kind = "verify", input = "missing.snap" }
    jobs[#jobs + 1] = { kind = "test", action = "crash", input = good[1] }
    jobs[#jobs + 1] = { kind = "test", action = "hang", input = good[1], timeout = 0.3 }
    jobs[#jobs + 1] = { kind = "test", action = "fail", input = good[1] }
    jobs[#jobs + 1] = { kind = "test", action = "copy", input = good[1], output = "out/copy.snap" }
    jobs[#jobs + 1] = { kind = "verify", input = good[2] } -- after the crash and the timeout
    assert(require("lfs").mkdir(dir .. "/out"))
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })

    local snapshot = require "actionqueue.storage.snapshot"
    local expect = {}
    for _, e in ipairs(fixtures.manifest("snapshot")) do expect[e.file] = e.expect end
    local code, out = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", dir .. "/r.json" }, TEST_ENV)
    assert.are.equal(1, code)
    assert.matches("total", out)
    assert.is_nil(H.read(dir .. "/r.json.journal"), "journal removed after the final report")
    local r = H.report(dir .. "/r.json")
    assert.are.equal(#jobs, #r.jobs)
    local nok, nfailed = 0, 0
    for i, e in ipairs(r.jobs) do
      local job = jobs[i]
      assert.are.equal(job.input, e.input)
      assert.are.equal(job.kind, e.kind)
      assert.is_number(e.seconds)
      assert.is_number(e.bytes)
      local data = H.read(dir .. "/" .. job.input)
      local expect_ok = job.kind == "verify" and data and core.frame_decode(data, { version = 4 }).status == "ok"
        or job.action == "copy"
      if expect_ok then
        nok = nok + 1
        assert.are.equal("ok", e.status, e.input)
        assert.are.equal(cjson.null, e.error)
        assert.are.equal(#data, e.bytes)
        assert.are.equal(core.crc32(data), e.input_crc)
      else
        nfailed = nfailed + 1
        assert.are.equal("failed", e.status, e.input)
        assert.is_string(e.error)
        assert.is_string(e.error_kind)
        if job.kind == "verify" and data then
          -- the aqstore verify wording: the loader's text (aqstore check prints "ERR " .. it)
          local r2 = snapshot.verify(dir .. "/" .. job.input)
          assert.are.equal(snapshot.describe_frame(r2), e.error, e.input)
          if r2.status ~= "short_payload" then assert.are.equal(expect[job.input]:sub(5), e.error, e.input) end
        end
      end
    end
    assert.are.same({ ok = nok, failed = nfailed, skipped = 0 }, r.summary)
    -- specific failures
    local by_action = {}
    for i, e in ipairs(r.jobs) do by_action[jobs[i].action or jobs[i].input] = e end
    assert.are.equal("WorkerCrash", by_action.crash.error_kind)
    assert.are.equal("worker exited with code 3", by_action.crash.error)
    assert.are.equal("Timeout", by_action.hang.error_kind)
    assert.are.equal("timed out after 0.3s", by_action.hang.error)
    assert.are.equal("test failure", by_action.fail.error)
    assert.are.equal("no snapshot (file not found)", by_action["missing.snap"].error)
    -- the output checksum is the CRC-32 of the file written
    local written = assert(H.read(dir .. "/out/copy.snap"))
    assert.are.equal(core.crc32(written), by_action.copy.output_crc)
    assert.are.equal(#written, by_action.copy.output_bytes)
    assert.are.equal("ok", core.frame_decode(written, { version = 4 }).status)
  end)

  it("a job killed for its timeout or by its worker's death leaves neither an output nor OUTPUT.tmp", function()
    local lfs = require "lfs"
    local big = H.fixture("valid_12_medium_1000.snap")
    local jobs = {
      -- a slow copy (10 steps of 0.5s) through the AtomicWriter, killed after 1s
      { kind = "test", action = "copy", input = big, output = dir .. "/slow.snap", seconds = 5, timeout = 1 },
      -- the worker exits in the middle of the copy
      { kind = "test", action = "copy_crash", input = big, output = dir .. "/crash.snap" },
      { kind = "test", action = "copy", input = big, output = dir .. "/fine.snap" },
    }
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    local code = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", dir .. "/r.json", "-q" }, TEST_ENV)
    assert.are.equal(1, code)
    local by = {}
    for _, e in ipairs(H.report(dir .. "/r.json").jobs) do by[e.output] = e end
    local slow, crash, fine = by[dir .. "/slow.snap"], by[dir .. "/crash.snap"], by[dir .. "/fine.snap"]
    assert.are.equal("Timeout", slow.error_kind)
    assert.are.equal("timed out after 1s", slow.error)
    assert.are.equal("WorkerCrash", crash.error_kind)
    assert.are.equal("worker exited with code 3", crash.error)
    assert.are.equal("ok", fine.status, tostring(fine.error))
    for _, name in ipairs({ "slow.snap", "crash.snap" }) do
      assert.is_nil(lfs.attributes(dir .. "/" .. name), name .. " left behind")
    end
    for name in lfs.dir(dir) do   -- temps are OUTPUT.tmp.<pid>.<hex> (docs/safety.md)
      assert.is_nil(name:find(".tmp", 1, true), name .. " left behind")
    end
    assert.are.equal(H.read(big), (assert(H.read(dir .. "/fine.snap")):sub(13)))
  end)

  it("many small jobs in batches: crashes requeue the jobs queued behind them, each job reported once", function()
    local good = frame_fixtures()
    local jobs = {}
    for i = 1, 400 do
      if i % 67 == 0 then
        jobs[i] = { kind = "test", action = "crash", input = H.fixture(good[1]) }
      else
        jobs[i] = { kind = "verify", input = H.fixture(good[1 + i % #good]) }
      end
    end
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    local code = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", dir .. "/r.json", "-q" }, TEST_ENV)
    assert.are.equal(1, code)
    local r = H.report(dir .. "/r.json")
    assert.are.equal(#jobs, #r.jobs)
    for i, e in ipairs(r.jobs) do
      assert.are.equal(i, e.index)
      if jobs[i].action == "crash" then
        assert.are.equal("WorkerCrash", e.error_kind)
      else
        assert.are.equal("ok", e.status, tostring(e.error))
      end
    end
    assert.are.same({ ok = 400 - 5, failed = 5, skipped = 0 }, r.summary)
  end)

  it("exits 0 when every job succeeds, and the library returns the same classification", function()
    local good = frame_fixtures()
    local jobs = {}
    for _, f in ipairs(good) do
      H.copy(fixtures.path("snapshot", f), dir .. "/" .. f)
      jobs[#jobs + 1] = { kind = "verify", input = dir .. "/" .. f }
    end
    local res = assert(batch.run({ jobs = jobs, workers = 2, progress = false }))
    assert.are.equal(0, res.exit_code)
    assert.are.same({ ok = #good, failed = 0, skipped = 0 }, res.summary)
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    local code = H.run({ dir .. "/jobs.lua", "-q" })
    assert.are.equal(0, code)
  end)

  it("--scan finds snapshot files and data directories in sorted order", function()
    local lfs = require "lfs"
    local good = frame_fixtures()
    local src = fixtures.path("snapshot", good[1])
    for _, d in ipairs({ "/a", "/a/b", "/data", "/data/snapshots", "/data/wal" }) do assert(lfs.mkdir(dir .. d)) end
    H.copy(src, dir .. "/a/x.snap")
    H.copy(src, dir .. "/a/b/y.bin")
    H.copy(src, dir .. "/a/snapshot.bin")
    H.write(dir .. "/a/notes.txt", "not a snapshot")
    H.copy(src, dir .. "/data/snapshots/snapshot.bin")
    local code, _, err = H.run({ "--scan", dir, "--kind", "verify", "--report", dir .. "/r.json", "-q" })
    assert.are.equal(0, code, err)
    local inputs = {}
    for _, e in ipairs(H.report(dir .. "/r.json").jobs) do inputs[#inputs + 1] = e.input:sub(#dir + 2) end
    assert.are.same({ "a/b/y.bin", "a/snapshot.bin", "a/x.snap", "data/snapshots/snapshot.bin" }, inputs)
    -- compact jobs take the data directory itself
    local jobs = assert(batch.jobs({ scan = dir, kind = "compact", out_dir = dir .. "/out" }))
    assert.are.equal(1, #jobs)
    assert.are.equal(dir .. "/data", jobs[1].input)
    assert.are.equal(dir .. "/out/data.snap", jobs[1].output)
  end)

  it("compact jobs call recovery.compact: the same output as the direct call", function()
    local lfs = require "lfs"
    for _, d in ipairs({ "/data", "/data/snapshots", "/data/wal" }) do assert(lfs.mkdir(dir .. d)) end
    H.copy(H.fixture("valid_01_tasks.snap"), dir .. "/data/snapshots/snapshot.bin")
    H.write(dir .. "/data/wal/actionqueue.wal", "")
    local res = assert(batch.run({ jobs = { { kind = "compact", input = dir .. "/data", output = dir .. "/c.snap",
      timestamp = 1700000000 } }, workers = 1, progress = false }))
    local e = res.entries[1]
    assert.are.equal("ok", e.status, tostring(e.error))
    local rec = require "actionqueue.storage.recovery"
    assert(rec.compact(dir .. "/data", { timestamp = 1700000000, out = dir .. "/c2.snap" }))
    assert.are.equal(H.read(dir .. "/c2.snap"), H.read(dir .. "/c.snap"))
    assert.are.equal(core.crc32(H.read(dir .. "/c.snap")), e.output_crc)
  end)

  it("shards 1/3, 2/3, 3/3 cover every job exactly once and merge back to the full report", function()
    local good, bad = frame_fixtures()
    local jobs = {}
    for i = 1, 10 do
      local f = (i % 3 == 0) and bad[1] or good[1 + i % #good]
      jobs[#jobs + 1] = { kind = "verify", input = H.fixture(f) }
    end
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    local reports, seen = {}, {}
    for i = 1, 3 do
      local rp = string.format("%s/r%d.json", dir, i)
      H.run({ dir .. "/jobs.lua", "--shard", i .. "/3", "--report", rp, "-q" })
      reports[#reports + 1] = rp
      for _, e in ipairs(H.report(rp).jobs) do
        assert.is_nil(seen[e.index], "job in two shards")
        seen[e.index] = i
        assert.are.equal(jobs[e.index].input, e.input)
      end
    end
    for k = 1, #jobs do assert.are.equal((k - 1) % 3 + 1, seen[k]) end
    local args = { "merge", "-o", dir .. "/all.json", "-q" }
    for _, rp in ipairs(reports) do args[#args + 1] = rp end
    local code = H.run(args)
    assert.are.equal(1, code) -- bad[1] jobs failed
    local merged = H.report(dir .. "/all.json")
    assert.are.equal(#jobs, #merged.jobs)
    for k, e in ipairs(merged.jobs) do assert.are.equal(k, e.index) end
    assert.are.same({ ok = 7, failed = 3, skipped = 0 }, merged.summary)
  end)
end)
