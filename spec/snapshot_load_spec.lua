-- The snapshot loader (snapshot-format.md §1.3/§1.5): outcome of every golden fixture,
-- plus crafted frames for each loader step.
local core = require "actionqueue.storage.core"
local snapshot = require "actionqueue.storage.snapshot"
local fixtures = require "spec.support.fixtures"

local files = require "support.files"

local tmpdir = files.tmpdir()

local function put(name, data)
  local p = tmpdir .. "/" .. name
  files.write(p, data)
  return p
end

local function outcome(path)
  local snap, err = snapshot.load(path)
  if snap == false then return "NONE" end
  if snap then return ("OK tasks=%d runs=%d"):format(#snap.tasks, #snap.runs) end
  return "ERR " .. err.message, err
end

local EMPTY = '{"version":4,"timestamp":0,"metadata":{"schema_version":8,"wal_sequence":0,"task_count":0,'
  .. '"run_count":0},"tasks":[],"runs":[],"engine":{"paused":false,"paused_at":null,"resumed_at":null},'
  .. '"dependency_declarations":[],"budgets":[],"subscriptions":[],"actors":[],"tenants":[],'
  .. '"role_assignments":[],"capability_grants":[],"ledger_entries":[]}'

describe("snapshot.load", function()
  teardown(function() files.rmtree(tmpdir) end)

  it("reaches every fixture's expected outcome", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local n = 0
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      local got = outcome(fixtures.path("snapshot", c.file))
      if got ~= c.expect_older_serde_stack then
        assert.equal(c.expect, got, c.file)
      end
      n = n + 1
    end
    assert.is_true(n > 100)
  end)

  it("missing and empty files are no snapshot", function()
    assert.equal("NONE", outcome(tmpdir .. "/absent.snap"))
    assert.equal("NONE", outcome(put("empty.snap", "")))
  end)

  it("reports each header truncation with its own text", function()
    local h = core.frame_header(4, #EMPTY, core.crc32(EMPTY))
    assert.equal("ERR Decode error: truncated snapshot version frame: read 3 of 4 bytes",
      outcome(put("a", h:sub(1, 3))))
    assert.equal("ERR Decode error: truncated snapshot: EOF after version frame, expected length frame",
      outcome(put("b", h:sub(1, 4))))
    assert.equal("ERR Decode error: truncated snapshot length frame: read 2 of 4 bytes", outcome(put("c", h:sub(1, 6))))
    assert.equal("ERR Decode error: truncated snapshot: EOF after length frame, expected CRC-32 frame",
      outcome(put("d", h:sub(1, 8))))
    assert.equal("ERR Decode error: truncated snapshot CRC-32 frame: read 1 of 4 bytes", outcome(put("e", h:sub(1, 9))))
    assert.equal("ERR I/O error: failed to fill whole buffer", outcome(put("f", h)))
  end)

  it("checks the version before the length, and the cap before reading", function()
    local msg, err = outcome(put("v", "\7\0\0\0"))
    assert.equal("ERR Incompatible snapshot version: expected 4, found 7", msg)
    assert.equal("IncompatibleVersion", err.kind)
    assert.equal(7, err.found)
    assert.equal("ERR Decode error: snapshot payload length 268435457 exceeds maximum 268435456",
      outcome(put("big", core.frame_header(4, 268435457, 0))))
  end)

  it("checks the CRC before decoding, with 0x%08x texts", function()
    local msg, err = outcome(put("crc", core.frame_header(4, #EMPTY, 0xdeadbeef) .. EMPTY))
    assert.equal("ERR Snapshot CRC-32 mismatch: expected 0xdeadbeef, actual 0xd1f972b6", msg)
    assert.equal("CrcMismatch", err.kind)
    assert.equal("ERR Snapshot CRC-32 mismatch: expected 0x00000001, actual 0x00000000",
      outcome(put("crc0", core.frame_header(4, 0, 1))))
  end)

  it("decodes, ignores trailing bytes, then validates", function()
    assert.equal("OK tasks=0 runs=0", outcome(put("ok", core.frame_encode(4, EMPTY) .. "garbage")))
    assert.equal("ERR Decode error: Failed to decode snapshot: EOF while parsing a value at line 1 column 0",
      outcome(put("zero", core.frame_encode(4, ""))))
    local bad = EMPTY:gsub('"task_count":0', '"task_count":1')
    local msg, err = outcome(put("map", core.frame_encode(4, bad)))
    assert.equal("ERR Mapping error: snapshot task_count mismatch: declared 1, actual 0", msg)
    assert.equal("MappingError", err.kind)
  end)

  it("builds the lists at their declared sizes, whatever the declared counts say", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local medium = assert(files.read(fixtures.path("snapshot", "valid_12_medium_1000.snap"))):sub(13)
    local function with_counts(tasks, runs)
      local t = medium:gsub('"task_count":1000', '"task_count":' .. tasks, 1)
      return (t:gsub('"run_count":1000', '"run_count":' .. runs, 1))
    end
    assert.equal("OK tasks=1000 runs=1000", outcome(put("c.snap", core.frame_encode(4, with_counts(1000, 1000)))))
    -- a count far beyond what the payload holds is a size hint bounded by the payload
    -- (not a table of 2^40 slots: that raised), then the rules' mismatch as always
    assert.equal("ERR Mapping error: snapshot task_count mismatch: declared 1099511627776, actual 1000",
      outcome(put("c.snap", core.frame_encode(4, with_counts(1099511627776, 1000)))))
    assert.equal("ERR Mapping error: snapshot run_count mismatch: declared 18446744073709551615, actual 1000",
      outcome(put("c.snap", core.frame_encode(4, with_counts(1000, "18446744073709551615")))))
    -- fewer declared than there are: the lists grow past the hint
    assert.equal("ERR Mapping error: snapshot task_count mismatch: declared 40, actual 1000",
      outcome(put("c.snap", core.frame_encode(4, with_counts(40, 1000)))))
    local snap = assert(snapshot.decode(with_counts(40, 40)))
    assert.equal(1000, #snap.tasks)
  end)

  it("reports a directory as an I/O error", function()
    local msg, err = outcome(tmpdir)
    assert.equal("ERR I/O error: Is a directory (os error 21)", msg)
    assert.equal("IoError", err.kind)
  end)

  it("verify checks only the frame", function()
    local r = snapshot.verify(put("v2", core.frame_encode(4, "not json")))
    assert.equal("ok", r.status)
  end)

  it("check returns the load outcome as a result table with the aqstore check line", function()
    assert.same({ status = "none", line = "NONE" }, snapshot.check(tmpdir .. "/absent.snap"))
    assert.same({ status = "ok", line = "OK tasks=0 runs=0", tasks = 0, runs = 0 },
      snapshot.check(put("c_ok", core.frame_encode(4, EMPTY))))
    local c = snapshot.check(put("c_crc", core.frame_header(4, #EMPTY, 0xdeadbeef) .. EMPTY))
    assert.equal("error", c.status)
    assert.equal("ERR Snapshot CRC-32 mismatch: expected 0xdeadbeef, actual 0xd1f972b6", c.line)
    assert.equal("Snapshot CRC-32 mismatch: expected 0xdeadbeef, actual 0xd1f972b6", c.message)
    assert.equal("CrcMismatch", c.kind)
    assert.equal(c.message, c.err.message)
    if not fixtures.available() then pending("shared fixtures not found") return end
    for _, f in ipairs(fixtures.manifest("snapshot")) do
      local got = snapshot.check(fixtures.path("snapshot", f.file))
      if got.line ~= f.expect_older_serde_stack then assert.equal(f.expect, got.line, f.file) end
      assert.equal(outcome(fixtures.path("snapshot", f.file)), got.line, f.file)
    end
  end)

  it("describe_frame words every frame status like the loader (snapshot-format.md §1.5)", function()
    local h = core.frame_header(4, #EMPTY, core.crc32(EMPTY))
    local function d(name, data)
      return snapshot.describe_frame(snapshot.verify(put(name, data)))
    end
    assert.equal(("frame v4, payload %d bytes, crc 0x%08x"):format(#EMPTY, core.crc32(EMPTY)),
      d("d_ok", h .. EMPTY))
    assert.equal("no snapshot (file not found)", snapshot.describe_frame(snapshot.verify(tmpdir .. "/absent.snap")))
    assert.equal("no snapshot (empty file)", d("d_empty", ""))
    assert.equal("Decode error: truncated snapshot version frame: read 3 of 4 bytes", d("d_v", h:sub(1, 3)))
    assert.equal("Decode error: truncated snapshot: EOF after length frame, expected CRC-32 frame",
      d("d_c", h:sub(1, 8)))
    assert.equal("Incompatible snapshot version: expected 4, found 7", d("d_bv", "\7\0\0\0"))
    assert.equal("Decode error: snapshot payload length 268435457 exceeds maximum 268435456",
      d("d_big", core.frame_header(4, 268435457, 0)))
    assert.equal(("I/O error: failed to fill whole buffer (payload length %d, got 5 bytes)"):format(#EMPTY),
      d("d_short", h .. EMPTY:sub(1, 5)))
    assert.equal("Snapshot CRC-32 mismatch: expected 0xdeadbeef, actual 0xd1f972b6",
      d("d_crc", core.frame_header(4, #EMPTY, 0xdeadbeef) .. EMPTY))
    assert.equal("I/O error: Is a directory (os error 21)", snapshot.describe_frame(snapshot.verify(tmpdir)))
  end)
end)
