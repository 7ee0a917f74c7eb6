--- Snapshot schema v8 (snapshot-format.md §3.5): the records of the snapshot file,
-- in output order, built from the shared vocabulary of `schema.types`.
-- @module actionqueue.storage.schema.snapshot
local dsl = require "actionqueue.storage.schema.dsl"
local T = require "actionqueue.storage.schema.types"

local S = {}

S.FRAME_VERSION = 4
S.SCHEMA_VERSION = 8
S.MAX_PAYLOAD = 268435456

local u64, u32, bool, str = dsl.u64, dsl.u32, dsl.bool, dsl.string
local opt, list = dsl.option, dsl.list
local function empty() return {} end

S.Metadata = dsl.record { "SnapshotMetadata",
  { "schema_version", u32 },
  { "wal_sequence", u64 },
  { "task_count", u64 },
  { "run_count", u64 },
}

S.EngineControl = dsl.record { "SnapshotEngineControl",
  { "paused", bool },
  { "paused_at", opt(u64) },
  { "resumed_at", opt(u64) },
}

S.Task = dsl.record { "SnapshotTask",
  { "task_spec", T.TaskSpec },
  { "created_at", u64 },
  { "updated_at", opt(u64) },
  { "canceled_at", opt(u64), default = dsl.NONE },
}

S.RunStateHistoryEntry = dsl.record { "SnapshotRunStateHistoryEntry",
  { "from", opt(T.RunState) },
  { "to", T.RunState },
  { "timestamp", u64 },
}

S.AttemptHistoryEntry = dsl.record { "SnapshotAttemptHistoryEntry",
  { "attempt_id", T.AttemptId, own_id = true },
  { "started_at", u64 },
  { "finished_at", opt(u64) },
  { "result", opt(T.AttemptResultKind) },
  { "error", opt(str) },
  { "output", opt(dsl.bytes), default = dsl.NONE },
}

S.LeaseMetadata = dsl.record { "SnapshotLeaseMetadata",
  { "owner", str },
  { "expiry", u64 },
  { "acquired_at", u64 },
  { "updated_at", u64 },
}

S.Run = dsl.record { "SnapshotRun",
  { "run_instance", T.RunInstance },
  { "state_history", list(S.RunStateHistoryEntry) },
  { "attempts", list(S.AttemptHistoryEntry) },
  { "lease", opt(S.LeaseMetadata) },
}

S.DependencyDeclaration = dsl.record { "SnapshotDependencyDeclaration",
  { "task_id", T.TaskId },
  { "depends_on", list(T.TaskId) },
  { "declared_at", u64 },
}

S.Budget = dsl.record { "SnapshotBudget",
  { "task_id", T.TaskId },
  { "dimension", T.BudgetDimension },
  { "limit", u64 },
  { "consumed", u64, build_default = 0 },
  { "allocated_at", u64 },
  { "exhausted", bool },
}

S.Subscription = dsl.record { "SnapshotSubscription",
  { "subscription_id", T.SubscriptionId, own_id = true },
  { "task_id", T.TaskId },
  { "filter", T.EventFilter },
  { "created_at", u64 },
  { "triggered_at", opt(u64) },
  { "canceled_at", opt(u64) },
}

S.Actor = dsl.record { "SnapshotActor",
  { "actor_id", T.ActorId, own_id = true },
  { "identity", str },
  { "capabilities", list(str) },
  { "department", opt(str) },
  { "heartbeat_interval_secs", u64 },
  { "tenant_id", opt(T.TenantId) },
  { "registered_at", u64 },
  { "last_heartbeat_at", opt(u64) },
  { "deregistered_at", opt(u64) },
}

S.Tenant = dsl.record { "SnapshotTenant",
  { "tenant_id", T.TenantId, own_id = true },
  { "name", str },
  { "created_at", u64 },
}

S.RoleAssignment = dsl.record { "SnapshotRoleAssignment",
  { "actor_id", T.ActorId },
  { "role", T.Role },
  { "tenant_id", T.TenantId },
  { "assigned_at", u64 },
}

S.CapabilityGrant = dsl.record { "SnapshotCapabilityGrant",
  { "actor_id", T.ActorId },
  { "capability", T.Capability },
  { "tenant_id", T.TenantId },
  { "granted_at", u64 },
  { "revoked_at", opt(u64) },
}

S.LedgerEntry = dsl.record { "SnapshotLedgerEntry",
  { "entry_id", T.LedgerEntryId, own_id = true },
  { "tenant_id", T.TenantId },
  { "ledger_key", str },
  { "actor_id", opt(T.ActorId) },
  { "payload", dsl.bytes },
  { "timestamp", u64 },
}

S.Snapshot = dsl.record { "Snapshot",
  { "version", u32 },
  { "timestamp", u64 },
  { "metadata", S.Metadata },
  { "tasks", list(S.Task) },
  { "runs", list(S.Run) },
  { "engine", S.EngineControl, default = function() return { paused = false } end },
  { "dependency_declarations", list(S.DependencyDeclaration), default = empty },
  { "budgets", list(S.Budget), default = empty },
  { "subscriptions", list(S.Subscription), default = empty },
  { "actors", list(S.Actor), default = empty },
  { "tenants", list(S.Tenant), default = empty },
  { "role_assignments", list(S.RoleAssignment), default = empty },
  { "capability_grants", list(S.CapabilityGrant), default = empty },
  { "ledger_entries", list(S.LedgerEntry), default = empty },
}

--- The root type of a snapshot payload.
S.root = S.Snapshot

return S
