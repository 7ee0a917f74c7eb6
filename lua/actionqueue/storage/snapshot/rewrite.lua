--- `aqstore rewrite IN OUT` as a library function: IN loaded like the reference loader and
-- written canonically and atomically to OUT.
--
-- The rewrite transcodes (issue 15.4): while the streamed verdict judges IN
-- (`load.verdict_result` with `transcode`), the skim parser hands every value it accepts
-- to the canonical emitter (csrc/transcode.c), which writes the canonical encoding into
-- OUT's atomic writer: keys in schema order, defaults filled in, ids, escapes and unit
-- variants in their canonical spelling, no whitespace. No Lua tree is built; memory is
-- bounded by the fields that arrive before the fields they follow in schema order. The
-- frame is finished only when the verdict is good; otherwise the writer is aborted and
-- OUT keeps its previous content. The output is byte for byte what the table path
-- (`load.load`, then `write.write`: the canonical encoder) writes; `M.by_tables` keeps
-- that path for the differential specs.
--
-- A canonical payload (what the engine and this package write) is its own rewrite, and a
-- copy is cheaper than re-encoding: the payload is first copied while judged; at the
-- first list element after something non-canonical (in practice within the first few
-- hundred bytes) the copy is given up and the payload transcoded instead.
-- @module actionqueue.storage.snapshot.rewrite
local core = require "actionqueue.storage.core"
local load = require "actionqueue.storage.snapshot.load"
local S = require "actionqueue.storage.schema.snapshot"

local M = {}

-- One pass of the verdict with OUT's writer: true, verdict | nil (take the table path:
-- the writer failed before anything was judged, or the document's version is not the one
-- the writer accepts; the table path reports these with write.write's texts).
-- transcode = false copies the payload; then the verdict may be "not_canonical".
local function pass(input, output, transcode)
  local w = core.atomic_writer(output)
  if not w then return nil end
  if not w:begin_frame(S.FRAME_VERSION) then w:abort() return nil end
  local r = load.verdict_result(input, w, transcode)
  if r.status == "ok" and r.json_version == S.FRAME_VERSION and (transcode or r.canonical)
      and w:finish_frame() then
    local ok, _, _, replaced = w:close()
    if ok then return true, r end
    -- the table path meets the same failure and reports it with write.write's texts
    if replaced == "replaced" then return nil end
  end
  w:abort()
  if r.status ~= "ok" then return true, r end   -- the loader's error: nothing is written
  return nil
end

--- The table path (load into Lua tables, then the canonical encoder): what the
-- transcoding rewrite must equal byte for byte (the differential specs).
-- @tparam string input
-- @tparam string output
-- @return like `rewrite`
function M.by_tables(input, output)
  local snap, err = load.load(input)
  if not snap then return snap, err, "input" end
  -- `snap` was validated by the loader and is unchanged: no second §6 pass
  local ok, werr = require("actionqueue.storage.snapshot.write").write(output, snap, { validated = true })
  if not ok then return nil, werr, "output" end
  return { tasks = #snap.tasks, runs = #snap.runs }
end

--- Rewrites the snapshot at `input` canonically and atomically to `output`.
-- @tparam string input
-- @tparam string output
-- @return `{tasks = N, runs = M}` | `false` (no snapshot at `input`; nothing written) |
--   `nil, err, side` (the loader's error for `input`, side = "input", or the writer's for
--   `output`, side = "output", like `snapshot.load` and `snapshot.write`; `output` keeps
--   its previous content)
function M.rewrite(input, output)
  assert(type(input) == "string" and type(output) == "string", "snapshot.rewrite: input, output paths expected")
  local done, r = pass(input, output, false)
  if not done or r.status == "not_canonical" or (r.status == "ok" and not r.canonical) then
    done, r = pass(input, output, true)
  end
  if done then
    if r.status == "ok" then return { tasks = r.tasks, runs = r.runs } end
    local none, err = load.verdict_outcome(r)
    return none, err, "input"
  end
  return M.by_tables(input, output)
end

return M
