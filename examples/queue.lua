-- A small but realistic ActionQueue: `aqstore build examples/queue.lua queue.snap`.
-- The table has the shape of the snapshot document (docs/ARCHITECTURE.md): byte strings
-- are Lua strings, absent optionals are simply left out, enums are strings or one-key
-- tables. Times are Unix seconds (T0 = 2026-01-01T00:00:00Z).
local T0 = 1767225600
local NOW = T0 + 7200

-- ids
local acme        = "5f1c9a2e-8b3d-4c6f-9e21-7a4b3c2d1e0f"
local worker      = "a8d2e4f6-1b3c-4d5e-8f70-9a1b2c3d4e5f"
local t_email     = "7a5c41d2-9e8f-4a1b-b2c3-d4e5f6a7b8c9"
local t_report    = "3b9e7f10-2c4d-4e6f-8a1b-0c2d3e4f5a6b"
local t_resize    = "c4d8e2a1-6b7c-4d8e-9f01-a2b3c4d5e6f7"
local t_cleanup   = "e91f0a3b-4c5d-4e6f-a7b8-c9d0e1f2a3b4"
local r_email     = "0e9d8c7b-6a59-4837-a261-5f4e3d2c1b0a"
local r_report1   = "1f2e3d4c-5b6a-4978-8877-665544332211"
local r_report2   = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
local r_resize    = "4d5e6f70-8192-4a3b-bc4d-5e6f708192a3"
local r_cleanup   = "5e6f7081-92a3-4b4c-8d5e-6f708192a3b4"
local a_email     = "6f708192-a3b4-4c5d-9e6f-708192a3b4c5"
local a_report_1  = "708192a3-b4c5-4d6e-af70-8192a3b4c5d6"
local a_report_2  = "8192a3b4-c5d6-4e7f-8081-92a3b4c5d6e7"

local function task(id, t)
  t.task_spec.id = id
  return t
end

