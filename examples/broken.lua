-- A deliberately broken queue for `aqstore validate --all examples/broken.lua`:
-- it builds (snapshot.build with validation off fills the defaults) but breaks six of
-- the semantic rules of snapshot-format.md §6, each reported with its document path.
local T0 = 1767225600
return {
  timestamp = T0 + 3600,
  metadata = { wal_sequence = 12, task_count = 3 },            -- only 2 tasks below
  tasks = {
    { id = "b0000000-0000-4000-8000-000000000001", payload = "hello", created_at = T0,
      canceled_at = T0 - 10 },                                  -- canceled before created
    { id = "b0000000-0000-4000-8000-000000000002", payload = "world", created_at = T0 },
  },
  runs = {
    { id = "c0000000-0000-4000-8000-000000000001", task = 1, state = "Running", created_at = T0,
      attempt_count = 0,
      state_history = {                                         -- Scheduled -> Running skips Ready/Leased
        { to = "Scheduled", timestamp = T0 },
        { from = "Scheduled", to = "Running", timestamp = T0 + 5 },
      } },
    { id = "c0000000-0000-4000-8000-000000000002", task = 2, state = "Completed", created_at = T0,
      lease = { owner = "worker-9", expiry = T0 + 60, acquired_at = T0, updated_at = T0 } }, -- lease on Completed
  },
  engine = { paused = true },                                   -- paused without paused_at
  budgets = {
    { task_id = "d0000000-0000-4000-8000-00000000dead", dimension = "Token", limit = 10, consumed = 0 },
  },                                                            -- unknown task
}
