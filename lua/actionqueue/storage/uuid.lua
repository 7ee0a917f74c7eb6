--- UUIDs: v4 generation, parsing of the four accepted spellings (snapshot-format.md §3.3),
-- and ordering helpers.
-- In memory every id is the lower-case hyphenated form; comparing those strings
-- byte-wise is the same as comparing the 16 UUID bytes (recovery needs that order).
-- @module actionqueue.storage.uuid
local uuid = {}

--- The nil UUID.
uuid.NIL = "00000000-0000-0000-0000-000000000000"

-- The one UUID parser is the C core's (csrc/text.c), shared with the JSON and postcard
-- codecs: the reference's four spellings and its error texts live there only.
local core = require "actionqueue.storage.core"
local core_parse = core.uuid_parse

local HEX_FORMAT = "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x"

--- Formats 16 raw bytes as a lower-case hyphenated UUID.
-- @tparam string b 16 bytes
function uuid.from_bytes(b)
  assert(type(b) == "string" and #b == 16, "uuid.from_bytes: 16 bytes expected")
  return string.format(HEX_FORMAT, b:byte(1, 16))
end

--- The 16 raw bytes of a UUID in any accepted spelling (nil, err when invalid).
function uuid.to_bytes(s)
  local canon, err = uuid.normalize(s)
  if not canon then return nil, err end
  return (canon:gsub("-", ""):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- v4 ids are made from a larger random block with a byte -> hex table and one
-- concatenation (snapshot.build makes one per task and per run: string.format's
-- per-conversion cost was most of it).
local V4_BLOCK = 16 * 1024
local v4_pool, v4_pos = "", 1
local HEX = {}
for i = 0, 255 do HEX[i] = string.format("%02x", i) end
local sbyte = string.byte

--- A random (version 4, RFC 4122 variant) UUID, lower-case hyphenated.
function uuid.v4()
  if v4_pos + 15 > #v4_pool then
    local f = assert(io.open("/dev/urandom", "rb"))
    v4_pool = assert(f:read(V4_BLOCK))
    f:close()
    v4_pos = 1
  end
  local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 = sbyte(v4_pool, v4_pos, v4_pos + 15)
  v4_pos = v4_pos + 16
  local H = HEX
  return H[b1] .. H[b2] .. H[b3] .. H[b4] .. "-" .. H[b5] .. H[b6] .. "-" .. H[(b7 & 0x0f) | 0x40] .. H[b8]
    .. "-" .. H[(b9 & 0x3f) | 0x80] .. H[b10] .. "-" .. H[b11] .. H[b12] .. H[b13] .. H[b14] .. H[b15] .. H[b16]
end

--- Parses a UUID in any of the accepted spellings (hyphenated, simple, braced, URN;
-- hex digits in either case).
-- @tparam string s
-- @treturn string|nil the lower-case hyphenated form
-- @treturn string the reference's error text (`UUID parsing failed: ...`) on failure
function uuid.normalize(s)
  if type(s) ~= "string" then
    return nil, "invalid type: " .. type(s) .. ", expected a formatted UUID string"
  end
  -- the C parser returns the canonical lower-case form or the reference's full text
  return core_parse(s)
end

--- True when `s` is a valid UUID spelling.
function uuid.is_valid(s)
  return uuid.normalize(s) ~= nil
end

--- True when `s` is (a spelling of) the nil UUID.
function uuid.is_nil(s)
  return uuid.normalize(s) == uuid.NIL
end

--- Compares two UUIDs by their 16 bytes: -1, 0 or 1.
-- Both arguments may be in any accepted spelling; raises on an invalid one.
function uuid.compare(a, b)
  local x = assert(uuid.normalize(a))
  local y = assert(uuid.normalize(b))
  if x == y then return 0 end
  return x < y and -1 or 1
end

--- Strict "less than" by UUID bytes, for `table.sort`.
function uuid.less(a, b)
  return uuid.compare(a, b) < 0
end

--- Sorts a list of UUIDs in place, ascending by bytes; returns the list.
function uuid.sort(list)
  table.sort(list, uuid.less)
  return list
end

return uuid
