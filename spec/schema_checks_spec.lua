-- The decode-time checks (snapshot-format.md §3.6, wal-format.md §8.4) of TaskSpec,
-- TaskConstraints, RunInstance and the Repeat policy exist once, in C (csrc/checks.c):
-- no Lua copy of their texts, the schema names the native checks, and every path reaches
-- the same text: the JSON loader (snapshot.load: the verdict's hooks), the streamed
-- verdict (snapshot.check), the JSON codec (snapshot.decode: the schema's check refs),
-- postcard decoding of a WAL event and snapshot.build (on the table it built).
local core = require "actionqueue.storage.core"
local dsl = require "actionqueue.storage.schema.dsl"
local T = require "actionqueue.storage.schema.types"
local W = require "actionqueue.storage.schema.wal"
local snapshot = require "actionqueue.storage.snapshot"
local files = require "support.files"

local NIL = T.NIL_UUID
local TASK = "6f2b0c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
local RUN = "0e9d8c7b-6a59-4837-a261-5f4e3d2c1b0a"
local ATTEMPT = "a77e0000-0000-4000-8000-000000000001"

-- One case per rule: the field values breaking it (merged into a valid TaskSpec or
-- RunInstance) and the reference's text.
local CASES = {
  { "Repeat", { run_policy = { Repeat = { count = 0, interval_secs = 60 } } },
    "invalid repeat count: 0 (must be >= 1)" },
  { "Repeat", { run_policy = { Repeat = { count = 3, interval_secs = 0 } } },
    "invalid repeat interval_secs: 0 (must be >= 1)" },
  { "TaskConstraints", { constraints = { max_attempts = 0 } }, "invalid max_attempts value: 0 (must be >= 1)" },
  { "TaskConstraints", { constraints = { max_attempts = 1, timeout_secs = 0 } }, "timeout_secs must not be zero" },
  { "TaskConstraints", { constraints = { max_attempts = 1, concurrency_key = "" } },
    "concurrency key must not be an empty string" },
  { "TaskConstraints", { constraints = { max_attempts = 1, required_capabilities = {} } },
    "required capabilities list must not be empty" },
  { "TaskConstraints", { constraints = { max_attempts = 1, required_capabilities = { "gpu", "" } } },
    "required_capabilities contains an empty string" },
  { "TaskSpec", { id = NIL }, "invalid task identifier for task admission: " .. NIL },
  { "RunInstance", { id = NIL }, "run_id must not be nil" },
  { "RunInstance", { task_id = NIL }, "task_id must not be nil" },
  { "RunInstance", { state = "Scheduled", current_attempt_id = ATTEMPT, attempt_count = 1 },
    "active attempt_id is only valid in Running state" },
  { "RunInstance", { state = "Completed", current_attempt_id = ATTEMPT, attempt_count = 1 },
    "active attempt_id is only valid in Running state" },
  { "RunInstance", { state = "Ready", created_at = 100, scheduled_at = 101 },
    "Ready state requires scheduled_at (101) <= created_at (100)" },
  -- (a u64 above 2^63-1: build takes only the integers of the friendly range)
  { "RunInstance", { state = "Ready", created_at = 5, scheduled_at = -1 },
    "Ready state requires scheduled_at (18446744073709551615) <= created_at (5)", no_build = true },
}

local function merge(base, over)
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  for k, v in pairs(over) do out[k] = v end
  return out
end

local function task_spec(over)
  over = merge(over or {}, {})
  if over.constraints then
    over.constraints = merge({ max_attempts = 1, concurrency_key_hold_policy = "HoldDuringRetry",
      safety_level = "Pure" }, over.constraints)
  end
  return merge({ id = TASK, payload = { bytes = "hi" }, run_policy = "Once",
    constraints = { max_attempts = 1, concurrency_key_hold_policy = "HoldDuringRetry", safety_level = "Pure" },
    metadata = { tags = {}, priority = 0 } }, over)
end

local function run_instance(over)
  return merge({ id = RUN, task_id = TASK, state = "Scheduled", attempt_count = 0,
    created_at = 100, scheduled_at = 100, effective_priority = 0, last_state_change_at = 100 }, over)
end

local function is_run(case) return case[1] == "RunInstance" end

-- A whole snapshot holding the case's task (and run), as a Lua table.
local function snapshot_table(case)
  local spec, ri = task_spec(is_run(case) and {} or case[2]), run_instance(is_run(case) and case[2] or {})
  local st = ri.state
  return {
    version = 4, timestamp = 0,
    metadata = { schema_version = 8, wal_sequence = 2, task_count = 1, run_count = 1 },
    tasks = { { task_spec = spec, created_at = 100 } },
    runs = { { run_instance = ri, state_history = { { to = "Scheduled", timestamp = 100 },
      st ~= "Scheduled" and { from = "Scheduled", to = st, timestamp = 100 } or nil }, attempts = {} } },
    engine = { paused = false }, dependency_declarations = {}, budgets = {}, subscriptions = {},
    actors = {}, tenants = {}, role_assignments = {}, capability_grants = {}, ledger_entries = {},
  }
end

-- The canonical JSON payload of that snapshot (the encoder runs no checks).
local function payload(case)
  return assert(snapshot.encode(snapshot_table(case)))
end

local function text_of(msg)
  return (tostring(msg):gsub("^Decode error: Failed to decode snapshot: ", ""):gsub(" at line %d+ column %d+$", ""))
end

describe("schema checks: one implementation, in C", function()
  local tmpdir = files.tmpdir()
  teardown(function() files.rmtree(tmpdir) end)

  it("no Lua file holds a check text; the schema names the C core's checks", function()
    local p = io.popen("find lua -name '*.lua' -print")
    local names = {}
    for line in p:lines() do names[#names + 1] = line end
    p:close()
    assert.is_true(#names > 10)
    for _, name in ipairs(names) do
      local f = assert(io.open(name, "rb"))
      local src = f:read("a")
      f:close()
      for _, case in ipairs(CASES) do
        local text = case[3]:gsub(" %(%d+%) <= created_at %(%d+%)$", ""):gsub(": 0000.*$", "")
        assert.is_nil(src:find(text, 1, true), name .. " holds the check text " .. text)
      end
    end
    assert.equal("C", debug.getinfo(T.TaskSpec.check, "S").what)
    assert.equal("C", debug.getinfo(T.TaskConstraints.check, "S").what)
    assert.equal("C", debug.getinfo(T.RunInstance.check, "S").what)
    assert.equal("C", debug.getinfo(T.RunPolicy.by_name.Repeat.check, "S").what)
    assert.has_error(function() dsl.native("Nope") end)
  end)

  it("every rule's text is the same through load, check, decode, postcard and build", function()
    for i, case in ipairs(CASES) do
      local what, want = ("case %d (%s)"):format(i, case[3]), case[3]
      -- JSON: the codec (schema check refs), the loader and the verdict (hooks)
      local p = payload(case)
      local snap, err = snapshot.decode(p)
      assert.is_nil(snap, what)
      assert.equal(want, text_of(err.message), what .. ": decode")
      local path = tmpdir .. "/s" .. i .. ".snap"
      files.write(path, core.frame_encode(4, p))
      local loaded, lerr = snapshot.load(path)
      assert.is_nil(loaded, what)
      assert.equal("DecodeError", lerr.kind, what)
      assert.equal(want, text_of(lerr.message), what .. ": load")
      assert.equal(lerr.message, snapshot.check(path).message, what .. ": check")
      -- postcard: a WAL event carrying the TaskSpec / RunInstance
      local t = snapshot_table(case)
      local ev = is_run(case)
        and { sequence = 1, event = { RunCreated = { run_instance = t.runs[1].run_instance } } }
        or { sequence = 1, event = { TaskCreated = { task_spec = t.tasks[1].task_spec, timestamp = 1 } } }
      local bytes = assert(core.postcard_encode(ev, W.WalEvent))
      local back, perr = core.postcard_decode(bytes, W.WalEvent)
      assert.is_nil(back, what)
      assert.equal("invalid value: " .. want, perr, what .. ": postcard")
      -- build: the table built from friendly input
      if case.no_build then goto next end
      local built, berr = snapshot.build(is_run(case) and { tasks = { task_spec() }, runs = { run_instance(case[2]) } }
        or { tasks = { task_spec(case[2]) } })
      assert.is_nil(built, what)
      assert.equal(want, (tostring(berr.message or berr):gsub("^.-: ", "", 1):gsub("^[%w%.%[%]_]+: ", "")),
        what .. ": build")
      ::next::
    end
  end)
end)
