--- Sharding: a deterministic slice of a job list.
-- Shard `I/N` (1 <= I <= N) takes the jobs whose 1-based index `k` in the full job list
-- satisfies `(k - 1) % N == I - 1`. Indexes come from the job file (or the sorted scan), so
-- every machine running the same job file with a different `I` gets a disjoint slice, and
-- the N slices together cover every job exactly once.
-- @module actionqueue.storage.batch.shard
local shard = {}

--- Parses `"I/N"`.
-- @tparam string s
-- @treturn integer I
-- @treturn integer N
-- @return nil, message
function shard.parse(s)
  local i, n = tostring(s):match("^(%d+)/(%d+)$")
  i, n = tonumber(i), tonumber(n)
  if not i or n < 1 or i < 1 or i > n then
    return nil, string.format("bad shard %q: expected I/N with 1 <= I <= N", tostring(s))
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
