--- Batch job files: loading (Lua or JSON) and validation.
-- A job file is a Lua chunk returning a table, or a JSON document, of the form
-- `{defaults = {...}, jobs = {{kind = ..., input = ..., output = ...}, ...}}` (a bare list
-- of jobs is accepted too). Every field of a job may come from `defaults`.
-- Relative `input`/`output` paths are resolved against the job file's directory
-- (`base_dir`), while the report keeps the path as written.
-- Errors name the bad entry: `jobs[3].kind: unknown kind "chek"` (1-based indexes).
-- @module actionqueue.storage.batch.jobfile
local fsutil = require "actionqueue.storage.fsutil"
local kinds = require "actionqueue.storage.batch.kinds"

local jobfile = {}

--- The fields of a job: ONE table that the job-file checks and the worker wire format
-- (`jobfile.wire_fields`, read by `pool`) both read. `type`: the Lua type a job file gives;
-- `wire`: sent to the workers with the job; `derived`: made by `normalise` (resolved
-- paths), never written in a job file. Kinds add their own fields (`kinds.register`).
jobfile.FIELDS = {
  { name = "kind", type = "string", wire = true },
  { name = "input", type = "string", wire = true },
  { name = "output", type = "string", wire = true },
  { name = "timeout", type = "number" }, -- seconds, per job: the runner enforces it
  { name = "path", derived = true, wire = true }, -- input resolved against the job file's directory
  { name = "output_path", derived = true, wire = true },
}

-- The Lua type of field `name` in a job file (a kind's own fields included), or nil.
local function field_type(name)
  for _, f in ipairs(jobfile.FIELDS) do
    if f.name == name then return not f.derived and f.type or nil end
  end
  for _, k in ipairs(kinds.list) do
    if k.fields and k.fields[name] then return k.fields[name] end
  end
  return nil
end

--- Names of the fields sent to a worker with each job: the wire fields above, then every
-- kind's own fields.
-- @treturn table list of names
function jobfile.wire_fields()
  local out, seen = {}, {}
  for _, f in ipairs(jobfile.FIELDS) do
    if f.wire then out[#out + 1], seen[f.name] = f.name, true end
  end
  for _, k in ipairs(kinds.list) do
    local extra = {}
    for name in pairs(k.fields or {}) do
      if not seen[name] then extra[#extra + 1] = name end
    end
    table.sort(extra)
    for _, name in ipairs(extra) do out[#out + 1], seen[name] = name, true end
  end
  return out
end

--- Resolves `path` against `base` unless it is absolute.
-- @tparam string base directory
-- @tparam string path
-- @treturn string
function jobfile.resolve(base, path)
  if path:sub(1, 1) == "/" or base == nil or base == "." or base == "" then return path end
  return base .. "/" .. path
end

local function decode_source(path, data)
  local first = data:match("^%s*(.)")
  if path:match("%.json$") or first == "{" or first == "[" then
    local cjson = require "cjson.safe"
    local t, err = cjson.decode(data)
    if t == nil then return nil, path .. ": invalid JSON: " .. tostring(err) end
    return t
  end
  -- a job file is data: a fresh environment of copies, CPU and memory budgets (sandbox.lua)
  local t, err = require("actionqueue.storage.sandbox").run(data, path)
  if err then return nil, err.message end
  return t
end

local function check_fields(t, where)
  for k, v in pairs(t) do
    local want = type(k) == "string" and field_type(k)
    if not want then
      return nil, string.format("%s.%s: unknown field", where, tostring(k))
    end
    if type(v) ~= want then
      return nil, string.format("%s.%s: expected a %s, got %s", where, k, want, type(v))
    end
  end
  return true
end

--- Validates a decoded job table and returns the normalised job list.
-- @tparam table t the decoded file (`{defaults=, jobs=}` or a list)
-- @tparam[opt] string base_dir directory relative paths are resolved against
-- @treturn table list of jobs `{index, kind, input, output, path, output_path, timeout, ...}`
-- @return nil, message on a bad entry (`jobs[3].kind: unknown kind "chek"`)
function jobfile.normalise(t, base_dir)
  if type(t) ~= "table" then return nil, "job file: expected a table, got " .. type(t) end
  local defaults, list = t.defaults or {}, t.jobs
  if list == nil and t[1] ~= nil then list = t end
  if list == nil then list = {} end
  if type(list) ~= "table" then return nil, "jobs: expected a list" end
  if list ~= t then
    for k in pairs(t) do
      if k ~= "defaults" and k ~= "jobs" then
        return nil, string.format("%s: unknown field", tostring(k))
      end
    end
  end
  if type(defaults) ~= "table" then return nil, "defaults: expected a table" end
  local ok, err = check_fields(defaults, "defaults")
  if not ok then return nil, err end
  local n = 0
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 then return nil, "jobs: expected a list" end
    if k > n then n = k end
  end
  local jobs = {}
  for i = 1, n do
    local where = string.format("jobs[%d]", i)
    local raw = list[i]
    if type(raw) ~= "table" then
      return nil, string.format("%s: expected a table, got %s", where, type(raw))
    end
    ok, err = check_fields(raw, where)
    if not ok then return nil, err end
    local job = { index = i }
    for k, v in pairs(defaults) do job[k] = v end
    for k, v in pairs(raw) do job[k] = v end
    if job.kind == nil then return nil, where .. ".kind: missing" end
    local spec = kinds.get(job.kind)
    if not spec then
      return nil, string.format("%s.kind: unknown kind %q", where, job.kind)
    end
    if job.input == nil or job.input == "" then return nil, where .. ".input: missing" end
    if spec.output == true and (job.output == nil or job.output == "") then
      return nil, string.format("%s.output: required for kind %q", where, job.kind)
    end
    if spec.output == false and job.output ~= nil then
      return nil, string.format("%s.output: not used by kind %q", where, job.kind)
    end
    if job.timeout ~= nil and job.timeout <= 0 then
      return nil, where .. ".timeout: must be positive"
    end
    job.path = jobfile.resolve(base_dir, job.input)
    if job.output then job.output_path = jobfile.resolve(base_dir, job.output) end
    jobs[i] = job
  end
  return jobs
end

--- Loads and validates a job file.
-- @tparam string path `.lua` (a chunk returning the table) or `.json`
-- @treturn table list of normalised jobs
-- @return nil, message
function jobfile.load(path)
  local data, err = fsutil.read_file(path)
  if not data then return nil, err end
  local t
  t, err = decode_source(path, data)
  if t == nil and err then return nil, err end
  local jobs
  jobs, err = jobfile.normalise(t, fsutil.dirname(path))
  if not jobs then return nil, path .. ": " .. err end
  return jobs
end

return jobfile
