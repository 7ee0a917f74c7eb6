-- Ctrl-C (SIGINT) and SIGTERM on a batch (issue 14 item 4): real signals to a real process
-- group, as a terminal sends them. The batch ends cleanly: workers stopped, journal committed,
-- no temp file, one line saying what was finished and how to resume, exit 130 / 143, no
-- traceback anywhere; `batch.run` in a script returns nil, err with err.kind "Interrupted".
local core = require "actionqueue.storage.core"
local H = require "support.batch"

local function sleep(s) os.execute(string.format("sleep %.3f", s)) end

local start_group, wait_exit, group_members = H.start_group, H.wait_exit, H.group_members

local temp_files = H.temp_files

describe("batch interrupted by a signal", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  local n = 12
  -- slow copies through the atomic writer: a signal lands in the middle of writes
  local function make_jobs() return H.slow_copy_jobs(dir, n, 0.4) end

  local function wait_journaled(path, k)
    for _ = 1, 1000 do
      if #H.journal(path) >= k then return end
      sleep(0.01)
    end
    error("no job was journaled")
  end

  local signals = { { name = "INT", code = 130, text = "SIGINT" }, { name = "TERM", code = 143, text = "SIGTERM" },
    { name = "HUP", code = 129, text = "SIGHUP" } }
  for _, sig in ipairs(signals) do
    it("SIG" .. sig.name .. " to the process group: clean stop, one line, exit " .. sig.code .. ", resume finishes",
      function()
        local jobs = make_jobs()
        local rp = dir .. "/r.json"
        local h = start_group(dir, { H.aqstore, "batch", dir .. "/jobs.lua", "-j", "2", "--report", rp },
          H.TEST_KIND_ENV)
        wait_journaled(rp .. ".journal", 2)
        sleep(0.1) -- into the middle of the next writes
        assert.is_true(os.execute("/bin/kill -s " .. sig.name .. " -- -" .. h.pgid))
        local code = wait_exit(h)
        local err = H.read(h.err) or ""
        assert.are.equal(sig.code, code, err)
        assert.is_nil(err:find("traceback", 1, true), err)
        assert.is_nil(err:find("interrupted!", 1, true), err)
        -- exactly one line (stderr is not a TTY: no progress drawn in place; the 10% progress
        -- lines come before it)
        local last = err:match("([^\n]*)\n$")
        assert.matches("^aqstore batch: interrupted by " .. sig.text .. ": %d+ of " .. n .. " jobs finished, "
          .. "journaled in .-r%.json%.journal; resume with: aqstore batch .-jobs%.lua %-%-report .-r%.json "
          .. "%-%-resume .-r%.json$", last)
        for line in err:gmatch("[^\n]+") do
          if line ~= last then assert.matches("^batch: %[", line) end
        end
        assert.are.equal("", H.read(h.out))
        -- workers stopped, no temp file, no final report, the journal committed
        assert.are.equal(0, group_members(h.pgid))
        assert.are.same({}, temp_files(dir .. "/out"))
        assert.is_nil(H.read(rp))
        local journaled = H.journal(rp .. ".journal")
        local finished = tonumber(last:match("(%d+) of"))
        assert.are.equal(finished, #journaled)
        assert.is_true(finished >= 2 and finished < n, "stopped midway")
        for _, e in ipairs(journaled) do
          local out = assert(H.read(dir .. "/" .. jobs[e.index].output))
          assert.are.equal(core.crc32(out), e.output_crc)
        end
        -- the printed command resumes it
        local resume_cmd = last:match("resume with: aqstore (.*)$")
        local ok, _, rc = os.execute("LUA_INIT_5_4=" .. H.q(H.TEST_KIND_ENV.LUA_INIT_5_4) .. " lua5.4 "
          .. H.q(H.aqstore) .. " " .. resume_cmd
          .. " -q >/dev/null 2>&1")
        assert.is_true(ok, "resume exit " .. tostring(rc))
        local r = H.report(rp)
        assert.are.same({ ok = n - finished, failed = 0, skipped = finished }, r.summary)
      end)
  end

  it("batch.run in a script returns nil, err with err.kind == 'Interrupted' (no raise, no traceback)", function()
    make_jobs()
    local script = dir .. "/script.lua"
    H.write(script, string.format([[
local batch = require "actionqueue.storage.batch"
local res, err, code = batch.run({ jobfile = %q, workers = 2, report = %q, progress = false })
io.write(tostring(res), "|", type(err) == "table" and err.kind or type(err), "|", tostring(code), "|",
  type(err) == "table" and tostring(err.finished) or "", "|", tostring(err), "\n")
]], dir .. "/jobs.lua", dir .. "/r.json"))
    local h = start_group(dir, { script }, {
      LUA_INIT_5_4 = H.TEST_KIND_ENV.LUA_INIT_5_4, LUA_PATH = package.path, LUA_CPATH = package.cpath })
    wait_journaled(dir .. "/r.json.journal", 1)
    assert.is_true(os.execute("/bin/kill -s INT -- -" .. h.pgid))
    assert.are.equal(0, wait_exit(h), H.read(h.err))
    assert.are.equal("", H.read(h.err))
    local out = H.read(h.out)
    assert.matches("^nil|Interrupted|130|%d+|interrupted by SIGINT: %d+ of 12 jobs finished", out)
    assert.are.same({}, temp_files(dir .. "/out"))
    assert.are.equal(0, group_members(h.pgid))
  end)
end)
