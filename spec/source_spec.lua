-- Snapshot sources (issue 14 item 2): one reader for Lua and JSON, JSON exact through the
-- schema-driven decoder, `-` = standard input; used by build, validate, the batch build kind.
local cjson = require "cjson"
local core = require "actionqueue.storage.core"
local source = require "actionqueue.storage.source"
local snapshot = require "actionqueue.storage.snapshot"
local fixtures = require "support.fixtures"
local files = require "support.files"
local run = require "support.aqstore_run"

local EX = files.abs(fixtures.repo .. "/examples/")
local q = files.q

-- Every golden snapshot the engine loads, with the bytes its round trip must give.
-- A canonical file the engine itself cannot load (compat_11: JSON "version" 7 framed as
-- version 7) is refused by our writer (docs/safety.md); `refused` marks those.
local function loadable_goldens()
  local list, ok = {}, {}
  local manifest = fixtures.manifest("snapshot")
  for _, e in ipairs(manifest) do
    if e.exit_code == 0 and e.expect:match("^OK") then ok[e.file] = true end
  end
  for _, e in ipairs(manifest) do
    if ok[e.file] then
      local expected = e.canonical or e.file
      list[#list + 1] = { file = e.file, expected = expected, refused = not ok[expected] }
    end
  end
  return list
end

local function dump_of(file)
  local r = run.cli { "dump", files.abs(fixtures.path("snapshot", file)) }
  assert.equal(0, r.code, r.err)
  return r.out
end

describe("source reader", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  it("reads u64 values above 2^63-1 exactly from JSON (the decoder, not cjson)", function()
    local path = dir .. "/big.json"
    files.write(path, dump_of("valid_09_big_numbers.snap"))
    local snap = assert(source.snapshot(path))
    assert.equal(-1, snap.timestamp) -- 18446744073709551615 as the same bit pattern
    local r = run.cli { "build", path, dir .. "/out.snap" }
    assert.equal(0, r.code, r.err)
    assert.equal(fixtures.read(fixtures.path("snapshot", "valid_09_big_numbers.snap")), files.read(dir .. "/out.snap"))
  end)

  it("`aqstore dump F | aqstore build - OUT` reproduces every loadable golden snapshot byte for byte", function()
    local goldens = loadable_goldens()
    assert.is_true(#goldens >= 30)
    for _, g in ipairs(goldens) do
      local out = dir .. "/" .. g.file .. ".out"
      local cmd = string.format("lua5.4 %s dump %s | lua5.4 %s build - %s >/dev/null 2>%s", q(run.aqstore),
        q(files.abs(fixtures.path("snapshot", g.file))), q(run.aqstore), q(out), q(dir .. "/err"))
      local ok = os.execute(cmd)
      if g.refused then
        assert.is_nil(ok, g.file)
        assert.matches("refusing to write snapshot version", files.read(dir .. "/err"))
        assert.is_nil(io.open(out))
      else
        assert.is_true(ok, g.file .. ": " .. tostring(files.read(dir .. "/err")))
        assert.is_true(fixtures.read(fixtures.path("snapshot", g.expected)) == files.read(out),
          g.file .. " did not round-trip to " .. g.expected)
      end
    end
  end)

  it("`aqstore validate FILE.json` reads what dump wrote", function()
    for _, f in ipairs { "valid_01_tasks.snap", "valid_09_big_numbers.snap", "valid_02_runs_all_states.snap" } do
      local path = dir .. "/" .. f .. ".json"
      files.write(path, dump_of(f))
      local r = run.cli { "validate", path }
      assert.equal(0, r.code, f .. ": " .. r.out .. r.err)
      assert.matches("^VALID ", r.out)
    end
  end)

  it("reads standard input with `-` (validate too), guessing the format from the first byte", function()
    local r = run.cli({ "validate", "-" }, { stdin = dump_of("valid_01_tasks.snap") })
    assert.equal(0, r.code, r.out .. r.err)
    r = run.cli({ "validate", "-" }, { stdin = assert(files.read(EX .. "queue.lua")) })
    assert.equal(0, r.code, r.out .. r.err)
    r = run.cli({ "build", "-", dir .. "/q.snap" }, { stdin = assert(files.read(EX .. "queue.lua")) })
    assert.equal(0, r.code, r.err)
    assert.equal("lua", source.format("-", "-- comment\nreturn {}"))
    assert.equal("json", source.format("-", "  \n{}"))
    assert.equal("json", source.format("x.json", "return {}"))
  end)

  it("names the file once and the document path once", function()
    -- before: `big.json: timestamp: timestamp: expected u64, got -1` (and three times in validate)
    local path = dir .. "/bad.lua"
    files.write(path, "return { tasks = { { constraints = { max_attempts = -1 } } } }")
    local r = run.cli { "build", path, dir .. "/x.snap" }
    assert.equal(1, r.code)
    assert.equal("aqstore: " .. path .. ": tasks[1].task_spec.constraints.max_attempts: expected u32, got -1\n", r.err)
    r = run.cli { "validate", path }
    assert.equal(1, r.code)
    assert.equal("INVALID " .. path .. ": unreadable\n"
      .. "  tasks[1].task_spec.constraints.max_attempts: expected u32, got -1 [BuildError]\n", r.out)
    local _, err = source.snapshot(path)
    assert.equal("BuildError", err.kind)
    assert.equal(path, err.file)
    assert.equal("tasks[1].task_spec.constraints.max_attempts", err.path)
    assert.equal(path .. ": tasks[1].task_spec.constraints.max_attempts: expected u32, got -1", err.message)
  end)

  it("gives JSON decode errors with line and column", function()
    local path = dir .. "/bad.json"
    files.write(path, '{"version": 4, "timestamp": -1}')
    local snap, err = source.snapshot(path)
    assert.is_nil(snap)
    assert.equal("DecodeError", err.kind)
    assert.equal(1, err.line)
    local quoted = path:gsub("%p", "%%%0")
    assert.matches("^" .. quoted .. ": invalid value: integer `%-1`, expected u64 at line 1 column %d+$", err.message)
    local r = run.cli { "build", path, dir .. "/x.snap" }
    assert.equal(1, r.code)
    assert.matches("^aqstore: [^\n]*bad.json: invalid value", r.err)
  end)

  it("reports validation rules of a JSON source with their path", function()
    local snap = assert(snapshot.decode(assert(core.frame_decode(
      fixtures.read(fixtures.path("snapshot", "valid_01_tasks.snap")))).payload))
    snap.metadata.task_count = 99
    local path = dir .. "/count.json"
    files.write(path, assert(snapshot.encode(snap)))
    local _, err = source.snapshot(path)
    assert.equal("BuildError", err.kind)
    assert.equal("metadata.task_count", err.path)
    assert.equal("TaskCountMismatch", err.rule)
    assert.truthy(source.snapshot(path, { validate = false }))
  end)

  it("refuses a Lua source that does not return a table, or cannot be read", function()
    local path = dir .. "/n.lua"
    files.write(path, "return 42")
    local _, err = source.read(path)
    assert.equal(path .. ": must return a table, got number", err.message)
    _, err = source.read(dir .. "/missing.lua")
    assert.equal("IoError", err.kind)
    assert.equal(dir .. "/missing.lua: open: No such file or directory", err.message)
  end)

  it("runs Lua sources in the sandbox", function()
    local path = dir .. "/evil.lua"
    files.write(path, "string.format = nil; return { tasks = { { payload = os.execute and 'x' or 'safe' } } }")
    local snap = assert(source.snapshot(path))
    assert.equal("safe", snap.tasks[1].task_spec.payload.bytes)
    assert.is_function(string.format)
  end)

  it("is the reader of the batch build kind (Lua and JSON examples)", function()
    -- before: examples/queue.lua failed with `os` nil, examples/queue.json with
    -- `expected u64, got userdata` (cjson's null)
    local jf = dir .. "/jobs.lua"
    files.write(jf, string.format([[return { jobs = {
      { kind = "build", input = %q, output = "a.snap" },
      { kind = "build", input = %q, output = "b.snap" },
    } }]], EX .. "queue.lua", EX .. "queue.json"))
    local r = run.cli { "batch", jf, "-j", "1", "-q", "--report", dir .. "/r.json" }
    local report = cjson.decode((assert(files.read(dir .. "/r.json"))))
    for _, job in ipairs(report.jobs) do
      assert.equal("ok", job.status, tostring(job.error))
    end
    assert.equal(0, r.code, r.err)
    assert.equal(0, run.cli({ "diff", dir .. "/a.snap", dir .. "/b.snap" }).code)
  end)
end)
