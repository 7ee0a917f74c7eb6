--- Snapshot payload codec: JSON text <-> the Lua representation, driven by the schema
-- (snapshot-format.md §3, §4) through the C codec (json_decode.c, json_encode.c).
-- @module actionqueue.storage.snapshot.codec
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local compile = require "actionqueue.storage.schema.compile"
local S = require "actionqueue.storage.schema.snapshot"

local codec = {}

local compiled
local function schema()
  compiled = compiled or compile.schema(S.root)
  return compiled
end

--- Decodes a payload: strict JSON + schema mapping + the decode-time checks (§3.6).
-- No §6 validation.
-- @tparam string payload the JSON text (or the PayloadBuffer of `frame_read(path, {buffer = true})`)
-- @return the snapshot table, or `nil, err` with `err.kind == "DecodeError"`,
--   `err.message` the loader's text (`Decode error: Failed to decode snapshot: ...`),
--   `err.detail` the text after `Decode error: `, `err.line`, `err.column`
function codec.decode(payload)
  assert(type(payload) == "string" or type(payload) == "userdata",
    "snapshot.decode: payload string (or frame_read's payload buffer) expected")
  local snap, msg, line, column = core.json_decode(payload, schema())
  if snap == nil then
    local detail = "Failed to decode snapshot: " .. msg
    return nil, errors.new("DecodeError", { detail = detail, line = line, column = column },
      "Decode error: " .. detail)
  end
  return snap
end

--- Encodes a snapshot canonically (compact, schema key order). No validation.
-- @tparam table snap the snapshot
-- @param[opt] sink function `sink(chunk)` or an object with a `write` method; chunks
--   of `chunk_size` (default 64 KiB) are streamed to it and `true` is returned
-- @tparam[opt] integer chunk_size
-- @return the payload string (or `true` with a sink), or `nil, err` with
--   `err.kind == "EncodeError"` and a message naming the path of the bad value
function codec.encode(snap, sink, chunk_size)
  local r, msg = core.json_encode(snap, schema(), sink, chunk_size)
  if r == nil then
    return nil, errors.new("EncodeError", { detail = msg }, "Encode error: " .. tostring(msg))
  end
  return r
end

--- The compiled schema (for other codecs or benchmarks).
codec.schema = schema

return codec
