-- C core: crc32, frame_encode/frame_header/frame_decode/frame_read and the
-- snapshot loader's classification order (snapshot-format.md 1.3), checked against
-- the golden frame fixtures.
local core = require "actionqueue.storage.core"
local fixtures = require "support.fixtures"
local fault = require "support.fault"
local files = require "support.files"

local function le32(n) return string.pack("<I4", n) end

-- The loader's display text for a frame-level result (snapshot-format.md 1.5); nil
-- when the frame is fine and the outcome depends on the JSON payload.
local function loader_text(r)
  local s = r.status
  if s == "missing" or s == "empty" then return "NONE" end
  if s == "short_header" then
    if r.field == "version" then
      return ("ERR Decode error: truncated snapshot version frame: read %d of 4 bytes"):format(r.got)
    elseif r.got == 0 then
      return r.field == "length"
        and "ERR Decode error: truncated snapshot: EOF after version frame, expected length frame"
        or "ERR Decode error: truncated snapshot: EOF after length frame, expected CRC-32 frame"
    end
    local name = r.field == "length" and "length" or "CRC-32"
    return ("ERR Decode error: truncated snapshot %s frame: read %d of 4 bytes"):format(name, r.got)
  end
  if s == "bad_version" then
    return ("ERR Incompatible snapshot version: expected %d, found %d"):format(r.expected, r.found)
  end
  if s == "too_long" then
    return ("ERR Decode error: snapshot payload length %d exceeds maximum %d"):format(r.length, r.max)
  end
  if s == "short_payload" then return "ERR I/O error: failed to fill whole buffer" end
  if s == "crc_mismatch" then
    return ("ERR Snapshot CRC-32 mismatch: expected 0x%08x, actual 0x%08x"):format(r.expected, r.actual)
  end
  if s == "io_error" then return "ERR I/O error: " .. r.message end
  assert(s == "ok", "unknown status " .. tostring(s))
  return nil
end

