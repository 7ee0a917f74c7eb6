-- libFuzzer target: the schema-driven snapshot JSON decoder (core.json_decode through
-- snapshot.codec with the compiled schema v8), i.e. what the loader runs on a payload
-- whose frame and CRC are fine.
-- Properties: decode returns a table or (nil, message, line, column); whatever decodes
-- re-encodes canonically, and the canonical text is a fixed point of decode+encode.
local codec = require "actionqueue.storage.snapshot.codec"

return function(data)
  local snap, err = codec.decode(data)
  if snap == nil then
    assert(type(err) == "table" and err.kind == "DecodeError", "decode error shape")
    assert(math.type(err.line) == "integer" and math.type(err.column) == "integer", "position")
    return
  end
  assert(type(snap) == "table", "decode result")
  local text, eerr = codec.encode(snap)
  if not text then
    -- Values the decoder accepts must be encodable.
    error("decoded snapshot does not encode: " .. tostring(eerr))
  end
  local again, derr = codec.decode(text)
  assert(again, "canonical text does not decode: " .. tostring(derr))
  assert(codec.encode(again) == text, "canonical text is not a fixed point")
end
