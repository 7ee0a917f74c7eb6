--- The type vocabulary shared by the snapshot (JSON) and WAL (postcard) formats:
-- identifiers, TaskSpec, RunInstance, policies, constraints and the enums.
-- Record names are the reference's internal type names (they appear in JSON decode
-- errors such as `expected struct TaskSpecWire`). The `check` functions are the
-- decode-time validations (snapshot-format.md §3.6, wal-format.md §8.4); every decoder
-- calls them when a record (or enum variant) has been read completely. All but Cron's
-- are the C core's (`dsl.native`, csrc/checks.c): one implementation that the codecs,
-- the verdict path and `snapshot.build` share.
-- @module actionqueue.storage.schema.types
local dsl = require "actionqueue.storage.schema.dsl"

local T = {}

-- `build_default` of record fields: a fresh empty table (snapshot.build fills it in).
local function empty() return {} end

T.NIL_UUID = "00000000-0000-0000-0000-000000000000"

-- Identifiers (all UUID newtypes).
for _, name in ipairs { "TaskId", "RunId", "AttemptId", "SubscriptionId", "ActorId",
                        "TenantId", "LedgerEntryId" } do
  T[name] = dsl.id(name)
end

-- Unit enums.
T.RunState = dsl.enum { "RunState",
  { "Scheduled" }, { "Ready" }, { "Leased" }, { "Running" }, { "RetryWait" },
  { "Suspended" }, { "Completed" }, { "Failed" }, { "Canceled" } }
T.AttemptResultKind = dsl.enum { "AttemptResultKind",
  { "Success" }, { "Failure" }, { "Timeout" }, { "Suspended" } }
T.BudgetDimension = dsl.enum { "BudgetDimension", { "Token" }, { "CostCents" }, { "TimeSecs" } }
T.ConcurrencyKeyHoldPolicy = dsl.enum { "ConcurrencyKeyHoldPolicy",
  { "HoldDuringRetry" }, { "ReleaseOnRetry" } }
T.SafetyLevel = dsl.enum { "SafetyLevel", { "Pure" }, { "Idempotent" }, { "Transactional" } }

T.TERMINAL_STATES = { Completed = true, Failed = true, Canceled = true }

-- Policies.
T.RepeatPolicy = dsl.record { "RunPolicyWire::Repeat",
  { "count", dsl.u32 },
  { "interval_secs", dsl.u64 },
}
T.CronPolicy = dsl.record { "RunPolicyWire::Cron",
  { "expression", dsl.string },
  -- The reference's serde attribute "skip if none": absent, the field is left out of the
  -- JSON (snapshot-format.md §3.4 Cron). Postcard always writes the Option tag (the
  -- reference's omission there makes the record unreadable, wal-format.md §7.2, §11.1).
  { "max_occurrences", dsl.option(dsl.u32), skip_if_none = true },
}

-- Workflow build only (wal-format.md §8.4): a valid seconds-first cron schedule and
-- max_occurrences not Some(0).
local function check_cron(v)
  local p = v.Cron
  if p.max_occurrences == 0 then return "invalid cron max_occurrences: 0 (must be >= 1)" end
  return require("actionqueue.storage.schema.cron").check(p.expression)
end

T.RunPolicy = dsl.enum { "RunPolicyWire",
  { "Once" },
  { "Repeat", T.RepeatPolicy, check = dsl.native "Repeat" },
  -- Only in the reference's optional "workflow" build; the default build rejects it.
  { "Cron", T.CronPolicy, feature = "workflow", check = check_cron },
}

T.TaskPayload = dsl.record { "TaskPayload",
  { "bytes", dsl.bytes, build_default = "" },
  { "content_type", dsl.option(dsl.string) },
}

T.TaskConstraints = dsl.record { "TaskConstraintsWire",
  { "max_attempts", dsl.u32, build_default = 1 },
  { "timeout_secs", dsl.option(dsl.u64) },
  { "concurrency_key", dsl.option(dsl.string) },
  { "concurrency_key_hold_policy", T.ConcurrencyKeyHoldPolicy, default = "HoldDuringRetry" },
  { "safety_level", T.SafetyLevel, default = "Pure" },
  { "required_capabilities", dsl.option(dsl.list(dsl.string)), default = dsl.NONE },
  check = dsl.native "TaskConstraints",
}

T.TaskMetadata = dsl.record { "TaskMetadata",
  { "tags", dsl.list(dsl.string) },
  { "priority", dsl.i32, build_default = 0 },
  { "description", dsl.option(dsl.string) },
}

T.TaskSpec = dsl.record { "TaskSpecWire",
  { "id", T.TaskId, own_id = true },
  { "payload", T.TaskPayload, build_default = "" },
  { "run_policy", T.RunPolicy, build_default = "Once" },
  { "constraints", T.TaskConstraints, build_default = empty },
  { "metadata", T.TaskMetadata, build_default = empty },
  { "parent_task_id", dsl.option(T.TaskId), default = dsl.NONE },
  { "tenant_id", dsl.option(T.TenantId), default = dsl.NONE },
  check = dsl.native "TaskSpec",
}

T.RunInstance = dsl.record { "RunInstanceWire",
  { "id", T.RunId, own_id = true },
  { "task_id", T.TaskId },
  { "state", T.RunState },
  { "current_attempt_id", dsl.option(T.AttemptId) },
  { "attempt_count", dsl.u32 },
  { "created_at", dsl.u64 },
  { "scheduled_at", dsl.u64 },
  { "effective_priority", dsl.i32, build_default = 0 },
  { "last_state_change_at", dsl.u64, default = 0 },
  check = dsl.native "RunInstance",
}

T.EventFilter = dsl.enum { "EventFilter",
  { "TaskCompleted", dsl.record { "EventFilter::TaskCompleted",
      { "task_id", T.TaskId } } },
  { "RunStateChanged", dsl.record { "EventFilter::RunStateChanged",
      { "task_id", T.TaskId }, { "state", T.RunState } } },
  { "BudgetThreshold", dsl.record { "EventFilter::BudgetThreshold",
      { "task_id", T.TaskId }, { "dimension", T.BudgetDimension }, { "threshold_pct", dsl.u8 } } },
  { "Custom", dsl.record { "EventFilter::Custom", { "key", dsl.string } } },
}

T.Role = dsl.enum { "Role",
  { "Operator" }, { "Auditor" }, { "Gatekeeper" }, { "Custom", dsl.string } }
T.Capability = dsl.enum { "Capability",
  { "CanSubmit" }, { "CanExecute" }, { "CanReview" }, { "CanApprove" }, { "CanCancel" },
  { "Custom", dsl.string } }

return T
