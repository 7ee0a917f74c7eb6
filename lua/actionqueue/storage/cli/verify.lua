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

function M.run(args)
  local snapshot = require "actionqueue.storage.snapshot"
  local json = require "actionqueue.storage.inspect.json"
  local filekind = require "actionqueue.storage.filekind"
  local bad = 0
  local docs = json.array()
  for _, file in ipairs(args.files) do
    local r = snapshot.verify(file)
    local ok = r.status == "ok"
    local detail = snapshot.describe_frame(r)
    if not ok then bad = bad + 1 end
    if args.json then
      local d = { file = file, ok = ok, status = r.status, offset = r.offset or json.null, detail = detail }
      for _, k in ipairs { "version", "length", "crc", "expected", "actual", "found", "max", "got", "field" } do
        if r[k] ~= nil then d[k] = r[k] end
      end
      local looks = not ok and filekind.sniff(file)
      if looks and looks.kind ~= "snapshot" then
        d.looks_like = looks.kind
        d.hint = filekind.hint(file)
      end
      docs[#docs + 1] = d
    elseif ok then
      cli.out(cli.color("ok", "OK "), " ", file, ": ", detail)
    else
      cli.out(cli.color("bad", "BAD"), " ", file, ": ", r.status, " at offset ", tostring(r.offset), ": ", detail)
      io.stdout:flush()
      cli.hint(file)
    end
  end
  if args.json then cli.json({ ok = bad == 0, bad = bad, files = docs }) end
  return bad == 0 and cli.OK or cli.BAD
end

return M
