-- The batch report journal in shared use (the gaps issue 13's closing note left, gap 3 and
-- the batch part of the concurrency census, gap 5; docs/safety.md "The report journal"):
-- * a journal owned by another user (a shared, sticky, world-writable folder) is never
--   appended to: the run is refused with a message naming the file and its owner;
-- * two runs into one report at the same time (two `batch --resume R --report R`, or a
--   new `--report R` while a run writes R) never share the journal: the second is
--   refused at once, before it truncates or appends anything, and the first finishes
--   with every job.
-- Each failed before the fix: the journal of nobody was appended to; the second resume ran
-- every job again next to the first, and a new run truncated the live journal.
local core = require "actionqueue.storage.core"
local lfs = require "lfs"
local H = require "support.batch"

local TEST_ENV = H.TEST_KIND_ENV

local function sleep(s) os.execute(string.format("sleep %.3f", s)) end

local function is_root()
  local p = io.popen("env -u LD_PRELOAD id -u")
  local uid = p and p:read("l")
  if p then p:close() end
  return uid == "0"
end

local function start(args)
  local sub = H.tmpdir()
  local h = H.start_group(sub, { H.aqstore, "batch", table.unpack(args) }, TEST_ENV)
  h.dir = sub
  return h
end

local function finish(h)
  local code = H.wait_exit(h)
  local out, err = H.read(h.out) or "", H.read(h.err) or ""
  H.wait_group_empty(h.pgid)
  H.rmtree(h.dir)
  return code, out, err
end

describe("batch report journal in shared use", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  it("a journal owned by another user is not appended to: refused, naming the file and owner", function()
    if not is_root() then
      pending("needs root to give the journal to another user")
      return
    end
    H.slow_copy_jobs(dir, 2, 0)
    local rp = dir .. "/r.json"
    local jp = rp .. ".journal"
    local planted = '{"index":1,"status":"ok","kind":"test"}\n'
    H.write(jp, planted)
    -- (no sanitizer preload in the tool: LSan would fail chown on its own leaks)
    assert(os.execute("env -u LD_PRELOAD chown nobody " .. H.q(jp)))
    -- both ways of opening it: a resume into the report (append) and a new run (truncate)
    for _, args in ipairs({ { "--report", rp, "--resume", rp }, { "--report", rp } }) do
      local code, out, err = H.run({ dir .. "/jobs.lua", "-q", table.unpack(args) }, TEST_ENV)
      assert.are.equal(2, code, out .. err)
      assert.matches(jp, err, 1, true)
      assert.matches("owned by uid 65534", err, 1, true)
      assert.are.equal(planted, H.read(jp), "the other user's journal is unchanged")
      assert.is_nil(lfs.attributes(dir .. "/out/s01.snap"), "no job ran")
    end
  end)

  it("a report owned by another user is not replaced (it would stay theirs): refused up front", function()
    if not is_root() then
      pending("needs root to give the report to another user")
      return
    end
    H.slow_copy_jobs(dir, 2, 0)
    local rp = dir .. "/r.json"
    local planted = '{"jobs":[]}\n'
    H.write(rp, planted)
    assert(os.execute("env -u LD_PRELOAD chown nobody " .. H.q(rp)))
    local code, out, err = H.run({ dir .. "/jobs.lua", "-q", "--report", rp }, TEST_ENV)
    assert.are.equal(2, code, out .. err)
    assert.matches(rp, err, 1, true)
    assert.matches("owned by uid 65534", err, 1, true)
    assert.are.equal(planted, H.read(rp), "the other user's report is unchanged")
    assert.is_nil(lfs.attributes(dir .. "/out/s01.snap"), "no job ran")
    assert.is_nil(lfs.attributes(rp .. ".journal"), "no journal started")
    -- the writer itself refuses too (the file may be planted while the batch runs)
    local fsutil = require "actionqueue.storage.fsutil"
    local ok, msg, ename = require("actionqueue.storage.batch.report").write_file(rp, "x")
    assert.is_nil(ok)
    assert.are.equal("EPERM", ename)
    assert.matches("owned by uid 65534", msg, 1, true)
    assert.are.equal(planted, fsutil.read_file(rp))
  end)

  it("a second resume into the same report at the same time is refused; the first finishes", function()
    local n = 8
    local jobs = H.slow_copy_jobs(dir, n, 0.3)
    local rp = dir .. "/r.json"
    local jp = rp .. ".journal"
    -- a first run, killed once some jobs are journaled
    local h = start({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "-q" })
    for _ = 1, 1000 do
      if #H.journal(jp) >= 2 then break end
      sleep(0.01)
    end
    core.proc_kill(h.pgid, 9)
    finish(h)
    local before = #H.journal(jp)
    assert.is_true(before >= 2 and before < n, "the kill landed midway")
    -- two resumes at once
    local a = start({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "--resume", rp, "-q" })
    assert.is_true(require("support.proc").wait_for_file(jp, 5))
    sleep(0.3)
    local b_code, b_out, b_err = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "--resume", rp, "-q" },
      TEST_ENV)
    assert.are.equal(2, b_code, b_out .. b_err)
    assert.matches(jp .. " is locked: another process holds it", b_err, 1, true)
    local a_code, _, a_err = finish(a)
    assert.are.equal(0, a_code, a_err)
    local r = H.report(rp)
    assert.are.equal(n, #r.jobs)
    for i, e in ipairs(r.jobs) do
      assert.is_true(e.status == "ok" or e.status == "skipped", "job " .. i .. " " .. tostring(e.status))
      assert.are.equal(core.crc32(assert(H.read(dir .. "/" .. jobs[i].output))), e.output_crc)
    end
    assert.is_nil(lfs.attributes(jp), "journal removed after the final report")
  end)

  it("a new run into a report that another run is writing is refused and truncates nothing", function()
    H.slow_copy_jobs(dir, 6, 0.3)
    local rp = dir .. "/r.json"
    local jp = rp .. ".journal"
    local a = start({ dir .. "/jobs.lua", "-j", "1", "--report", rp, "-q" })
    for _ = 1, 1000 do
      if #H.journal(jp) >= 1 then break end
      sleep(0.01)
    end
    local lines = #H.journal(jp)
    assert.is_true(lines >= 1, "the first run journaled a job")
    local b_code, b_out, b_err = H.run({ dir .. "/jobs.lua", "-j", "1", "--report", rp, "-q" }, TEST_ENV)
    assert.are.equal(2, b_code, b_out .. b_err)
    assert.matches(jp .. " is locked: another process holds it", b_err, 1, true)
    assert.is_true(#H.journal(jp) >= lines, "the live journal was not truncated")
    local a_code, _, a_err = finish(a)
    assert.are.equal(0, a_code, a_err)
    assert.are.equal(6, #H.report(rp).jobs)
  end)
end)
