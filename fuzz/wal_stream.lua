-- libFuzzer target: whole WAL files through the C frame iterator (core.frames over a
-- file, with its read-ahead buffer, in the three check orders of wal-format.md §3.3) and
-- the library's scan (frames + postcard skim/decode of each record).
-- Properties: nothing raises; the iterator yields contiguous frames whose payloads are the
-- file's bytes and ends with a documented status; in "buffer" order (the buffer
-- validators' order) its valid prefix equals the pure-Lua validate_buffer_lenient walk's
-- when every payload decodes; wal.scan's valid prefix never passes the iterator's.
local core = require "actionqueue.storage.core"
local reader = require "actionqueue.storage.wal.reader"

local path = (os.getenv("TMPDIR") or "/tmp") .. "/aqs-fuzz-wal-" .. tostring(os.time()) .. "-" ..
  tostring(math.random(1 << 30))
local END = { ["end"] = true, short_header = true, incomplete_header = true,
  incomplete_payload = true, unsupported_version = true, bad_version = true, crc_mismatch = true,
  too_long = true, short_payload = true, decode_failure = true, zero_length = true }

local function walk(order, data)
  local pos, n, final = 0, 0, nil
  for offset, version, payload in core.frames(path, { order = order, version = 5 }) do
    if type(offset) ~= "number" then final = offset break end
    assert(offset == pos, order .. ": frames not contiguous")
    assert(version == 5, order .. ": version")
    assert(data:sub(offset + 13, offset + 12 + #payload) == payload, order .. ": payload bytes")
    pos = offset + 12 + #payload
    n = n + 1
  end
  assert(type(final) == "table", order .. ": no final status")
  assert(END[final.status], order .. ": status " .. tostring(final.status) .. " " .. tostring(final.message))
  return pos, n, final
end

return function(data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  local ends = {}
  for _, order in ipairs({ "reader", "writer_open", "buffer" }) do
    ends[order] = walk(order, data)
  end
  local summary = reader.scan(path)
  assert(type(summary) == "table", "scan summary")
  assert(summary.valid_bytes <= ends.reader, "scan went past the frame iterator")
  local _, pos, err = reader.validate_buffer_lenient(data)
  if not err or err.reason ~= "decode_failure" then
    -- frames only checks framing; the Lua walk also decodes, so compare when it did not
    -- stop on a payload that fails to decode
    assert(pos == ends.buffer,
      ("buffer order: lenient walk ends at %d, frames at %d"):format(pos, ends.buffer))
  end
  os.remove(path)
end
