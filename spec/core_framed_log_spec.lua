-- C core: FramedLog and the frames() iterator with its three classification orders
-- (wal-format.md 3.1-3.3).
local core = require "actionqueue.storage.core"
local fault = require "support.fault"

local files = require "support.files"
local put = files.write
local function slurp(p) return assert(files.read(p)) end   -- raises on a missing file

-- Runs frames() to the end: list of {offset, version, payload} and the status table.
local function walk(src, opts)
  local recs, final = {}, nil
  for o, v, p in core.frames(src, opts) do
    if type(o) == "table" then final = o else recs[#recs + 1] = { o, v, p } end
  end
  return recs, final
end

local rec46 = core.frame_encode(5, string.rep("e", 34))   -- a 46-byte record

describe("core.log_open / FramedLog", function()
  local dir
  before_each(function() dir = fault.tmpdir("log") end)
  after_each(function() fault.rmdir(dir) end)

  it("creates, appends at the end, syncs, reports its size", function()
    local log = assert(core.log_open(dir .. "/wal"))
    assert.equal(0, log:size())
    assert.equal(0, log:append(rec46))
    assert.equal(46, log:append(rec46))
    assert.equal(92, log:size())
    assert.is_true(log:sync())
    assert.matches("^FramedLog%(.*/wal, open, 92 bytes%)$", tostring(log))
    assert.equal(dir .. "/wal", log:path())
    assert.is_true(log:close())
    assert.is_true(log:close())
    assert.matches("closed", tostring(log))
    assert.equal(rec46 .. rec46, slurp(dir .. "/wal"))
    -- reopening continues at the end
    log = assert(core.log_open(dir .. "/wal"))
    assert.equal(92, log:size())
    assert.equal(92, log:append("x"))
    log:close()
  end)

  it("truncates (repair) and refuses offsets outside the log", function()
    local log = assert(core.log_open(dir .. "/wal"))
    log:append(rec46 .. rec46)
    assert.is_true(log:truncate(46))
    assert.equal(46, log:size())
    assert.equal(rec46, slurp(dir .. "/wal"))
    assert.has_error(function() log:truncate(47) end)
    assert.has_error(function() log:truncate(-1) end)
    log:close()
  end)

  it("honours create = false and readonly", function()
    local log, msg, name = core.log_open(dir .. "/none", { create = false })
    assert.is_nil(log)
    assert.equal("open " .. dir .. "/none: No such file or directory", msg)
    assert.equal("ENOENT", name)
    put(dir .. "/ro", rec46)
    log = assert(core.log_open(dir .. "/ro", { readonly = true }))
    assert.has_error(function() log:append("x") end)
    assert.has_error(function() log:truncate(0) end)
    assert.matches("readonly", tostring(log))
    assert.equal(46, log:size())
    assert.equal(1, #select(1, walk(log)))
    log:close()
    assert.has_error(function() core.log_open(dir .. "/x", 5) end)
  end)

  it("refuses a directory", function()
    local log, msg, name = core.log_open(dir, { readonly = true })
    assert.is_nil(log)
    assert.equal("open " .. dir .. ": Is a directory", msg)
    assert.equal("EISDIR", name)
  end)

  it("raises when used after close; __close and __gc release it", function()
    local log = assert(core.log_open(dir .. "/wal"))
    log:close()
    assert.has_error(function() log:append("x") end)
    assert.has_error(function() log:sync() end)
    assert.has_error(function() log:size() end)
    assert.has_error(function() log:truncate(0) end)
    do
      local l2 <close> = assert(core.log_open(dir .. "/wal"))
      l2:append("y")
    end
    assert(core.log_open(dir .. "/wal"))   -- dropped at once: __gc closes it
    collectgarbage()
    assert.equal("y", slurp(dir .. "/wal"))
  end)
end)

describe("core.frames", function()
  local dir
  before_each(function() dir = fault.tmpdir("frames") end)
  after_each(function() fault.rmdir(dir) end)

  it("yields offset, version, payload and ends with the valid length", function()
    put(dir .. "/w", rec46 .. core.frame_encode(5, "abc"))
    local recs, final = walk(dir .. "/w")
    assert.same({ { 0, 5, string.rep("e", 34) }, { 46, 5, "abc" } }, recs)
    assert.same({ status = "end", offset = 61 }, final)
  end)

  it("an empty file is a valid empty log; a missing one says missing", function()
    put(dir .. "/e", "")
    assert.same({ status = "end", offset = 0 }, select(2, walk(dir .. "/e")))
    assert.same({ status = "missing", offset = 0 }, select(2, walk(dir .. "/none")))
    local _, st = walk(dir)
    assert.equal("io_error", st.status)
    assert.equal("EISDIR", st.errno)
    assert.equal("Is a directory (os error 21)", st.message)
  end)

  it("walks an open FramedLog, sees its appends, and notices a close", function()
    local log = assert(core.log_open(dir .. "/w"))
    log:append(rec46)
    local recs, final = walk(log)
    assert.equal(1, #recs)
    assert.same({ status = "end", offset = 46 }, final)
    local iter, state = core.frames(log)
    log:close()
    assert.has_error(function() iter(state) end)
    assert.has_error(function() core.frames(log) end)
  end)

  it("starts at opts.offset and rejects a bad one", function()
    put(dir .. "/w", rec46 .. rec46 .. rec46)
    local recs, final = walk(dir .. "/w", { offset = 46 })
    assert.equal(2, #recs)
    assert.equal(46, recs[1][1])
    assert.equal(92, recs[2][1])
    assert.same({ status = "end", offset = 138 }, final)
    recs, final = walk(dir .. "/w", { offset = 138 })
    assert.equal(0, #recs)
    assert.same({ status = "end", offset = 138 }, final)
    recs, final = walk(dir .. "/w", { offset = 140 })
    assert.equal(0, #recs)
    assert.same({ status = "end", offset = 140 }, final)
    recs, final = walk(dir .. "/w", { offset = 130 })
    assert.equal(0, #recs)
    assert.same({ status = "incomplete_header", offset = 130, got = 8 }, final)
    assert.has_error(function() core.frames(dir .. "/w", { offset = -1 }) end)
    assert.has_error(function() core.frames(dir .. "/w", { offset = 1.5 }) end)
  end)

  it("reads through its buffer: many records, records across the buffer edge, big records", function()
    local parts, big = {}, core.frame_encode(5, string.rep("b", 300000))
    for k = 1, 9000 do parts[k] = core.frame_encode(5, string.rep(string.char(65 + k % 26), k % 61 + 1)) end
    parts[#parts + 1] = big
    parts[#parts + 1] = rec46
    local data = table.concat(parts)
    put(dir .. "/m", data)
    local recs, final = walk(dir .. "/m")
    assert.equal(#parts, #recs)
    assert.same({ status = "end", offset = #data }, final)
    local o = 0
    for k = 1, #parts do
      assert.equal(o, recs[k][1])
      assert.equal(parts[k]:sub(13), recs[k][3])
      o = o + #parts[k]
    end
    -- a big record cut short is incomplete, with what is there
    put(dir .. "/m", big:sub(1, 200000))
    recs, final = walk(dir .. "/m")
    assert.equal(0, #recs)
    assert.same({ status = "incomplete_payload", offset = 0, length = 300000, got = 199988 }, final)
    -- a lying length far beyond the file: no allocation, incomplete_payload
    put(dir .. "/m", string.pack("<I4I4I4", 5, 200 * 1048576, 0) .. "xyz")
    recs, final = walk(dir .. "/m")
    assert.equal(0, #recs)
    assert.same({ status = "incomplete_payload", offset = 0, length = 200 * 1048576, got = 3 }, final)
  end)

  it("a borrowed log's truncate is seen by a running iterator", function()
    local log = assert(core.log_open(dir .. "/w"))
    log:append(rec46)
    log:append(rec46)
    local iter, state = core.frames(log)
    assert.equal(0, (iter(state)))
    assert(log:truncate(46))
    local st = iter(state)
    assert.same({ status = "end", offset = 46 }, st)
    log:close()
  end)

  it("stops after the final status", function()
    put(dir .. "/w", rec46)
    local iter, state = core.frames(dir .. "/w")
    assert.equal(0, (iter(state)))
    assert.equal("end", iter(state).status)
    assert.is_nil(iter(state))
    assert.is_nil(iter(state))
  end)

  it("classifies every truncation (reader order)", function()
    local data = rec46 .. rec46
    for n = 0, #data do
      put(dir .. "/t", data:sub(1, n))
      local recs, st = walk(dir .. "/t")
      local start = n >= 46 and 46 or 0
      assert.equal(n >= 92 and 2 or (n >= 46 and 1 or 0), #recs)
      if n == 0 or n == 46 or n == 92 then
        assert.same({ status = "end", offset = n }, st)
      elseif n - start < 12 then
        assert.same({ status = "incomplete_header", offset = start, got = n - start }, st)
      else
        assert.same({ status = "incomplete_payload", offset = start, length = 34, got = n - start - 12 }, st)
      end
    end
  end)

  it("detects every single-bit flip of a small log", function()
    local data = rec46 .. rec46
    for i = 1, #data do
      for bit = 0, 7 do
        local bad = data:sub(1, i - 1) .. string.char(data:byte(i) ~ (1 << bit)) .. data:sub(i + 1)
        put(dir .. "/f", bad)
        local recs, st = walk(dir .. "/f")
        assert.are_not.equal("end", st.status)
        assert.equal(i > 46 and 46 or 0, st.offset, "corruption offset is the record start")
        assert.equal(i > 46 and 1 or 0, #recs)
      end
    end
  end)

  -- wal-format.md 3.3: one valid 46-byte record, then a bad header at offset 46.
  local cases = {
    { "version 99, length 0xFFFFFFFF", core.frame_header(99, 0xFFFFFFFF, 0),
      "decode_failure", "unsupported_version", "incomplete_payload" },
    { "version 5, length 300 MiB, no payload", core.frame_header(5, 300 * 1024 * 1024, 0),
      "decode_failure", "decode_failure", "incomplete_payload" },
    { "version 4, length 10, 2 payload bytes", core.frame_header(4, 10, 0) .. "ab",
      "unsupported_version", "unsupported_version", "incomplete_payload" },
    { "version 5, length 0", core.frame_header(5, 0, 12345),
      "decode_failure", "decode_failure", "decode_failure" },
    { "ASCII garbage", "hello world, this is text",
      "decode_failure", "unsupported_version", "incomplete_payload" },
    { "bad crc", core.frame_header(5, 3, 1) .. "abc", "crc_mismatch", "crc_mismatch", "crc_mismatch" },
    { "version 4, zero length", core.frame_header(4, 0, 0),
      "unsupported_version", "unsupported_version", "unsupported_version" },
  }
  for _, c in ipairs(cases) do
    it("orders the checks per component: " .. c[1], function()
      put(dir .. "/o", rec46 .. c[2])
      for k, order in ipairs({ "reader", "writer_open", "buffer" }) do
        local recs, st = walk(dir .. "/o", { order = order })
        assert.equal(1, #recs)
        assert.equal(c[2 + k], st.status, order)
        assert.equal(46, st.offset)
      end
    end)
  end

  it("labels the two decode_failure causes and accepts exactly the cap", function()
    put(dir .. "/z", core.frame_header(5, 0, 0))
    assert.equal("zero_length", select(2, walk(dir .. "/z")).detail)
    put(dir .. "/c", core.frame_header(5, 268435457, 0))
    local st = select(2, walk(dir .. "/c"))
    assert.same({ status = "decode_failure", detail = "too_long", offset = 0, length = 268435457,
                  max = 268435456 }, st)
    put(dir .. "/c", core.frame_header(5, 268435456, 0))
    assert.equal("incomplete_payload", select(2, walk(dir .. "/c")).status)
  end)

  it("honours opts.version, opts.max_length and rejects bad options", function()
    put(dir .. "/v", core.frame_encode(4, "abc"))
    assert.equal("unsupported_version", select(2, walk(dir .. "/v")).status)
    assert.equal("end", select(2, walk(dir .. "/v", { version = 4 })).status)
    assert.equal("decode_failure", select(2, walk(dir .. "/v", { version = 4, max_length = 2 })).status)
    assert.has_error(function() core.frames(dir .. "/v", { order = "sideways" }) end)
    assert.has_error(function() core.frames(dir .. "/v", { version = -1 }) end)
    assert.has_error(function() core.frames({}) end)
  end)

  it("is a to-be-closed iterator (breaking out releases the file)", function()
    put(dir .. "/w", rec46 .. rec46)
    local lfs = require "lfs"
    -- the descriptors of this process that point at the file (Linux /proc)
    local function open_on_file()
      local n = 0
      for fd in lfs.dir("/proc/self/fd") do
        local target = lfs.symlinkattributes("/proc/self/fd/" .. fd, "target")
        if target == dir .. "/w" then n = n + 1 end
      end
      return n
    end
    local _, _, _, closing = core.frames(dir .. "/w")
    local mt = getmetatable(closing)
    assert.is_function(mt and mt.__close)
    mt.__close(closing)
    assert.equal(0, open_on_file())
    collectgarbage("stop")   -- only the break may close it, not a collection
    local seen, open_inside = 0, nil
    for o in core.frames(dir .. "/w") do
      seen = seen + 1
      open_inside = open_on_file()
      if o == 0 then break end
    end
    local after = open_on_file()
    collectgarbage("restart")
    assert.equal(1, seen)
    assert.equal(1, open_inside)
    assert.equal(0, after)
  end)
end)

describe("core framing on random input", function()
  local dir
  before_each(function() dir = fault.tmpdir("rand") end)
  after_each(function() fault.rmdir(dir) end)

  it("always classifies, never crashes, and agrees between string and file", function()
    local known = { ["end"] = true, incomplete_header = true, incomplete_payload = true,
                    unsupported_version = true, crc_mismatch = true, decode_failure = true }
    local fknown = { ok = true, empty = true, short_header = true, bad_version = true,
                     too_long = true, short_payload = true, crc_mismatch = true }
    for n = 1, 300 do
      local bytes = {}
      local len = n % 40
      for i = 1, len do bytes[i] = string.char(math.random(0, 255)) end
      -- bias towards plausible headers so the deeper checks are reached too
      if n % 3 == 0 and len >= 12 then
        bytes[1], bytes[2], bytes[3], bytes[4] = "\5", "\0", "\0", "\0"
        bytes[5], bytes[6], bytes[7], bytes[8] = string.char(math.random(0, 30)), "\0", "\0", "\0"
      end
      local data = table.concat(bytes)
      put(dir .. "/r", data)
      for _, order in ipairs({ "reader", "writer_open", "buffer" }) do
        local _, st = walk(dir .. "/r", { order = order })
        assert.is_true(known[st.status], st.status)
        assert.is_true(st.offset >= 0 and st.offset <= #data)
      end
      local a = core.frame_decode(data, { version = 5 })
      assert.is_true(fknown[a.status], a.status)
      assert.same(a, core.frame_read(dir .. "/r", { version = 5 }))
    end
  end)
end)
