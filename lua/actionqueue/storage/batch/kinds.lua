--- Running one batch job (inside a worker process).
-- `kinds.run(job)` returns a result table: `status` ("ok" | "failed"), `error` (text or nil),
-- `error_kind`, `bytes` (input size), the input fingerprint (`input_size`, `input_mtime`,
-- `input_crc`) and, for jobs with an output, `output_crc` / `output_bytes` of the file written.
-- Outputs are only written through `snapshot.write` (atomic: temp sibling, fsync, rename).
-- @module actionqueue.storage.batch.kinds
local fingerprint = require "actionqueue.storage.batch.fingerprint"
local fsutil = require "actionqueue.storage.fsutil"

local kinds = {}

local function snapshot_api()
  local ok, mod = pcall(require, "actionqueue.storage.snapshot")
  if ok then return mod end
  return nil, "snapshot module not available: " .. tostring(mod)
end

local function errtext(err)
  if type(err) == "table" then return tostring(err.message or err), err.kind end
  return tostring(err), nil
end

local runners = {}

-- `snapshot.check`: ok exactly when `aqstore check` prints `OK ...`; NONE is a failure
-- ("no snapshot"); otherwise the error is the text after `ERR `.
function runners.check(job, res)
  local snapshot, merr = snapshot_api()
  if not snapshot then return nil, merr, "Unavailable" end
  local c = snapshot.check(job.path)
  if c.status == "ok" then
    res.tasks, res.runs = c.tasks, c.runs
    return true
  elseif c.status == "none" then
    return nil, "no snapshot", "NoSnapshot"
  end
  return nil, c.message, c.kind
end

-- Frame and CRC only (`snapshot.verify`), described by `snapshot.describe_frame`.
function runners.verify(job, res)
  local snapshot, merr = snapshot_api()
  if not snapshot then return nil, merr, "Unavailable" end
  local r = snapshot.verify(job.path)
  if r.status == "ok" then
    res.length = r.length
    return true
  end
  return nil, snapshot.describe_frame(r), r.status
end

function runners.validate(job, res)
  local snapshot, merr = snapshot_api()
  if not snapshot then return nil, merr, "Unavailable" end
  local snap, err = snapshot.load(job.path)
  if snap == false then return nil, "no snapshot", "NoSnapshot" end
  if not snap then
    local text, kind = errtext(err)
    return nil, text, kind
  end
  local violations = snapshot.validate(snap, { all = true }) or {}
  res.violations = #violations
  if #violations == 0 then return true end
  local first = violations[1]
  local text = first.message or tostring(first)
  if first.path and first.path ~= "" then text = first.path .. ": " .. text end
  if #violations > 1 then text = text .. string.format(" (and %d more)", #violations - 1) end
  return nil, text, first.kind or "ValidationError"
end

