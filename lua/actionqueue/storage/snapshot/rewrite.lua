--- `aqstore rewrite IN OUT` as a library function: IN loaded like the reference loader and
-- written canonically and atomically to OUT.
--
-- A canonical payload (byte for byte its own canonical encoding: what the engine and this
-- package write) is its own rewrite: while the streamed verdict judges IN
-- (`load.verdict`), every chunk it reads is copied into OUT's atomic writer; the frame is
-- finished only when the verdict is good and the payload canonical. No Lua tree is built
-- and memory stays bounded (issue 15.4). Any other payload (keys out of order, unknown keys,
-- defaults left out, other UUID spellings, escapes, whitespace) goes through the table
-- path: `load.load`, then `write.write` (the canonical encoder).
-- @module actionqueue.storage.snapshot.rewrite
local core = require "actionqueue.storage.core"
local load = require "actionqueue.storage.snapshot.load"
local S = require "actionqueue.storage.schema.snapshot"

local M = {}

-- The copy path: true, verdict | nil (take the table path).
local function copy(input, output)
  local w = core.atomic_writer(output)
  if not w then return nil end
  if not w:begin_frame(S.FRAME_VERSION) then w:abort() return nil end
  local r = load.verdict_result(input, w)
  if r.status == "ok" and r.canonical and r.json_version == S.FRAME_VERSION and w:finish_frame() then
    local ok, _, _, replaced = w:close()
    if ok then return true, r end
    -- the table path meets the same failure and reports it with write.write's texts
    if replaced == "replaced" then return nil end
  end
  w:abort()
  if r.status ~= "ok" then return true, r end   -- the loader's error: nothing is written
  return nil
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
  local done, r = copy(input, output)
  if done then
    if r.status == "ok" then return { tasks = r.tasks, runs = r.runs } end
    local none, err = load.verdict_outcome(r)
    return none, err, "input"
  end
  local snap, err = load.load(input)
  if not snap then return snap, err, "input" end
  -- `snap` was validated by the loader and is unchanged: no second §6 pass
  local ok, werr = require("actionqueue.storage.snapshot.write").write(output, snap, { validated = true })
  if not ok then return nil, werr, "output" end
  return { tasks = #snap.tasks, runs = #snap.runs }
end

return M
