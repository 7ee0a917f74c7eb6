--- WAL v5 payload schema (wal-format.md §8): the `WalEvent` envelope and the struct
-- variants of `WalEventType`, built from the shared vocabulary of `schema.types`.
-- The postcard codec (csrc/postcard.c), the JSON dump (json_encode) and the printers
-- all walk these tables; there is no other list of fields.
-- @module actionqueue.storage.schema.wal
local dsl = require "actionqueue.storage.schema.dsl"
local T = require "actionqueue.storage.schema.types"

local W = {}

--- Frame version of every WAL record.
W.FRAME_VERSION = 5
--- Readers reject payloads longer than this (inclusive cap).
W.MAX_PAYLOAD = 268435456
--- Encoders reject payloads longer than this (fits u32).
W.MAX_ENCODE = 4294967295

local u64, str, bytes = dsl.u64, dsl.string, dsl.bytes
local opt, list = dsl.option, dsl.list

-- Every variant is a struct variant; its record is named like the reference's
-- `WalEventType::<Variant>`.
local variants = {}
local function variant(name, ...)
  local spec = { "WalEventType::" .. name, ... }
  variants[#variants + 1] = { name, dsl.record(spec) }
end

local lease = function(name)
  variant(name, { "run_id", T.RunId }, { "owner", str }, { "expiry", u64 }, { "timestamp", u64 })
end

variant("TaskCreated", { "task_spec", T.TaskSpec }, { "timestamp", u64 })
variant("RunCreated", { "run_instance", T.RunInstance })
variant("RunStateChanged", { "run_id", T.RunId }, { "previous_state", T.RunState },
  { "new_state", T.RunState }, { "timestamp", u64 })
variant("AttemptStarted", { "run_id", T.RunId }, { "attempt_id", T.AttemptId }, { "timestamp", u64 })
variant("AttemptFinished", { "run_id", T.RunId }, { "attempt_id", T.AttemptId },
  { "result", T.AttemptResultKind }, { "error", opt(str) }, { "output", opt(bytes) },
  { "timestamp", u64 })
variant("TaskCanceled", { "task_id", T.TaskId }, { "timestamp", u64 })
variant("RunCanceled", { "run_id", T.RunId }, { "timestamp", u64 })
lease("LeaseAcquired")
lease("LeaseHeartbeat")
lease("LeaseExpired")
lease("LeaseReleased")
variant("EnginePaused", { "timestamp", u64 })
variant("EngineResumed", { "timestamp", u64 })
variant("DependencyDeclared", { "task_id", T.TaskId }, { "depends_on", list(T.TaskId) },
  { "timestamp", u64 })
variant("RunSuspended", { "run_id", T.RunId }, { "reason", opt(str) }, { "timestamp", u64 })
variant("RunResumed", { "run_id", T.RunId }, { "timestamp", u64 })
variant("BudgetAllocated", { "task_id", T.TaskId }, { "dimension", T.BudgetDimension },
  { "limit", u64 }, { "timestamp", u64 })
variant("BudgetConsumed", { "task_id", T.TaskId }, { "dimension", T.BudgetDimension },
  { "amount", u64 }, { "timestamp", u64 })
variant("BudgetExhausted", { "task_id", T.TaskId }, { "dimension", T.BudgetDimension },
  { "timestamp", u64 })
variant("BudgetReplenished", { "task_id", T.TaskId }, { "dimension", T.BudgetDimension },
  { "new_limit", u64 }, { "timestamp", u64 })
variant("SubscriptionCreated", { "subscription_id", T.SubscriptionId }, { "task_id", T.TaskId },
  { "filter", T.EventFilter }, { "timestamp", u64 })
variant("SubscriptionTriggered", { "subscription_id", T.SubscriptionId }, { "timestamp", u64 })
variant("SubscriptionCanceled", { "subscription_id", T.SubscriptionId }, { "timestamp", u64 })
variant("ActorRegistered", { "actor_id", T.ActorId }, { "identity", str },
  { "capabilities", list(str) }, { "department", opt(str) },
  { "heartbeat_interval_secs", u64 }, { "tenant_id", opt(T.TenantId) }, { "timestamp", u64 })
variant("ActorDeregistered", { "actor_id", T.ActorId }, { "timestamp", u64 })
variant("ActorHeartbeat", { "actor_id", T.ActorId }, { "timestamp", u64 })
variant("TenantCreated", { "tenant_id", T.TenantId }, { "name", str }, { "timestamp", u64 })
variant("RoleAssigned", { "actor_id", T.ActorId }, { "role", T.Role }, { "tenant_id", T.TenantId },
  { "timestamp", u64 })
variant("CapabilityGranted", { "actor_id", T.ActorId }, { "capability", T.Capability },
  { "tenant_id", T.TenantId }, { "timestamp", u64 })
variant("CapabilityRevoked", { "actor_id", T.ActorId }, { "capability", T.Capability },
  { "tenant_id", T.TenantId }, { "timestamp", u64 })
variant("LedgerEntryAppended", { "entry_id", T.LedgerEntryId }, { "tenant_id", T.TenantId },
  { "ledger_key", str }, { "actor_id", opt(T.ActorId) }, { "payload", bytes }, { "timestamp", u64 })

--- `WalEventType`: the struct variants above, indices from 0 in list order (§8.2).
W.WalEventType = dsl.enum { "WalEventType", table.unpack(variants) }

--- `WalEvent`: the record payload (§8.1).
W.WalEvent = dsl.record { "WalEvent",
  { "sequence", u64 },
  { "event", W.WalEventType },
}

--- Corruption display tokens (§3.2), in the order of the table.
W.CORRUPTION_KINDS = { "incomplete_header", "incomplete_payload", "unsupported_version",
  "crc_mismatch", "decode_failure" }

return W
