--- Generates large snapshots for the benchmarks by cloning the tasks and runs of the
-- golden fixture valid_12_medium_1000.snap with fresh ids (deterministic, v4-shaped).
--
--   lua5.4 bench/gen_snapshot.lua N OUT     -- N tasks + N runs (N a multiple of 1000)
--
-- The result is validated and written through snapshot.write (output under bench/data/,
-- which is git-ignored).
local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]+$") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath

local snapshot = require "actionqueue.storage.snapshot"
local fixtures = require "spec.support.fixtures"

local gen = {}

-- Deep copy of plain tables.
local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

--- Builds a snapshot of n tasks and n runs from the medium fixture.
function gen.build(n)
  local src = assert(snapshot.load(fixtures.path("snapshot", "valid_12_medium_1000.snap")))
  local base_tasks, base_runs = src.tasks, src.runs
  local copies = math.ceil(n / #base_tasks)
  local tasks, runs = {}, {}
  local serial = 0
  local function fresh(prefix)
    serial = serial + 1
    return ("%s-%04x-4000-8000-%012x"):format(prefix, serial >> 48 & 0xffff, serial & 0xffffffffffff)
  end
  for c = 1, copies do
    local map = {}
    for _, t in ipairs(base_tasks) do
      if #tasks >= n then break end
      local nt = copy(t)
      if c > 1 then
        map[t.task_spec.id] = fresh("b0000000")
        nt.task_spec.id = map[t.task_spec.id]
        if nt.task_spec.parent_task_id then
          nt.task_spec.parent_task_id = map[nt.task_spec.parent_task_id] or nt.task_spec.parent_task_id
        end
      end
      tasks[#tasks + 1] = nt
    end
    for _, r in ipairs(base_runs) do
      if #runs >= n then break end
      local nr = copy(r)
      if c > 1 then
        local ri = nr.run_instance
        ri.id = fresh("c0000000")
        ri.task_id = map[ri.task_id] or ri.task_id
        local amap = {}
        for _, a in ipairs(nr.attempts) do
          amap[a.attempt_id] = amap[a.attempt_id] or fresh("d0000000")
          a.attempt_id = amap[a.attempt_id]
        end
        if ri.current_attempt_id then ri.current_attempt_id = amap[ri.current_attempt_id] end
      end
      runs[#runs + 1] = nr
    end
  end
  src.tasks, src.runs = tasks, runs
  src.metadata.task_count, src.metadata.run_count = #tasks, #runs
  return src
end

--- Generates the file when it does not exist yet.
function gen.ensure(n, out)
  local f = io.open(out, "rb")
  if f then f:close() return out end
  os.execute("mkdir -p " .. out:match("^(.*)/[^/]*$"))
  assert(snapshot.write(out, gen.build(n)))
  return out
end

if arg and arg[0] and arg[0]:match("gen_snapshot%.lua$") and arg[1] then
  local n = assert(tonumber(arg[1]), "usage: gen_snapshot.lua N OUT")
  local out = assert(arg[2], "usage: gen_snapshot.lua N OUT")
  os.remove(out)
  gen.ensure(n, out)
  print(("wrote %s (%d tasks, %d runs)"):format(out, n, n))
end

return gen
