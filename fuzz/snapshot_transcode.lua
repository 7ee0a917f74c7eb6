-- libFuzzer target (differential): the transcoding rewrite (snapshot.rewrite: the skim
-- parser's values straight into the canonical emitter, csrc/transcode.c, and the atomic
-- writer) against the table path (rewrite.by_tables: snapshot.load, then the canonical
-- encoder and snapshot.write).
-- Each input is rewritten twice: framed with a correct CRC (so that it reaches the parser,
-- the emitter and the rules) and as a whole file (frame-level faults). Both outputs start
-- with the same previous content.
-- Properties: the same outcome (counts, "no snapshot", or the same error kind, text and
-- side); on success byte-identical outputs; on error (or no snapshot) nothing written:
-- the output keeps its previous content and no temp file is left beside it.
-- lfs (a system module; the core stays the statically linked one) for the temp dir
package.cpath = package.cpath .. ";/usr/local/lib/lua/5.4/?.so;/usr/lib/x86_64-linux-gnu/lua/5.4/?.so"
  .. ";/usr/lib/lua/5.4/?.so"
local lfs = require "lfs"
local core = require "actionqueue.storage.core"
local snapshot = require "actionqueue.storage.snapshot"
local rewrite = require "actionqueue.storage.snapshot.rewrite"

-- tmpfs when there is one: every rewrite fsyncs its output and directory
local base = io.open("/dev/shm", "rb") and "/dev/shm" or (os.getenv("TMPDIR") or "/tmp")
-- a temp dir per input, removed before the driver returns (or raises)
local dir = ("%s/aqs-fuzz-transcode-%d-%d"):format(base, os.time(), math.random(1 << 30))
local IN, OUT_T, OUT_B = dir .. "/in.snap", dir .. "/transcoded.snap", dir .. "/tables.snap"
local PREVIOUS = "previous content, must survive a failed rewrite"

local function put(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end
local function get(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

local function outcome(r, err, side)
  if r == false then return "NONE" end
  if r then return ("OK tasks=%d runs=%d"):format(r.tasks, r.runs) end
  return ("ERR %s side=%s %s path=%s"):format(tostring(err and err.kind), tostring(side),
    tostring(err and err.message), tostring(err and err.violation and err.violation.path))
end

local MINE = { ["."] = true, [".."] = true, ["in.snap"] = true, ["transcoded.snap"] = true,
  ["tables.snap"] = true }
local function leftovers()
  local n = 0
  for name in lfs.dir(dir) do
    if not MINE[name] then n = n + 1 end
  end
  return n
end

local function judge(bytes, what)
  put(IN, bytes)
  put(OUT_T, PREVIOUS)
  put(OUT_B, PREVIOUS)
  local a = outcome(snapshot.rewrite(IN, OUT_T))
  local b = outcome(rewrite.by_tables(IN, OUT_B))
  if a ~= b then error(("%s: transcoder says %q, tables say %q"):format(what, a, b)) end
  local ta, tb = get(OUT_T), get(OUT_B)
  if a:sub(1, 3) == "OK " then
    if ta ~= tb then
      error(("%s: outputs differ (%d vs %d bytes)"):format(what, #(ta or ""), #(tb or "")))
    end
  else
    assert(ta == PREVIOUS, what .. ": the transcoder changed the output on " .. a)
    assert(tb == PREVIOUS, what .. ": the table path changed the output on " .. a)
  end
  assert(leftovers() == 0, what .. ": a temp file was left behind")
end

local function clean()
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then os.remove(dir .. "/" .. name) end
  end
  lfs.rmdir(dir)
end

-- (the second value, the temp dir, is for the spec)
return function(data)
  assert(lfs.mkdir(dir))
  local ok, err = pcall(function()
    judge(core.frame_encode(4, data), "framed payload")
    judge(data, "whole file")
  end)
  clean()
  if not ok then error(err, 0) end
end, dir