return {
  version = 4,
  timestamp = NOW,
  metadata = { schema_version = 8, wal_sequence = 57, task_count = 4, run_count = 5 },
  tasks = {
    task(t_email, {
      task_spec = {
        payload = { bytes = '{"to":"ada@example.com","template":"welcome"}', content_type = "application/json" },
        run_policy = "Once",
        constraints = { max_attempts = 3, timeout_secs = 30, concurrency_key_hold_policy = "HoldDuringRetry",
                        safety_level = "Idempotent" },
        metadata = { tags = { "email", "onboarding" }, priority = 5, description = "send the welcome email" },
        tenant_id = acme,
      },
      created_at = T0,
      updated_at = T0 + 9,
    }),
    task(t_report, {
      task_spec = {
        payload = { bytes = "report:daily-revenue", content_type = "text/plain" },
        run_policy = { Repeat = { count = 7, interval_secs = 86400 } },
        constraints = { max_attempts = 5, timeout_secs = 600, concurrency_key = "reports",
                        concurrency_key_hold_policy = "ReleaseOnRetry", safety_level = "Idempotent",
                        required_capabilities = { "reports" } },
        metadata = { tags = { "reports" }, priority = 0, description = "nightly revenue report" },
        tenant_id = acme,
      },
      created_at = T0 + 60,
    }),
    task(t_resize, {
      task_spec = {
        payload = { bytes = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", content_type = "image/png" },
        run_policy = "Once",
        constraints = { max_attempts = 2, safety_level = "Pure" },
        metadata = { tags = { "images" }, priority = -1 },
        parent_task_id = t_email,
        tenant_id = acme,
      },
      created_at = T0 + 120,
    }),
    task(t_cleanup, {
      task_spec = {
        payload = { bytes = "" },
        run_policy = "Once",
        constraints = { max_attempts = 1 },
        metadata = { tags = {}, priority = 0, description = "legacy cleanup (superseded)" },
      },
      created_at = T0 + 180,
      canceled_at = T0 + 240,
      updated_at = T0 + 240,
    }),
  },
  runs = {
    { -- the welcome email: done on the first attempt
      run_instance = { id = r_email, task_id = t_email, state = "Completed", attempt_count = 1,
                       created_at = T0, scheduled_at = T0, effective_priority = 5, last_state_change_at = T0 + 9 },
      state_history = {
        { to = "Scheduled", timestamp = T0 },
        { from = "Scheduled", to = "Ready", timestamp = T0 },
        { from = "Ready", to = "Leased", timestamp = T0 + 5 },
        { from = "Leased", to = "Running", timestamp = T0 + 6 },
        { from = "Running", to = "Completed", timestamp = T0 + 9 },
      },
      attempts = {
        { attempt_id = a_email, started_at = T0 + 6, finished_at = T0 + 9, result = "Success",
          output = "250 OK queued as 4f1a" },
      },
    },
    { -- the report: first attempt failed, second one is running under a lease
      run_instance = { id = r_report1, task_id = t_report, state = "Running", current_attempt_id = a_report_2,
                       attempt_count = 2, created_at = T0 + 60, scheduled_at = T0 + 60, effective_priority = 0,
                       last_state_change_at = T0 + 6900 },
      state_history = {
        { to = "Scheduled", timestamp = T0 + 60 },
        { from = "Scheduled", to = "Ready", timestamp = T0 + 60 },
        { from = "Ready", to = "Leased", timestamp = T0 + 65 },
        { from = "Leased", to = "Running", timestamp = T0 + 66 },
        { from = "Running", to = "RetryWait", timestamp = T0 + 666 },
        { from = "RetryWait", to = "Ready", timestamp = T0 + 6600 },
        { from = "Ready", to = "Leased", timestamp = T0 + 6890 },
        { from = "Leased", to = "Running", timestamp = T0 + 6900 },
      },
      attempts = {
        { attempt_id = a_report_1, started_at = T0 + 66, finished_at = T0 + 666, result = "Timeout",
          error = "query exceeded 600s" },
        { attempt_id = a_report_2, started_at = T0 + 6900 },
      },
      lease = { owner = "worker-2", expiry = T0 + 7500, acquired_at = T0 + 6890, updated_at = T0 + 7190 },
    },
    { -- the report's next occurrence, tomorrow
      run_instance = { id = r_report2, task_id = t_report, state = "Scheduled", attempt_count = 0,
                       created_at = T0 + 7000, scheduled_at = T0 + 86460, effective_priority = 0,
                       last_state_change_at = T0 + 7000 },
      state_history = { { to = "Scheduled", timestamp = T0 + 7000 } },
      attempts = {},
    },
    { -- image resize: ready, waiting for a worker
      run_instance = { id = r_resize, task_id = t_resize, state = "Ready", attempt_count = 0,
                       created_at = T0 + 120, scheduled_at = T0 + 120, effective_priority = -1,
                       last_state_change_at = T0 + 130 },
      state_history = {
        { to = "Scheduled", timestamp = T0 + 120 },
        { from = "Scheduled", to = "Ready", timestamp = T0 + 130 },
      },
      attempts = {},
    },
    { -- cleanup: canceled before it ever ran
      run_instance = { id = r_cleanup, task_id = t_cleanup, state = "Canceled", attempt_count = 0,
                       created_at = T0 + 180, scheduled_at = T0 + 180, effective_priority = 0,
                       last_state_change_at = T0 + 240 },
      state_history = {
        { to = "Scheduled", timestamp = T0 + 180 },
        { from = "Scheduled", to = "Canceled", timestamp = T0 + 240 },
      },
      attempts = {},
    },
  },
  engine = { paused = false, paused_at = T0 + 3600, resumed_at = T0 + 3700 },
  dependency_declarations = {
    { task_id = t_resize, depends_on = { t_email }, declared_at = T0 + 120 },
  },
  budgets = {
    { task_id = t_report, dimension = "Token", limit = 100000, consumed = 42000, allocated_at = T0 + 60,
      exhausted = false },
  },
  subscriptions = {
    { subscription_id = "92a3b4c5-d6e7-4f80-9192-a3b4c5d6e7f8", task_id = t_resize,
      filter = { TaskCompleted = { task_id = t_email } }, created_at = T0 + 120 },
  },
  actors = {
    { actor_id = worker, identity = "worker-2", capabilities = { "reports", "email" }, department = "ops",
      heartbeat_interval_secs = 30, tenant_id = acme, registered_at = T0 - 3600, last_heartbeat_at = T0 + 7190 },
  },
  tenants = {
    { tenant_id = acme, name = "Acme Corp", created_at = T0 - 86400 },
  },
  role_assignments = {
    { actor_id = worker, role = "Operator", tenant_id = acme, assigned_at = T0 - 3600 },
  },
  capability_grants = {
    { actor_id = worker, capability = "CanExecute", tenant_id = acme, granted_at = T0 - 3600 },
  },
  ledger_entries = {
    { entry_id = "a3b4c5d6-e7f8-4091-a2b3-c4d5e6f70812", tenant_id = acme, ledger_key = "invoice/2026-01",
      actor_id = worker, payload = '{"amount_cents":1200}', timestamp = T0 + 9 },
  },
}
