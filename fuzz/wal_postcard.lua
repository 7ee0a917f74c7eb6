-- libFuzzer target: the WAL record payload decoder (core.postcard_decode over the
-- WalEvent schema) in both builds (default, workflow) and in skim mode.
-- Properties: decode and skim agree (same consumed count, sequence and variant, or
-- both fail with the same text); a decoded event re-encodes and decodes to the same
-- encoding.
local codec = require "actionqueue.storage.wal.codec"

local BUILDS = { {}, { workflow = true } }

return function(data)
  for _, opts in ipairs(BUILDS) do
    local ev, consumed = codec.decode_payload(data, opts)
    local sk, seq, variant = codec.skim_payload(data, opts)
    if ev == nil then
      assert(type(consumed) == "string", "error message")
      assert(sk == nil and seq == consumed, "skim/decode disagree on failure: " ..
        tostring(consumed) .. " vs " .. tostring(seq))
    else
      assert(math.type(consumed) == "integer" and consumed >= 1 and consumed <= #data, "consumed")
      assert(sk == consumed, "skim consumed differs")
      assert(seq == ev.sequence and variant == codec.variant(ev), "skim root differs")
      local bytes, eerr = codec.encode_payload(ev, opts)
      assert(bytes, "decoded event does not encode: " .. tostring(eerr))
      local ev2, c2 = codec.decode_payload(bytes, opts)
      assert(ev2 and c2 == #bytes, "re-encoding does not decode")
      assert(codec.encode_payload(ev2, opts) == bytes, "encoding is not a fixed point")
    end
  end
end
