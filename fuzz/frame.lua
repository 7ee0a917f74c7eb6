-- libFuzzer target: the 12-byte frame reader (core.frame_decode) on untrusted bytes,
-- under both frame versions (snapshot 4, WAL 5) and a small max_length.
-- Properties: every input gets one of the documented statuses; an `ok` frame's fields
-- describe exactly the bytes it came from (re-encoding gives the same prefix).
local core = require "actionqueue.storage.core"

local STATUS = { ok = true, empty = true, short_header = true, bad_version = true,
  too_long = true, short_payload = true, crc_mismatch = true }
local OPTS = { { version = 4 }, { version = 5 }, { version = 4, max_length = 64 } }

return function(data)
  for _, o in ipairs(OPTS) do
    local r = core.frame_decode(data, o)
    assert(type(r) == "table" and STATUS[r.status], "unknown status " .. tostring(r and r.status))
    assert(math.type(r.offset) == "integer" and r.offset >= 0 and r.offset <= #data, "bad offset")
    if r.status == "ok" then
      assert(r.version == o.version and r.length == #r.payload, "ok frame fields")
      assert(data:sub(1, 12 + r.length) == core.frame_encode(r.version, r.payload), "re-encode differs")
      assert(core.crc32(r.payload) == r.crc, "crc field")
    elseif r.status == "empty" then
      assert(#data == 0)
    end
  end
end
