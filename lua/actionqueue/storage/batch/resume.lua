--- `--resume REPORT`: which jobs can be skipped because an earlier run already did them.
-- A job is skipped when the earlier report (or its journal, after a kill) has an entry for
-- the same kind, input and output with status "ok" (or "skipped", i.e. done even earlier),
-- its input is unchanged (size + mtime + CRC-32 equal to the recorded `input_*`), and, when
-- the job has an output, the output file still has the recorded `output_crc`.
-- @module actionqueue.storage.batch.resume
local fingerprint = require "actionqueue.storage.batch.fingerprint"
local report = require "actionqueue.storage.batch.report"
local fsutil = require "actionqueue.storage.fsutil"

local resume = {}

--- Loads the earlier report as a lookup table.
-- @tparam string path report (or journal) path
-- @treturn table done entries by key
-- A missing report (and journal) means nothing was done yet: an empty table.
-- @return nil, message when the report exists but cannot be read
function resume.load(path)
  local entries, err = report.load(path)
  if not entries then
    -- no earlier report at all: nothing is done yet (so scripts may always pass --resume)
    if not fsutil.exists(path) and not fsutil.exists(path .. ".journal") then return {} end
    return nil, err
  end
  -- a final report plus a journal: a later run was killed; its entries are newer
  if not path:match("%.journal$") and fsutil.exists(path .. ".journal") then
    local later = report.load(path .. ".journal")
    for _, e in ipairs(later or {}) do entries[#entries + 1] = e end
  end
  local done = {}
  for _, e in ipairs(entries) do
    if (e.status == "ok" or e.status == "skipped") and e.input_crc then
      done[report.key(e)] = e
    end
  end
  return done
end

--- The earlier entry that lets `job` be skipped, or nil.
-- @tparam table done from `resume.load`
-- @tparam table job normalised job
-- @treturn table|nil earlier entry
function resume.skippable(done, job)
  local e = done[report.key(job)]
  if not e then return nil end
  local fp = fingerprint.of_input(job)
  if not fingerprint.same(fp, { size = e.input_size, mtime = e.input_mtime, crc = e.input_crc }) then
    return nil
  end
  if job.output_path then
    if not e.output_crc then return nil end
    local crc = fingerprint.file_crc(job.output_path)
    if crc ~= e.output_crc then return nil end
  end
  return e
end

return resume
