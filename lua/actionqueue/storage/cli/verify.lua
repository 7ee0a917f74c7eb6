--- `aqstore verify FILE...`: frame and CRC only (a fast integrity sweep; the JSON
-- payload is not parsed).
-- @module actionqueue.storage.cli.verify
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "verify", "Check the frame and CRC-32 of snapshot files (payload not parsed).",
    { "aqstore verify data/snapshots/*.snap", "aqstore verify --json snapshot.bin" })
  cmd:argument("files", "Snapshot files."):args("+")
  cli.json_flag(cmd)
end

--- One line describing a frame_read result (status plus the fields it carries).
function M.describe(r)
  local s = r.status
  if s == "ok" then
    return string.format("frame v%d, payload %d bytes, crc 0x%08x", r.version, r.length, r.crc)
  elseif s == "crc_mismatch" then
    return string.format("CRC-32 mismatch: expected 0x%08x, actual 0x%08x", r.expected, r.actual)
  elseif s == "bad_version" then
    return string.format("bad frame version: expected %s, found %s", tostring(r.expected), tostring(r.found))
  elseif s == "too_long" then
    return string.format("payload length %s exceeds the maximum %s", tostring(r.length), tostring(r.max))
  elseif s == "short_payload" then
    return string.format("payload truncated: length %s, got %s bytes", tostring(r.length), tostring(r.got))
  elseif s == "short_header" then
    return string.format("header truncated in the %s field (%s of its bytes)", tostring(r.field), tostring(r.got))
  elseif s == "missing" then
    return "no such file"
  elseif s == "empty" then
    return "empty file"
  elseif s == "io_error" then
    return "I/O error: " .. tostring(r.message)
  end
  return s
end

function M.run(args)
  local snapshot = require "actionqueue.storage.snapshot"
  local json = require "actionqueue.storage.inspect.json"
  local bad = 0
  local docs = json.array()
  for _, file in ipairs(args.files) do
    local r = snapshot.verify(file)
    local ok = r.status == "ok"
    if not ok then bad = bad + 1 end
    if args.json then
      local d = { file = file, ok = ok, status = r.status, offset = r.offset or json.null, detail = M.describe(r) }
      for _, k in ipairs { "version", "length", "crc", "expected", "actual", "found", "max", "got", "field" } do
        if r[k] ~= nil then d[k] = r[k] end
      end
      docs[#docs + 1] = d
    elseif ok then
      cli.out(cli.color("ok", "OK "), " ", file, ": ", M.describe(r))
    else
      cli.out(cli.color("bad", "BAD"), " ", file, ": ", r.status, " at offset ", tostring(r.offset), ": ",
        M.describe(r))
    end
  end
  if args.json then cli.json({ ok = bad == 0, bad = bad, files = docs }) end
  return bad == 0 and cli.OK or cli.BAD
end

return M
