--- Sharding: a deterministic slice of a job list.
-- Shard `I/N` (1 <= I <= N) takes the jobs whose 1-based index `k` in the full job list
-- satisfies `(k - 1) % N == I - 1`. Indexes come from the job file (or the sorted scan), so
-- every machine running the same job file with a different `I` gets a disjoint slice, and
-- the N slices together cover every job exactly once.
-- @module actionqueue.storage.batch.shard
local shard = {}

local function env_int(getenv, name)
  local v = getenv(name)
  if v == nil or v == "" then return nil end
  local n = tonumber(v)
  if not n or math.type(n) ~= "integer" then return nil, string.format("%s=%q is not an integer", name, v) end
  return n
end

--- The shard from a cluster scheduler's environment, for `--shard auto` (or `auto/N`):
--
-- * Slurm job array: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN` and
--   `SLURM_ARRAY_TASK_COUNT` (`#SBATCH --array=1-16` or `0-15`: I = ID - MIN + 1, N = COUNT);
-- * Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (0-based: I = index + 1) plus a count,
--   which Kubernetes does not export: `auto/N`, or `AQSTORE_SHARD_COUNT` set in the pod spec
--   (to the Job's `completions`).
-- @tparam[opt] integer count N when given as `auto/N`
-- @tparam[opt] function getenv (default `os.getenv`)
-- @treturn integer I
-- @treturn integer N
-- @return nil, message
function shard.auto(count, getenv)
  getenv = getenv or os.getenv
  local id, err = env_int(getenv, "SLURM_ARRAY_TASK_ID")
  if err then return nil, "--shard auto: " .. err end
  local i, n
  if id then
    local min, total
    min, err = env_int(getenv, "SLURM_ARRAY_TASK_MIN")
    if not err then total, err = env_int(getenv, "SLURM_ARRAY_TASK_COUNT") end
    if err then return nil, "--shard auto: " .. err end
    i, n = id - (min or 0) + 1, count or total
    if not n then return nil, "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not" end
  else
    local index
    index, err = env_int(getenv, "JOB_COMPLETION_INDEX")
    if err then return nil, "--shard auto: " .. err end
    if not index then
      return nil, "--shard auto: neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX "
        .. "(Kubernetes Indexed Job) is set"
    end
    i = index + 1
    n = count
    if not n then
      n, err = env_int(getenv, "AQSTORE_SHARD_COUNT")
      if err then return nil, "--shard auto: " .. err end
    end
    if not n then
      return nil, "--shard auto: JOB_COMPLETION_INDEX is set but not the count: use --shard auto/N "
        .. "or set AQSTORE_SHARD_COUNT"
    end
  end
  if n < 1 or i < 1 or i > n then
    return nil, string.format("--shard auto: shard %d of %d from the environment is out of range "
      .. "(a Slurm array must be contiguous, step 1)", i, n)
  end
  return i, n
end

--- Parses `"I/N"`, `"auto"` or `"auto/N"` (see `shard.auto`).
-- @tparam string s
-- @tparam[opt] function getenv for `auto` (default `os.getenv`)
-- @treturn integer I
-- @treturn integer N
-- @return nil, message
function shard.parse(s, getenv)
  s = tostring(s)
  if s == "auto" then return shard.auto(nil, getenv) end
  local count = s:match("^auto/(%d+)$")
  if count then return shard.auto(tonumber(count), getenv) end
  local i, n = s:match("^(%d+)/(%d+)$")
  i, n = tonumber(i), tonumber(n)
  if not i or n < 1 or i < 1 or i > n then
    return nil, string.format("bad shard %q: expected I/N with 1 <= I <= N, auto or auto/N", s)
  end
  return i, n
end

--- Selects shard `i` of `n` from `jobs` (keeps each job's `index`).
-- @tparam table jobs
-- @tparam integer i
-- @tparam integer n
-- @treturn table jobs of the shard
function shard.select(jobs, i, n)
  local out = {}
  for k, job in ipairs(jobs) do
    if (k - 1) % n == i - 1 then out[#out + 1] = job end
  end
  return out
end

return shard
