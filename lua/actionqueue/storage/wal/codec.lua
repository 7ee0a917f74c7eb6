--- WAL v5 record codec: postcard payloads (wal-format.md §7-8) and 12-byte frames (§2).
-- The C core walks `schema.wal.WalEvent`; this module adds the framing, the size
-- limits and the reference's error texts.
-- @module actionqueue.storage.wal.codec
local core = require "actionqueue.storage.core"
local W = require "actionqueue.storage.schema.wal"

local codec = {}

codec.FRAME_VERSION = W.FRAME_VERSION
codec.MAX_PAYLOAD = W.MAX_PAYLOAD
codec.HEADER_SIZE = 12

local decode, encode = core.postcard_decode, core.postcard_encode
local WalEvent = W.WalEvent
local NO_FEATURES = {}

--- Codec options from the caller's options.
-- `opts.workflow = true` (or `opts.features = {workflow = true}`) enables RunPolicy::Cron,
-- the reference's optional "workflow" build; the default build rejects cron records.
function codec.options(opts)
  if not opts then return NO_FEATURES end
  if opts.features then return opts end
  if opts.workflow then return { features = { workflow = true } } end
  return NO_FEATURES
end

--- Decodes one payload into `{sequence = n, event = {Variant = {...}}}`.
-- Bytes after the complete event are ignored (§2).
-- @tparam string payload
-- @tparam[opt] table opts see `codec.options`
-- @return event, consumed bytes | nil, postcard error text
function codec.decode_payload(payload, opts)
  if #payload == 0 then return nil, "Hit the end of buffer, expected more data" end
  return decode(payload, WalEvent, codec.options(opts))
end

local SKIM, SKIM_WORKFLOW = { skim = true }, { skim = true, features = { workflow = true } }

--- Validates one payload exactly like `decode_payload` without building the event
-- (only what a decode-time check needs is materialised): the fast path of scans.
-- @return consumed bytes, sequence, variant name | nil, postcard error text
function codec.skim_payload(payload, opts)
  if #payload == 0 then return nil, "Hit the end of buffer, expected more data" end
  local o = codec.options(opts)
  return decode(payload, WalEvent, o.features and o.features.workflow and SKIM_WORKFLOW or SKIM)
end

--- Encodes an event to its postcard payload.
-- @return string | nil, message (`WAL encode serialization error: <e>`)
function codec.encode_payload(event, opts)
  local bytes, err = encode(event, WalEvent, codec.options(opts))
  if not bytes then return nil, "WAL encode serialization error: " .. err end
  if #bytes > 4294967295 then
    return nil, string.format("WAL encode payload too large: %d bytes (max 4294967295)", #bytes)
  end
  return bytes
end

local FRAME, FRAME_WORKFLOW = { frame = W.FRAME_VERSION }, { frame = W.FRAME_VERSION, features = { workflow = true } }
local MANY, MANY_WORKFLOW = { frame = W.FRAME_VERSION, many = true },
  { frame = W.FRAME_VERSION, many = true, features = { workflow = true } }

local function workflow(opts)
  local o = codec.options(opts)
  return o.features and o.features.workflow
end

--- Encodes an event to a complete framed record (header .. payload), in one C call.
-- @return string | nil, message
function codec.encode_record(event, opts)
  local rec, err = encode(event, WalEvent, workflow(opts) and FRAME_WORKFLOW or FRAME)
  if not rec then return nil, "WAL encode serialization error: " .. err end
  return rec
end

--- Encodes a list of events to their framed records, back to back, in one C call.
-- @return string | nil, message, index of the failing event
function codec.encode_records(events, opts)
  local recs, err, index = encode(events, WalEvent, workflow(opts) and MANY_WORKFLOW or MANY)
  if not recs then return nil, "WAL encode serialization error: " .. err, index end
  return recs
end

--- The variant name of an event (`"TaskCreated"`, ...).
function codec.variant(event)
  local name = next(event.event)
  return name
end

return codec
