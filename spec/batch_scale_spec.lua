-- Batch at scale (issue 14 items 3 and 6): -j bounded, throughput of work done only,
-- failures grouped, --shard auto from Slurm / Kubernetes, the GNU parallel scale-out recipe
-- run for real, --out-dir creating what it mirrors, output errors naming the output.
local core = require "actionqueue.storage.core"
local lfs = require "lfs"
local H = require "support.batch"
local batch = require "actionqueue.storage.batch"
local shard = require "actionqueue.storage.batch.shard"
local progress = require "actionqueue.storage.batch.progress"

local CPUS = core.proc_info().cpus

describe("batch at scale", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  local function verify_jobs(n)
    local jobs = {}
    for i = 1, n do jobs[i] = { kind = "verify", input = H.fixture("valid_01_tasks.snap") } end
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    return dir .. "/jobs.lua"
  end

  describe("-j", function()
    -- each worker is first given 2 jobs: 2 jobs per wanted worker let them all start
    it("above 4x the cores is capped with a warning, and the report records the workers really run", function()
      local n = 2 * 4 * CPUS + 6
      local code, _, err = H.run({ verify_jobs(n), "-j", "100000", "--report", dir .. "/r.json", "-q" })
      assert.are.equal(0, code, err)
      assert.matches("warning: -j 100000 is more than 4 x the " .. CPUS .. " cores: capped at "
        .. 4 * CPUS .. " workers (--force runs 100000)", err, 1, true)
      assert.are.equal(4 * CPUS, H.report(dir .. "/r.json").workers)
    end)

    it("records no more workers than there were jobs to run", function()
      local code, _, err = H.run({ verify_jobs(2), "-j", "3", "--report", dir .. "/r.json", "-q" })
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      local w = H.report(dir .. "/r.json").workers
      assert.is_true(w >= 1 and w <= 2, tostring(w))
    end)

    it("--force runs more", function()
      local n = 4 * CPUS + 1
      local code, _, err = H.run({ verify_jobs(2 * n + 2), "-j", tostring(n), "--force", "--report", dir .. "/r.json",
        "-q" })
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      assert.are.equal(n, H.report(dir .. "/r.json").workers)
      assert.are.equal(4 * CPUS, (batch.worker_count(100000)))
      assert.are.same({ 100000 }, { batch.worker_count(100000, true) })
      assert.are.same({ CPUS }, { batch.worker_count(nil) })
    end)
  end)

  it("MB/s counts only the jobs that ran, not the skipped ones", function()
    local lines = {}
    local stream = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end, flush = function() end }
    local p = progress.new(2, { stream = stream, tty = false })
    p.update({ status = "skipped", bytes = 10 ^ 12 })
    p.update({ status = "ok", bytes = 0 })
    p.finish()
    assert.matches("%[2/2%] failed 0  0%.0 MB/s", lines[#lines])
  end)

  it("groups identical failures with their count", function()
    local jobs = {}
    for i = 1, 5 do jobs[i] = { kind = "verify", input = "missing" .. i .. ".snap" } end
    jobs[6] = { kind = "verify", input = H.fixture("valid_01_tasks.snap") }
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
    local code, out = H.run({ dir .. "/jobs.lua" })
    assert.are.equal(1, code)
    local failed = {}
    for line in out:gmatch("[^\n]+") do
      if line:match("^FAILED") then failed[#failed + 1] = line end
    end
    assert.are.same({ "FAILED verify 5 jobs (missing1.snap, missing2.snap, missing3.snap, and 2 more): "
      .. "no snapshot (file not found)" }, failed)
  end)

  describe("--shard auto", function()
    local function env(t) return function(k) return t[k] end end

    it("takes I/N from a Slurm job array (any first index)", function()
      assert.are.same({ 5, 16 }, { shard.parse("auto", env({ SLURM_ARRAY_TASK_ID = "5", SLURM_ARRAY_TASK_MIN = "1",
        SLURM_ARRAY_TASK_COUNT = "16" })) })
      assert.are.same({ 1, 4 }, { shard.parse("auto", env({ SLURM_ARRAY_TASK_ID = "0", SLURM_ARRAY_TASK_MIN = "0",
        SLURM_ARRAY_TASK_COUNT = "4" })) })
      assert.is_nil((shard.parse("auto", env({ SLURM_ARRAY_TASK_ID = "9", SLURM_ARRAY_TASK_MIN = "0",
        SLURM_ARRAY_TASK_COUNT = "4" }))))
    end)

    it("takes I from a Kubernetes Indexed Job (0-based) and N from auto/N or AQSTORE_SHARD_COUNT", function()
      assert.are.same({ 3, 3 }, { shard.parse("auto/3", env({ JOB_COMPLETION_INDEX = "2" })) })
      assert.are.same({ 1, 5 }, { shard.parse("auto", env({ JOB_COMPLETION_INDEX = "0", AQSTORE_SHARD_COUNT = "5" })) })
      local none, err = shard.parse("auto", env({ JOB_COMPLETION_INDEX = "0" }))
      assert.is_nil(none)
      assert.matches("auto/N", err, 1, true)
      none, err = shard.parse("auto", env({}))
      assert.is_nil(none)
      assert.matches("neither SLURM_ARRAY_TASK_ID", err, 1, true)
    end)

    it("runs the shard from the environment and records it as I/N", function()
      local code, _, err = H.run({ verify_jobs(7), "--shard", "auto", "--report", dir .. "/r.json", "-q" },
        { SLURM_ARRAY_TASK_ID = "2", SLURM_ARRAY_TASK_MIN = "1", SLURM_ARRAY_TASK_COUNT = "3" })
      assert.are.equal(0, code, err)
      local r = H.report(dir .. "/r.json")
      assert.are.equal("2/3", r.shard)
      local idx = {}
      for _, e in ipairs(r.jobs) do idx[#idx + 1] = e.index end
      assert.are.same({ 2, 5 }, idx)
      code, _, err = H.run({ verify_jobs(7), "--shard", "auto", "-q" })
      assert.are.equal(2, code)
      assert.matches("--shard auto: neither", err, 1, true)
    end)
  end)

  -- The job list of the scale-out recipe: good, failing and output-writing jobs.
  local function recipe_jobs()
    assert(lfs.mkdir(dir .. "/out"))
    local jobs = {}
    for i = 1, 11 do
      if i % 4 == 0 then
        jobs[i] = { kind = "verify", input = "missing" .. i .. ".snap" }
      elseif i % 3 == 0 then
        jobs[i] = { kind = "rewrite", input = H.fixture("valid_01_tasks.snap"), output = "out/r" .. i .. ".snap" }
      else
        jobs[i] = { kind = "check", input = H.fixture("valid_12_medium_1000.snap") }
      end
    end
    H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
  end

  -- A report without its timings (seconds) and run metadata: what two runs must share.
  local function content(path)
    local r = H.report(path)
    for _, e in ipairs(r.jobs) do e.seconds = nil end
    return { jobs = r.jobs, summary = r.summary }
  end

  it("the documented GNU parallel recipe (3 shards, then merge) equals a single-machine run", function()
    assert(os.execute("command -v parallel >/dev/null 2>&1"),
      "GNU parallel is missing: the scale-out recipe needs it (Debian package parallel, make deps)")
    -- the recipe exactly as docs/batch.md shows it
    local doc = assert(H.read(require("support.fixtures").repo .. "/docs/batch.md"))
    local recipe = {}
    for line in doc:gmatch("[^\n]+") do
      if line:match("^parallel ") or (#recipe > 0 and #recipe < 2 and line:match("^aqstore batch merge")) then
        recipe[#recipe + 1] = line
      end
    end
    assert.are.equal(2, #recipe, "the recipe in docs/batch.md")
    assert.matches(":::%s+1 2 3$", recipe[1])
    recipe_jobs()
    -- `aqstore` on PATH, as installed
    assert(lfs.mkdir(dir .. "/bin"))
    H.write(dir .. "/bin/aqstore", "#!/bin/sh\nexec lua5.4 " .. H.q(H.aqstore) .. ' "$@"\n')
    assert(os.execute("chmod +x " .. H.q(dir .. "/bin/aqstore")))
    local function sh(cmd)
      local _, _, code = os.execute(string.format("cd %s && PATH=%s:$PATH %s >/dev/null 2>%s", H.q(dir),
        H.q(dir .. "/bin"), cmd, H.q(dir .. "/stderr")))
      return code
    end
    local single = sh("aqstore batch jobs.lua --report single.json -q")
    assert.are.equal(1, single, H.read(dir .. "/stderr"))
    -- three shards as separate processes, then the merge
    sh(recipe[1])
    for i = 1, 3 do
      local r = H.report(dir .. "/r" .. i .. ".json")
      assert.are.equal(i .. "/3", r.shard)
    end
    assert.are.equal(single, sh(recipe[2]), H.read(dir .. "/stderr"))
    assert.are.same(content(dir .. "/single.json"), content(dir .. "/report.json"))
  end)

  it("--scan --out-dir creates the directories it mirrors", function()
    for _, d in ipairs({ "/in", "/in/a", "/in/a/b", "/in/data", "/in/data/snapshots", "/in/data/wal" }) do
      assert(lfs.mkdir(dir .. d))
    end
    H.copy(H.fixture("valid_01_tasks.snap"), dir .. "/in/a/b/x.snap")
    H.copy(H.fixture("valid_01_tasks.snap"), dir .. "/in/a/y.snap")
    H.copy(H.fixture("valid_01_tasks.snap"), dir .. "/in/data/snapshots/snapshot.bin")
    local out = dir .. "/out/deeper"
    local code, _, err = H.run({ "--scan", dir .. "/in", "--kind", "rewrite", "--out-dir", out,
      "--report", dir .. "/r.json", "-q" })
    assert.are.equal(0, code, err)
    for _, f in ipairs({ "/a/b/x.snap", "/a/y.snap", "/data/snapshots/snapshot.bin" }) do
      assert.are.equal(H.read(dir .. "/in" .. f), H.read(out .. f), f)
    end
    assert.are.same({ ok = 3, failed = 0, skipped = 0 }, H.report(dir .. "/r.json").summary)
  end)

  it("a failed output names the output path, not the input", function()
    H.jobfile(dir .. "/jobs.lua", { jobs = {
      { kind = "rewrite", input = H.fixture("valid_01_tasks.snap"), output = "nodir/x.snap" },
    } })
    local code = H.run({ dir .. "/jobs.lua", "--report", dir .. "/r.json", "-q" })
    assert.are.equal(1, code)
    local e = H.report(dir .. "/r.json").jobs[1]
    assert.are.equal("failed", e.status)
    assert.matches("nodir/x.snap", e.error, 1, true)
  end)
end)
