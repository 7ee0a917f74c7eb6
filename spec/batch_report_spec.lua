-- Report encoding (the acceptance contract), merging, and the progress display.
local cjson = require "cjson"
local report = require "actionqueue.storage.batch.report"
local progress = require "actionqueue.storage.batch.progress"

describe("batch report", function()
  it("encodes entries with error null, summary counts and an empty job list as []", function()
    local t = cjson.decode(report.encode({}))
    assert.are.equal(0, #t.jobs)
    assert.matches('"jobs": %[', report.encode({}))
    local ok = report.entry({ index = 1, input = "a", kind = "check" }, { status = "ok", seconds = 0.5, bytes = 10 })
    local bad = report.entry({ index = 2, input = "b", kind = "rewrite", output = "o" },
      { status = "failed", error = "Decode error: x", error_kind = "DecodeError", bytes = 3 })
    t = cjson.decode(report.encode({ ok, bad }, { shard = "1/2" }))
    assert.are.same({ ok = 1, failed = 1, skipped = 0 }, t.summary)
    assert.are.equal("1/2", t.shard)
    assert.are.equal(cjson.null, t.jobs[1].error)
    assert.are.equal(cjson.null, t.jobs[1].error_kind)
    assert.are.same({ "a", "check", "ok", 0.5, 10 },
      { t.jobs[1].input, t.jobs[1].kind, t.jobs[1].status, t.jobs[1].seconds, t.jobs[1].bytes })
    assert.are.same({ "failed", "Decode error: x", "DecodeError", "o", 0 },
      { t.jobs[2].status, t.jobs[2].error, t.jobs[2].error_kind, t.jobs[2].output, t.jobs[2].seconds })
  end)

  it("an ok entry drops a stale error", function()
    local e = report.entry({ index = 1, input = "a", kind = "verify" }, { status = "ok", error = "x" })
    assert.is_nil(e.error)
  end)

  it("an entry built from a worker's encoded tail encodes exactly as one encoded in the runner", function()
    local job = { index = 7, input = "in/a.snap", kind = "rewrite", output = "out/a.snap" }
    local result = { status = "ok", seconds = 0.25, bytes = 10, output_crc = 4294967295, tasks = 3, runs = 0 }
    local plain = report.entry(job, result)
    local tail = report.encode_tail(report.entry({}, result)) -- what the worker sends
    assert.is_nil(tail:find("index", 1, true))
    local viatail = report.entry(job, cjson.decode("{" .. tail .. "}"))
    report.set_tail(viatail, tail)
    assert.are.equal(report.encode_entry(plain), report.encode_entry(viatail))
    assert.are.same(cjson.decode(report.encode_entry(plain)), cjson.decode(report.encode_entry(viatail)))
  end)

  it("an ok entry kept encoded (lazy) reads, iterates and encodes like a decoded one", function()
    local job = { index = 2, input = "a.snap", kind = "check" }
    local result = { status = "ok", seconds = 0.5, bytes = 8095, input_crc = 3837591663, tasks = 12, runs = 0 }
    local tail = report.encode_tail(report.entry({}, result))
    local plain = report.entry(job, result)
    local lazy = report.entry(job, { status = "ok", seconds = 0.5, bytes = 8095 })
    report.set_tail(lazy, tail, true)
    assert.are.equal(report.encode_entry(plain), report.encode_entry(lazy))
    assert.is_nil(rawget(lazy, "tasks")) -- still encoded
    assert.are.equal(12, lazy.tasks)
    assert.are.equal("integer", math.type(lazy.input_crc))
    local keys = {}
    for k, v in pairs(lazy) do keys[k] = v end
    assert.are.same(plain, keys)
    assert.are.equal(report.encode_entry(plain), report.encode_entry(lazy))
  end)

  it("the journal is group-committed: appended lines reach the file at commit, all in one go", function()
    local name = os.tmpname()
    os.remove(name) -- no final report: report.load reads the journal
    local j = assert(report.journal(name))
    local function lines()
      local f = io.open(name .. ".journal", "rb")
      local n = 0
      for _ in f:read("a"):gmatch("[^\n]+") do n = n + 1 end
      f:close()
      return n
    end
    for i = 1, 3 do
      assert.is_true(j.append(report.entry({ index = i, input = "x" .. i, kind = "verify" }, { status = "ok" })))
    end
    assert.are.equal(3, j.pending())
    assert.are.equal(0, lines()) -- a kill now loses (only) this uncommitted group
    assert.is_true(j.commit())
    assert.are.equal(0, j.pending())
    assert.are.equal(3, lines())
    local entries = assert(report.load(name))
    assert.are.same({ "x1", "x2", "x3" }, { entries[1].input, entries[2].input, entries[3].input })
    assert.is_true(j.commit()) -- nothing pending: no-op
    j.close(true)
    assert.is_nil(io.open(name .. ".journal", "rb"))
  end)

  it("merge keeps a success over a later failure of the same job and orders by index", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(require("lfs").mkdir(dir))
    local function write(name, entries)
      local f = assert(io.open(dir .. "/" .. name, "wb"))
      f:write(report.encode(entries))
      f:close()
      return dir .. "/" .. name
    end
    local a = write("a.json", {
      report.entry({ index = 3, input = "c", kind = "verify" }, { status = "ok" }),
      report.entry({ index = 1, input = "a", kind = "verify" }, { status = "failed", error = "x" }),
    })
    local b = write("b.json", {
      report.entry({ index = 3, input = "c", kind = "verify" }, { status = "failed", error = "y" }),
      report.entry({ index = 1, input = "a", kind = "verify" }, { status = "ok" }),
      report.entry({ index = 2, input = "b", kind = "verify" }, { status = "ok" }),
    })
    local merged = assert(report.merge({ a, b }))
    assert.are.same({ 1, 2, 3 }, { merged[1].index, merged[2].index, merged[3].index })
    assert.are.same({ "ok", "ok", "ok" }, { merged[1].status, merged[2].status, merged[3].status })
    assert.is_nil((report.merge({ dir .. "/missing.json" })))
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("batch progress", function()
  local function sink()
    local s = { text = "" }
    function s.write(self, ...)
      for _, x in ipairs({ ... }) do self.text = self.text .. x end
      return self
    end
    function s.flush() end
    return s
  end

  it("redraws one line on a TTY with done/total, failures, MB/s and ETA", function()
    local s = sink()
    local p = progress.new(3, { stream = s, tty = true })
    p.update({ status = "ok", bytes = 100 })
    p.update({ status = "failed", bytes = 100 })
    p.update({ status = "ok", bytes = 100 })
    p.finish()
    assert.matches("\r\27%[K%[3/3%] failed 1  [%d.]+ MB/s  ETA 0s\n$", s.text)
  end)

  it("prints plain lines at every 10% when not a TTY", function()
    local s = sink()
    local p = progress.new(100, { stream = s, tty = false })
    for _ = 1, 100 do p.update({ status = "ok", bytes = 1 }) end
    p.finish()
    local n = select(2, s.text:gsub("\n", ""))
    assert.are.equal(10, n) -- 10%..90% and the final line
    assert.is_nil(s.text:find("\27", 1, true))
  end)

  it("is silent when quiet", function()
    local s = sink()
    local p = progress.new(2, { stream = s, quiet = true })
    p.update({ status = "ok" })
    p.finish()
    assert.are.equal("", s.text)
  end)
end)
