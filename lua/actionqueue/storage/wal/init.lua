--- Public WAL v5 API: codec, reader, appender and repair in one table.
--
--     local wal = require "actionqueue.storage.wal"
--     local w = assert(wal.open_appender("data/wal/actionqueue.wal", {sync = "batch"}))
--     w:append {sequence = w:next_sequence(), event = {EnginePaused = {timestamp = 1700000000}}}
--     w:commit()
--     for offset, ev in wal.records("data/wal/actionqueue.wal") do ... end
-- @module actionqueue.storage.wal
local core = require "actionqueue.storage.core"
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

local TO_JSON = { features = { workflow = true } }

--- Compact JSON of an event, identical to the reference's serde JSON (§8.6), written by
-- the C canonical encoder over `schema.wal.WalEvent`. A decoded event may carry the
-- workflow build's Cron policy, so that variant is enabled; its absent `max_occurrences`
-- is left out ("skip if none", snapshot-format.md §3.4). Returns `nil, message` for a
-- value that does not fit the schema.
function wal.to_json(event)
  return core.json_encode(event, schema.WalEvent, TO_JSON)
end

--- The variant name of a record's event and the compact JSON of that variant's fields
-- alone (`{"timestamp":1700000000}`), encoded from the variant's own schema record
-- (what `aqstore wal dump` shows after the variant name).
-- @return name, json | nil, message
function wal.event_json(record)
  local name, body = next(record.event)
  local variant = schema.WalEventType.by_name[name]
  if not variant then return nil, "unknown WAL event variant " .. tostring(name) end
  local j, err = core.json_encode(body, variant.type, TO_JSON)
  if not j then return nil, err end
  return name, j
end

return wal
