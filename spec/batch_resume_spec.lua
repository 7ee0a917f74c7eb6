-- A batch killed with SIGKILL midway leaves a usable journal and no partial output; re-run
-- with --resume it finishes every job exactly once.
local core = require "actionqueue.storage.core"
local lfs = require "lfs"
local H = require "support.batch"
local report = require "actionqueue.storage.batch.report"

local function sleep(s) os.execute(string.format("sleep %.2f", s)) end

-- Starts `aqstore batch ARGS` in the background; returns its pid.
local function start(args, env)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. H.q(v) end
  parts[#parts + 1] = H.q(H.aqstore) .. " batch"
  for _, a in ipairs(args) do parts[#parts + 1] = H.q(a) end
  local p = assert(io.popen("(" .. table.concat(parts, " ") .. " >/dev/null 2>&1 & echo $!)", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

local function tmp_files(dir)
  local n = 0
  for name in lfs.dir(dir) do
    if name:match("%.tmp$") then n = n + 1 end
  end
  return n
end

local function scenarios()
  local list = { { name = "slow copy jobs (test kind)", kind = "test", n = 12, env = H.TEST_KIND_ENV } }
  if H.have_snapshot() then
    -- a rewrite transcodes a 1 MB snapshot in a few ms (issue 15.4): enough jobs that the
    -- kill still lands midway
    list[#list + 1] = { name = "rewrite jobs on a 1 MB snapshot", kind = "rewrite", n = 64, env = {} }
  end
  return list
end

describe("batch kill and resume", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  for _, sc in ipairs(scenarios()) do
    it(sc.name .. ": SIGKILL midway, --resume completes each job exactly once", function()
      local big = H.fixture("valid_12_medium_1000.snap")
      assert(lfs.mkdir(dir .. "/in"))
      assert(lfs.mkdir(dir .. "/out"))
      local jobs = {}
      for i = 1, sc.n do
        local name = string.format("s%02d.snap", i)
        H.copy(big, dir .. "/in/" .. name)
        local job = { kind = sc.kind, input = "in/" .. name, output = "out/" .. name }
        if sc.kind == "test" then job.action, job.seconds = "copy", 0.3 end
        jobs[i] = job
      end
      H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
      local rp = dir .. "/r.json"

      local pid = start({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "-q" }, sc.env)
      assert.is_number(pid)
      -- wait (bounded) until a few jobs are journaled, then kill the runner
      for _ = 1, 6000 do
        if #H.journal(rp .. ".journal") >= 3 then break end
        sleep(0.005)
      end
      assert(core.proc_kill(pid, 9))
      local done_before = H.journal(rp .. ".journal")
      assert.is_true(#done_before >= 3, "journaled jobs before the kill")
      assert.is_true(#done_before < sc.n, "the kill landed midway")
      assert.is_nil(H.read(rp), "no final report after a kill")
      -- the journal alone is a usable report
      local entries = assert(report.load(rp))
      assert.are.equal(#done_before, #entries)
      -- orphaned workers finish their current job and exit; wait for their temp files to go
      for _ = 1, 200 do
        if tmp_files(dir .. "/out") == 0 then break end
        sleep(0.05)
      end
      -- no partial output: every output present is a complete, CRC-valid frame
      local inode = {}
      for i = 1, sc.n do
        local path = dir .. "/" .. jobs[i].output
        local r = core.frame_read(path, { version = 4 })
        assert.is_true(r.status == "ok" or r.status == "missing", path .. ": " .. r.status)
        inode[i] = lfs.attributes(path, "ino")
      end

      local code, _, err = H.run({ dir .. "/jobs.lua", "-j", "2", "--report", rp, "--resume", rp, "-q" }, sc.env)
      assert.are.equal(0, code, err)
      local r = H.report(rp)
      assert.are.equal(sc.n, #r.jobs)
      local ok_before = {}
      for _, e in ipairs(done_before) do
        if e.status == "ok" then ok_before[e.index] = true end
      end
      local skipped = 0
      for i, e in ipairs(r.jobs) do
        assert.are.equal(i, e.index)
        if ok_before[i] then
          -- done in the first run: skipped, output untouched (same inode)
          assert.are.equal("skipped", e.status)
          assert.are.equal(inode[i], lfs.attributes(dir .. "/" .. jobs[i].output, "ino"))
          skipped = skipped + 1
        else
          assert.are.equal("ok", e.status, tostring(e.error))
        end
        local out = assert(H.read(dir .. "/" .. jobs[i].output))
        assert.are.equal(core.crc32(out), e.output_crc)
      end
      assert.are.same({ ok = sc.n - skipped, failed = 0, skipped = skipped }, r.summary)
      assert.are.equal(0, tmp_files(dir .. "/out"))
      assert.is_nil(H.read(rp .. ".journal"))

      -- a third run skips everything; a changed input is redone
      H.copy(H.fixture("valid_00_empty.snap"), dir .. "/in/s01.snap")
      code = H.run({ dir .. "/jobs.lua", "--report", rp, "--resume", rp, "-q" }, sc.env)
      assert.are.equal(0, code)
      r = H.report(rp)
      assert.are.equal("ok", r.jobs[1].status)
      for i = 2, sc.n do assert.are.equal("skipped", r.jobs[i].status) end
    end)
  end
end)

describe("batch resume bookkeeping", function()
  local resume = require "actionqueue.storage.batch.resume"
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  local function entry(input, status)
    return report.encode_entry({ index = 1, input = input, kind = "verify", status = status,
      seconds = 0, bytes = 1, input_size = 1, input_mtime = 1, input_crc = 1 })
  end

  it("a missing report means nothing is done yet", function()
    assert.are.same({}, assert(resume.load(dir .. "/none.json")))
  end)

  it("an unreadable report is an error", function()
    H.write(dir .. "/r.json", "not json")
    assert.is_nil((resume.load(dir .. "/r.json")))
  end)

  it("reads a journal with a torn last line", function()
    H.write(dir .. "/r.json.journal", entry("a", "ok") .. "\n" .. entry("b", "failed") .. "\n" .. '{"index":3,"inp')
    local entries, source = assert(report.load(dir .. "/r.json"))
    assert.are.equal(dir .. "/r.json.journal", source)
    assert.are.equal(2, #entries)
    local done = assert(resume.load(dir .. "/r.json"))
    assert.is_table(done[report.key({ kind = "verify", input = "a" })])
    assert.is_nil(done[report.key({ kind = "verify", input = "b" })])
  end)

  it("adds the journal of a later killed run to the final report", function()
    H.write(dir .. "/r.json", report.encode({ report.entry({ index = 1, input = "a", kind = "verify" },
      { status = "ok", input_size = 1, input_mtime = 1, input_crc = 1 }) }))
    H.write(dir .. "/r.json.journal", entry("b", "ok") .. "\n")
    local done = assert(resume.load(dir .. "/r.json"))
    assert.is_table(done[report.key({ kind = "verify", input = "a" })])
    assert.is_table(done[report.key({ kind = "verify", input = "b" })])
  end)
end)
