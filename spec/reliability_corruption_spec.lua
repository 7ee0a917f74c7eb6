-- Corruption sweeps through the public API, counted for docs/reliability.md:
-- every truncation and single-bit flips of real snapshot and WAL files.
-- Snapshots: the loader never raises; it returns the identical snapshot or an error of a
-- known kind (a flip is never accepted as different content).  WAL: the scan never raises,
-- every record before the reported corruption offset is the original one, and a
-- truncate_partial open keeps exactly that prefix.
-- `make faults` (AQS_RELIABILITY=full) flips every bit; `make test` a stride of them.
local fixtures = require "support.fixtures"
local snapshot = require "actionqueue.storage.snapshot"
local wal = require "actionqueue.storage.wal"
local codec = require "actionqueue.storage.snapshot.codec"

local full = os.getenv("AQS_RELIABILITY") == "full"
local STRIDE = full and 1 or 23

local files = require "support.files"
local function slurp(p) return assert(files.read(p)) end   -- raises on a missing file
local put = files.write
local function flip(d, i, bit)
  return d:sub(1, i - 1) .. string.char(d:byte(i) ~ (1 << bit)) .. d:sub(i + 1)
end

local KINDS = { DecodeError = true, CrcMismatch = true, IncompatibleVersion = true,
  MappingError = true, IoError = true }

describe("corruption sweeps", function()
  if not fixtures.available() then
    pending("fixtures missing")
    return
  end
  local tmp = os.tmpname()
  teardown(function() os.remove(tmp) end)
  local counts = { snapshot = 0, wal = 0 }

  it("snapshot files: every truncation and bit flips", function()
    for _, name in ipairs({ "valid_01_tasks.snap", "valid_04_engine_resumed.snap", "valid_10_direct_fields.snap" }) do
      local good = slurp(fixtures.path("snapshot", name))
      local canonical = codec.encode(assert(snapshot.load(fixtures.path("snapshot", name))))
      local function try(bad, what)
        put(tmp, bad)
        local ok, snap, err = pcall(snapshot.load, tmp)
        assert(ok, name .. " " .. what .. ": loader raised " .. tostring(snap))
        if snap then
          assert(codec.encode(snap) == canonical, name .. " " .. what .. ": accepted different content")
        elseif snap == nil then
          assert(KINDS[err.kind], name .. " " .. what .. ": unknown error kind " .. tostring(err.kind))
        else
          assert(#bad == 0, name .. " " .. what .. ": 'no snapshot' for a non-empty file")
        end
        -- the streamed verdict (aqstore check) agrees with the table path
        local okv, v, verr = pcall(snapshot.verdict, tmp)
        assert(okv, name .. " " .. what .. ": verdict raised " .. tostring(v))
        if snap then
          assert(v and v.tasks == #snap.tasks and v.runs == #snap.runs, name .. " " .. what .. ": verdict differs")
        elseif snap == false then
          assert(v == false, name .. " " .. what .. ": verdict differs")
        else
          assert(v == nil and verr.kind == err.kind and verr.message == err.message,
            name .. " " .. what .. ": verdict says " .. tostring(verr and verr.message) .. ", load " .. err.message)
        end
        counts.snapshot = counts.snapshot + 1
      end
      for n = 0, #good - 1, STRIDE do try(good:sub(1, n), "truncated to " .. n) end
      for i = 1, #good, STRIDE do
        for bit = 0, 7 do try(flip(good, i, bit), ("flip %d.%d"):format(i, bit)) end
      end
    end
  end)

  it("WAL files: every truncation and bit flips keep the valid prefix", function()
    for _, name in ipairs({ "all_events.wal" }) do
      local good = slurp(fixtures.path("wal", "events", name))
      local originals, ends = {}, {}
      for off, ev in wal.records(fixtures.path("wal", "events", name)) do
        originals[#originals + 1] = wal.encode_record(ev)
        ends[#ends + 1] = off + #originals[#originals]
      end
      local function try(bad, what)
        put(tmp, bad)
        local got = {}
        local function keep(_, ev) got[#got + 1] = wal.encode_record(ev) end
        local ok, summary = pcall(wal.scan, tmp, nil, keep)
        assert(ok, name .. " " .. what .. ": scan raised " .. tostring(summary))
        local limit = summary.error and summary.error.offset or #bad
        for i, rec in ipairs(got) do
          assert(ends[i] > limit or rec == originals[i], name .. " " .. what .. ": record " .. i .. " changed")
        end
        local a = wal.open_appender(tmp, { repair = "truncate_partial", sync = "none" })
        if a then a:close() end
        counts.wal = counts.wal + 1
      end
      for n = 0, #good - 1, STRIDE do try(good:sub(1, n), "truncated to " .. n) end
      for i = 1, #good, STRIDE * 3 do
        for bit = 0, 7 do try(flip(good, i, bit), ("flip %d.%d"):format(i, bit)) end
      end
    end
    print(("\ncorruptions tried: snapshot files %d, WAL files %d"):format(counts.snapshot, counts.wal))
  end)
end)
