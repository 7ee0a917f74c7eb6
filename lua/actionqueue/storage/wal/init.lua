--- Public WAL v5 API: codec, reader, appender and repair in one table.
--
--     local wal = require "actionqueue.storage.wal"
--     local w = assert(wal.open_appender("data/wal/actionqueue.wal", {sync = "batch"}))
--     w:append {sequence = w:next_sequence(), event = {EnginePaused = {timestamp = 1700000000}}}
--     w:commit()
--     for offset, ev in wal.records("data/wal/actionqueue.wal") do ... end
-- @module actionqueue.storage.wal
local codec = require "actionqueue.storage.wal.codec"
local reader = require "actionqueue.storage.wal.reader"
local appender = require "actionqueue.storage.wal.appender"
local repair = require "actionqueue.storage.wal.repair"
local schema = require "actionqueue.storage.schema.wal"

local wal = {
  codec = codec, reader = reader, appender = appender, repair = repair, schema = schema,
  decode_payload = codec.decode_payload,
  encode_payload = codec.encode_payload,
  encode_record = codec.encode_record,
  scan = reader.scan,
  open_reader = reader.open,
  open_appender = appender.open,
  validate_buffer_strict = reader.validate_buffer_strict,
  validate_buffer_lenient = reader.validate_buffer_lenient,
}

--- Iterates the valid records of a log: `for offset, event in wal.records(path) do`.
-- Stops silently at the first problem; use `wal.scan` to learn what it was.
function wal.records(path, opts)
  return coroutine.wrap(function()
    reader.scan(path, opts, function(offset, ev) coroutine.yield(offset, ev) end)
  end)
end

--- Compact JSON of an event, identical to the reference's serde JSON (§8.6).
-- Uses the C canonical JSON encoder of the snapshot codec when it is built, else the
-- schema-driven writer of `inspect.json`; both walk `schema.wal.WalEvent`.
function wal.to_json(event)
  return wal._json(event)
end

function wal._json(event)
  local core = require "actionqueue.storage.core"
  local json = require "actionqueue.storage.inspect.json"
  local WalEvent = schema.WalEvent
  local function lua_enc(ev) return json.encode_typed(ev, WalEvent) end
  local enc = lua_enc
  local c_enc = core.json_encode
  if c_enc then
    -- The C encoder leaves feature-gated variants (Cron) out of its schema; such an
    -- event falls back to the Lua writer, which walks the same schema table.
    enc = function(ev) return c_enc(ev, WalEvent) or lua_enc(ev) end
  end
  wal._json = enc
  return enc(event)
end

return wal
