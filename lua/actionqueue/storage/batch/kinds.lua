--- Running one batch job (inside a worker process).
-- `kinds.run(job)` returns a result table: `status` ("ok" | "failed"), `error` (text or nil),
-- `error_kind`, `bytes` (input size), the input fingerprint (`input_size`, `input_mtime`,
-- `input_crc`) and, for jobs with an output, `output_crc` / `output_bytes` of the file written.
-- Outputs are only written through `snapshot.write` (atomic: temp sibling, fsync, rename).
-- @module actionqueue.storage.batch.kinds
local fingerprint = require "actionqueue.storage.batch.fingerprint"

local kinds = {}

-- The snapshot module, required when a worker runs its first job: the runner, which
-- reads the table of kinds below too, never loads it. A plain require: it is part of the
-- package, so its absence is an installation error, raised as such.
local function snapshot_api()
  return require "actionqueue.storage.snapshot"
end

local function errtext(err)
  if type(err) == "table" then return tostring(err.message or err), err.kind end
  return tostring(err), nil
end

local runners = {}

-- `snapshot.check`: ok exactly when `aqstore check` prints `OK ...`; NONE is a failure
-- ("no snapshot"); otherwise the error is the text after `ERR `.
function runners.check(job, res)
  local snapshot = snapshot_api()
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
  local snapshot = snapshot_api()
  local r = snapshot.verify(job.path)
  if r.status == "ok" then
    res.length = r.length
    return true
  end
  return nil, snapshot.describe_frame(r), r.status
end

-- The job's input loaded (`snapshot.load`): snap | nil, text, kind (NoSnapshot when none).
local function load_input(snapshot, job)
  local snap, err = snapshot.load(job.path)
  if snap == false then return nil, "no snapshot", "NoSnapshot" end
  if not snap then return nil, errtext(err) end
  return snap
end

function runners.validate(job, res)
  local snapshot = snapshot_api()
  local snap, load_text, load_kind = load_input(snapshot, job)
  if not snap then return nil, load_text, load_kind end
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

-- The one source reader of `aqstore build` (actionqueue.storage.source): Lua in the
-- sandbox, JSON exact.
function runners.build(job)
  local snapshot, merr = snapshot_api()
  if not snapshot then return nil, merr, "Unavailable" end
  local snap, err = require("actionqueue.storage.source").snapshot(job.path)
  if not snap then return nil, err.detail, err.kind end
  return write_output(snapshot, job, snap)
end

-- `snapshot.rewrite`, as `aqstore rewrite` does: the input is judged and transcoded
-- straight into the output's atomic writer, without a Lua tree (issue 15.4).
function runners.rewrite(job, res)
  local snapshot = snapshot_api()
  local done, err, side = snapshot.rewrite(job.path, job.output_path)
  if done == false then return nil, "no snapshot", "NoSnapshot" end
  if not done then
    if side == "output" then
      local text, kind = output_error(job, err)
      return nil, text, kind or "WriteError"
    end
    return nil, errtext(err)
  end
  res.tasks, res.runs = done.tasks, done.runs
  return true
end

function runners.compact(job, res)
  local recovery = require "actionqueue.storage.recovery"
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

--- The job kinds, in the order the help lists them: ONE table that the job-file checks
-- (`jobfile`), `--scan`, the workers (`kinds.run`) and the help text (`cli/batch.lua`) all
-- read. `output`: true (required), false (not allowed) or "optional"; `fields`: fields this
-- kind adds to a job (name = Lua type), sent to the workers with the job; `does`: one line
-- for the help; `run(job, res)`: true | nil, error text, error kind.
kinds.list = {}
local by_name = {}

--- Registers a job kind (the built-in ones below, or one of a plugin: a test kind in the
-- specs registers itself this way).
-- @tparam table spec `name`, `output`, `does`, `run`, optional `fields`, and `module` (the
--   module that registers it: the workers require it before their first job, so a kind
--   registered outside the library runs there too)
function kinds.register(spec)
  assert(type(spec.name) == "string" and type(spec.run) == "function", "kinds.register: name and run expected")
  if not by_name[spec.name] then kinds.list[#kinds.list + 1] = spec end
  for i, k in ipairs(kinds.list) do
    if k.name == spec.name then kinds.list[i] = spec end
  end
  by_name[spec.name] = spec
end

--- The kind named `name`, or nil.
function kinds.get(name)
  return by_name[name]
end

--- Names of the registered kinds, in order.
-- @treturn table list of names
function kinds.names()
  local out = {}
  for i, k in ipairs(kinds.list) do out[i] = k.name end
  return out
end

--- Modules the workers must require before running jobs (see `kinds.register`).
-- @treturn table list of module names
function kinds.modules()
  local out = {}
  for _, k in ipairs(kinds.list) do
    if k.module then out[#out + 1] = k.module end
  end
  return out
end

kinds.register({ name = "check", output = false, run = runners.check,
  does = "snapshot.load: ok when `aqstore check` prints OK" })
kinds.register({ name = "verify", output = false, run = runners.verify,
  does = "frame + CRC only (snapshot.verify)" })
kinds.register({ name = "validate", output = false, run = runners.validate,
  does = "load + snapshot.validate (every violation)" })
kinds.register({ name = "build", output = true, run = runners.build,
  does = "build the Lua/JSON table in input, write output" })
kinds.register({ name = "rewrite", output = true, run = runners.rewrite,
  does = "snapshot.rewrite: input judged and written canonically to output (no Lua tree)" })
kinds.register({ name = "compact", output = true, run = runners.compact, fields = { timestamp = "number" },
  does = "recovery.compact of the data dir input into output" })

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
  local spec = by_name[job.kind]
  if not spec then
    res.status, res.error, res.error_kind = "failed", string.format("unknown kind %q", tostring(job.kind)),
      "InternalError"
    return res
  end
  local runner = spec.run
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
