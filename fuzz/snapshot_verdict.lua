-- libFuzzer target (differential): the streamed verdict (snapshot.verdict, csrc/verdict.c:
-- chunked read, CRC on the way, skim decoder, the rules in C) against the table path
-- (snapshot.load: the decoder building Lua values, judging the same C rules as it builds;
-- what this still compares is the two decoder modes, the streaming and the order of texts).
-- Each input is judged twice: framed with a correct CRC (so that it reaches the decoder
-- and the rules) and as a whole file (frame-level faults).  Property: both paths give
-- the same outcome, error kind, text and violation path.
local snapshot = require "actionqueue.storage.snapshot"
local load = require "actionqueue.storage.snapshot.load"
local core = require "actionqueue.storage.core"

local tmp = os.tmpname()

local function describe_err(err)
  return ("ERR %s %s %s"):format(err.kind, err.message, tostring(err.violation and err.violation.path))
end

local function by_load(path)
  local snap, err = snapshot.load(path)
  if snap == false then return "NONE" end
  if snap then return ("OK tasks=%d runs=%d"):format(#snap.tasks, #snap.runs) end
  return describe_err(err)
end

local function by_verdict(path)
  local v, err = load.verdict(path)
  if v == false then return "NONE" end
  if v then return ("OK tasks=%d runs=%d"):format(v.tasks, v.runs) end
  return describe_err(err)
end

local function judge(bytes, what)
  local f = assert(io.open(tmp, "wb"))
  f:write(bytes)
  f:close()
  local a, b = by_load(tmp), by_verdict(tmp)
  if a ~= b then error(("%s: load says %q, verdict says %q"):format(what, a, b)) end
end

return function(data)
  judge(core.frame_encode(4, data), "framed payload")
  judge(data, "whole file")
end