describe("core.crc32", function()
  it("is CRC-32/ISO-HDLC (check value, empty input)", function()
    assert.equal(0xCBF43926, core.crc32("123456789"))
    assert.equal(0, core.crc32(""))
  end)
  it("streams: crc32(b, crc32(a)) == crc32(a .. b)", function()
    local a, b = string.rep("x", 1000), string.rep("\0\255", 777)
    assert.equal(core.crc32(a .. b), core.crc32(b, core.crc32(a)))
  end)
  it("rejects a previous crc outside u32 and non-string data", function()
    assert.has_error(function() core.crc32("a", -1) end)
    assert.has_error(function() core.crc32("a", 0x100000000) end)
    assert.has_error(function() core.crc32({}) end)
  end)
  it("has a C-side benchmark helper that agrees with the binding", function()
    local secs, crc = core._bench_crc32_c(4096, 1)
    assert.is_true(secs >= 0)
    local buf = {}
    for i = 0, 4095 do buf[#buf + 1] = string.char((i * 131 + 7) % 256) end
    assert.equal(core.crc32(table.concat(buf)), crc)
    assert.has_error(function() core._bench_crc32_c(0, 1) end)
    assert.has_error(function() core._bench_crc32_c(1, 0) end)
  end)
end)

describe("core.frame_encode / frame_header", function()
  it("lays out version, length, crc little-endian before the payload", function()
    local f = core.frame_encode(4, "hello")
    assert.equal(le32(4) .. le32(5) .. le32(core.crc32("hello")) .. "hello", f)
    assert.equal(f:sub(1, 12), core.frame_header(4, 5, core.crc32("hello")))
    assert.equal(le32(0) .. le32(0) .. le32(0), core.frame_encode(0, ""))
    assert.equal(le32(0xFFFFFFFF):rep(3), core.frame_header(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
  end)
  it("raises on out-of-range header fields", function()
    assert.has_error(function() core.frame_encode(-1, "") end)
    assert.has_error(function() core.frame_encode(0x100000000, "") end)
    assert.has_error(function() core.frame_header(1, 2) end)
    assert.has_error(function() core.frame_header(1, -2, 3) end)
    assert.has_error(function() core.frame_encode(1, nil) end)
  end)
end)

describe("core.frame_decode", function()
  local payload = '{"a":1}'
  local good = core.frame_encode(4, payload)

  it("returns ok with every header field, the payload and the end offset", function()
    local r = core.frame_decode(good)
    assert.same({ status = "ok", offset = 12 + #payload, version = 4, length = #payload,
                  crc = core.crc32(payload), payload = payload }, r)
  end)

  it("ignores bytes after the payload", function()
    assert.equal("ok", core.frame_decode(good .. "trailing").status)
  end)

  it("classifies a truncation at every offset", function()
    for n = 0, #good do
      local r = core.frame_decode(good:sub(1, n))
      if n == 0 then assert.same({ status = "empty", offset = 0 }, r)
      elseif n < 12 then
        assert.equal("short_header", r.status)
        assert.equal(({ "version", "length", "crc" })[n // 4 + 1], r.field)
        assert.equal(n % 4, r.got)
        assert.equal(n // 4 * 4, r.offset)
      elseif n < #good then
        assert.same({ status = "short_payload", offset = 12, length = #payload, got = n - 12 }, r)
      else
        assert.equal("ok", r.status)
      end
    end
  end)

  it("detects every single-bit flip of a small frame", function()
    for i = 1, #good do
      for bit = 0, 7 do
        local b = good:byte(i) ~ (1 << bit)
        local bad = good:sub(1, i - 1) .. string.char(b) .. good:sub(i + 1)
        local r = core.frame_decode(bad)
        assert.are_not.equal("ok", r.status, ("flip byte %d bit %d"):format(i, bit))
        if i <= 4 then assert.equal("bad_version", r.status)
        elseif i <= 8 then assert.is_truthy(r.status == "short_payload" or r.status == "crc_mismatch"
          or r.status == "too_long")
        else assert.equal("crc_mismatch", r.status) end
      end
    end
  end)

  it("checks the version before reading the length (a 4-byte file)", function()
    assert.same({ status = "bad_version", offset = 0, expected = 4, found = 5 }, core.frame_decode(le32(5)))
    assert.same({ status = "short_header", offset = 4, field = "length", got = 0 },
      core.frame_decode(le32(4)))
  end)

  it("caps the length at 256 MiB inclusive, before looking for the payload", function()
    local at = core.frame_decode(core.frame_header(4, 268435456, 0))
    assert.same({ status = "short_payload", offset = 12, length = 268435456, got = 0 }, at)
    local over = core.frame_decode(core.frame_header(4, 268435457, 0))
    assert.same({ status = "too_long", offset = 4, length = 268435457, max = 268435456 }, over)
  end)

  it("honours opts.version and opts.max_length", function()
    local f = core.frame_encode(5, "abc")
    assert.equal("bad_version", core.frame_decode(f).status)
    assert.equal("ok", core.frame_decode(f, { version = 5 }).status)
    assert.same({ status = "too_long", offset = 4, length = 3, max = 2 },
      core.frame_decode(f, { version = 5, max_length = 2 }))
    assert.has_error(function() core.frame_decode(f, { version = -1 }) end)
    assert.has_error(function() core.frame_decode(f, { max_length = "x" }) end)
    assert.has_error(function() core.frame_decode(f, 7) end)
  end)

  it("reports both CRC values on a mismatch", function()
    local f = core.frame_header(4, 3, 0xdeadbeef) .. "abc"
    assert.same({ status = "crc_mismatch", offset = 12, expected = 0xdeadbeef,
                  actual = core.crc32("abc"), length = 3 }, core.frame_decode(f))
  end)

  it("passes a zero-length payload with crc 0 (the JSON layer rejects it)", function()
    local r = core.frame_decode(core.frame_header(4, 0, 0))
    assert.equal("ok", r.status)
    assert.equal("", r.payload)
  end)
end)

describe("core.frame_read", function()
  local dir
  before_each(function() dir = fault.tmpdir("frame") end)
  after_each(function() fault.rmdir(dir) end)

  local function put(name, data)
    files.write(dir .. "/" .. name, data)
    return dir .. "/" .. name
  end

  it("reads a good frame", function()
    local r = core.frame_read(put("a", core.frame_encode(4, "xyz")))
    assert.equal("ok", r.status)
    assert.equal("xyz", r.payload)
    assert.equal(15, r.offset)
  end)

  it("says missing for ENOENT and empty for a 0-byte file", function()
    assert.same({ status = "missing", offset = 0 }, core.frame_read(dir .. "/nope"))
    assert.same({ status = "empty", offset = 0 }, core.frame_read(put("e", "")))
  end)

  it("reports a directory like the reference: Is a directory (os error 21)", function()
    local r = core.frame_read(dir)
    assert.same({ status = "io_error", offset = 0, message = "Is a directory (os error 21)", errno = "EISDIR",
                  op = "read", path = dir }, r)
    assert.equal("ERR I/O error: Is a directory (os error 21)", loader_text(r))
  end)

  it("reports other open errors as io_error with errno", function()
    local r = core.frame_read(put("f", "x") .. "/below")
    assert.equal("io_error", r.status)
    assert.equal("ENOTDIR", r.errno)
    assert.equal("Not a directory (os error 20)", r.message)
  end)

  it("does not allocate for a length the file does not have", function()
    local r = core.frame_read(put("big", core.frame_header(4, 268435456, 0) .. "ab"))
    assert.same({ status = "short_payload", offset = 12, length = 268435456, got = 2 }, r)
  end)

  it("matches the loader on every truncation of a real snapshot file", function()
    local data = core.frame_encode(4, string.rep("{}", 40))
    for n = 0, #data do
      local a = core.frame_read(put("t", data:sub(1, n)))
      local b = core.frame_decode(data:sub(1, n))
      assert.same(b, a)
    end
  end)

  it("refuses a FIFO at once, with or without a writer at the other end (issue 13.10)", function()
    local p = dir .. "/fifo"
    assert(os.execute("mkfifo " .. fault.shq(p)))
    local want = { status = "io_error", offset = 0, errno = "EINVAL", file_type = "FIFO (named pipe)",
                   message = "refusing to read " .. p .. ": it is a FIFO (named pipe), not a regular file",
                   op = "open", path = p }
    assert.same(want, core.frame_read(p))
    local src = put("src", core.frame_encode(4, string.rep("q", 200000)))
    -- a background writer that gives up after 2 s (its open blocks until a reader comes)
    assert(os.execute("timeout 2 sh -c " .. fault.shq("cat " .. fault.shq(src) .. " > " .. fault.shq(p))
      .. " 2>/dev/null &"))
    assert.same(want, core.frame_read(p))
  end)
end)

describe("golden frame fixtures", function()
  if not fixtures.available() then
    pending("shared fixtures not found at " .. fixtures.root)
    return
  end
  local manifest = fixtures.manifest("snapshot")
  local frame_cases = 0
  for _, case in ipairs(manifest) do
    if case.kind == "frame" then frame_cases = frame_cases + 1 end
    it(case.kind .. " " .. case.file, function()
      local r = core.frame_read(fixtures.path("snapshot", case.file))
      local text = loader_text(r)
      if text then
        assert.equal(case.expect, text)
      else
        -- the frame is fine: the outcome is the JSON layer's
        assert.is_truthy(case.expect:match("^OK ") or case.expect:match("^ERR Decode error: Failed to decode snapshot")
          or case.expect:match("^ERR Mapping error: "), case.expect)
      end
    end)
  end
  it("has frame cases", function() assert.is_true(frame_cases >= 20) end)
end)