-- A failed write names the output, not the input the job read: the writer's I/O error
-- text (`I/O error when opening snapshot file: ...`, the engine's) says neither.
local function output_error(job, err)
  local text, kind = errtext(err)
  if kind == "IoError" and not text:find(job.output_path, 1, true) then
    text = "output " .. job.output .. ": " .. text
  end
  return text, kind
end

local function write_output(snapshot, job, snap)
  local ok, err = snapshot.write(job.output_path, snap)
  if not ok then
    local text, kind = output_error(job, err)
    return nil, text, kind or "WriteError"
  end
  return true
end

local function read_table(path)
  local data, err = fsutil.read_file(path)
  if not data then return nil, err end
  if path:match("%.json$") then
    local t, jerr = require("cjson.safe").decode(data)
    if t == nil then return nil, path .. ": invalid JSON: " .. tostring(jerr) end
    return t
  end
  local chunk, lerr = load(data, "@" .. path, "t", {})
  if not chunk then return nil, lerr end
  local ok, t = pcall(chunk)
  if not ok then return nil, tostring(t) end
  return t
end

function runners.build(job)
  local snapshot, merr = snapshot_api()
  if not snapshot then return nil, merr, "Unavailable" end
  local t, err = read_table(job.path)
  if not t then return nil, tostring(err), "IoError" end
  local snap
  snap, err = snapshot.build(t)
  if not snap then
    local text, kind = errtext(err)
    return nil, text, kind or "BuildError"
  end
  return write_output(snapshot, job, snap)
end

function runners.rewrite(job)
  local snapshot, merr = snapshot_api()
  if not snapshot then return nil, merr, "Unavailable" end
  local snap, err = snapshot.load(job.path)
  if snap == false then return nil, "no snapshot", "NoSnapshot" end
  if not snap then
    local text, kind = errtext(err)
    return nil, text, kind
  end
  return write_output(snapshot, job, snap)
end

function runners.compact(job, res)
  local ok, recovery = pcall(require, "actionqueue.storage.recovery")
  if not ok or type(recovery) ~= "table" or type(recovery.compact) ~= "function" then
    return nil, "compact not available (actionqueue.storage.recovery.compact is missing)", "Unavailable"
  end
  local done, info = recovery.compact(job.path, { timestamp = job.timestamp, out = job.output_path })
  if not done then
    local text, kind
    if type(info) == "table" and info.stage == "write" then text, kind = output_error(job, info)
    else text, kind = errtext(info) end
    return nil, text, kind or "CompactError"
  end
  if type(info) == "table" then
    for _, k in ipairs({ "tasks", "runs", "events" }) do
      if type(info[k]) == "number" then res[k] = info[k] end
    end
  end
  return true
end

-- Test-only kind (enabled by AQ_BATCH_TEST_KINDS=1): exercises the runner's failure paths.
function runners.test(job)
  local action = job.action or "ok"
  if action == "sleep" then
    os.execute(string.format("sleep %.3f", job.seconds or 1))
    return true
  elseif action == "hang" then
    -- blocks on the job pipe: the runner never writes to a busy worker
    io.stdin:read("a")
    return true
  elseif action == "copy" or action == "copy_crash" then
    -- reads the input and writes it to the output as one frame through the AtomicWriter,
    -- slowly when `seconds` is set (a stand-in for rewrite jobs in kill/resume specs);
    -- `copy_crash` exits the worker half way, leaving the writer's temp file behind
    local data = assert(fsutil.read_file(job.path))
    local core = require "actionqueue.storage.core"
    local w, err = core.atomic_writer(job.output_path)
    if not w then return nil, err, "IoError" end
    assert(w:begin_frame(4))
    local step = math.max(1, #data // 10)
    for i = 1, #data, step do
      assert(w:write(data:sub(i, i + step - 1)))
      if action == "copy_crash" and i > #data // 2 then os.exit(3, false) end
      if job.seconds then os.execute(string.format("sleep %.3f", job.seconds / 10)) end
    end
    assert(w:finish_frame())
    local ok, cerr = w:close()
    if not ok then return nil, cerr, "IoError" end
    return true
  elseif action == "fail" then
    return nil, "test failure", "TestFailure"
  elseif action == "crash" then
    os.exit(3, false)
  elseif action == "error" then
    error("test error")
  end
  return true
end

--- Runs one job and returns its result table (never raises).
-- @tparam table job a normalised job (see `batch.jobfile`)
-- @treturn table result
function kinds.run(job)
  local res = { status = "ok" }
  local fp = fingerprint.of_input(job)
  if fp then
    res.bytes = fp.size
    res.input_size, res.input_mtime, res.input_crc = fp.size, fp.mtime, fp.crc
  else
    res.bytes = 0
  end
  local runner = runners[job.kind]
  local trace
  local ok, done, err, kind = xpcall(runner, function(e)
    trace = debug.traceback(nil, 2)
    return e
  end, job, res)
  if not ok then
    res.status, res.error, res.error_kind = "failed", tostring(done), "InternalError"
    res.traceback = trace
  elseif not done then
    res.status, res.error, res.error_kind = "failed", tostring(err), kind or "Error"
  end
  if res.status == "ok" and job.output_path then
    local crc, n = fingerprint.file_crc(job.output_path)
    if crc then res.output_crc, res.output_bytes = crc, n end
  end
  return res
end

return kinds
