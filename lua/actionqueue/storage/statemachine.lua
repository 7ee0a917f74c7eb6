--- The run state machine (snapshot-format.md §5, recovery.md §10).
-- States are the `RunState` variant names of the schema, in declaration (wire) order.
-- Used by snapshot validation (state-history transitions), by the snapshot builder
-- (valid default histories) and by the recovery reducer.
-- @module actionqueue.storage.statemachine
local T = require "actionqueue.storage.schema.types"

local M = {}

--- The states in wire order (taken from the schema's RunState enum).
M.states = {}
--- Wire index (0-based) of each state.
M.index = {}
for _, v in ipairs(T.RunState.variants) do
  M.states[#M.states + 1] = v.name
  M.index[v.name] = v.index
end

-- Allowed targets per state; every other pair (including self-transitions and
-- anything out of a terminal state) is invalid.
local TARGETS = {
  Scheduled = { "Ready", "Canceled" },
  Ready = { "Leased", "Canceled" },
  Leased = { "Running", "Ready", "Canceled" },
  Running = { "RetryWait", "Suspended", "Completed", "Failed", "Canceled" },
  RetryWait = { "Ready", "Failed", "Canceled" },
  Suspended = { "Ready", "Canceled" },
  Completed = {},
  Failed = {},
  Canceled = {},
}

local allowed = {}
for from, targets in pairs(TARGETS) do
  assert(M.index[from], "statemachine: unknown state " .. from)
  allowed[from] = {}
  for _, to in ipairs(targets) do
    assert(M.index[to], "statemachine: unknown state " .. to)
    allowed[from][to] = true
  end
end

local LEASE_STATES = { Ready = true, Leased = true, Running = true }

--- True when `state` is a RunState name.
function M.is_state(state)
  return M.index[state] ~= nil
end

--- True when `from -> to` is one of the valid transitions.
function M.can_transition(from, to)
  local t = allowed[from]
  return t ~= nil and t[to] == true
end

--- True for the terminal states (Completed, Failed, Canceled).
function M.is_terminal(state)
  return T.TERMINAL_STATES[state] == true
end

--- The allowed targets of `from`, in wire order (a fresh list).
function M.targets(from)
  local out = {}
  for _, s in ipairs(M.states) do
    if M.can_transition(from, s) then out[#out + 1] = s end
  end
  return out
end

--- True for the states in which a run may hold a lease (Ready, Leased, Running).
function M.may_hold_lease(state)
  return LEASE_STATES[state] == true
end

--- True for the state in which a decoded run may carry `current_attempt_id` (Running).
function M.may_have_active_attempt(state)
  return state == "Running"
end

--- A shortest valid path of states from `from` to `to` (both included), or nil.
-- Ties are broken by wire order, so the result is deterministic
-- (e.g. Running: Scheduled, Ready, Leased, Running).
function M.path(from, to)
  if not (M.is_state(from) and M.is_state(to)) then return nil end
  local prev, queue, head = { [from] = false }, { from }, 1
  while head <= #queue do
    local s = queue[head]; head = head + 1
    if s == to then
      local out, cur = {}, s
      while cur do table.insert(out, 1, cur); cur = prev[cur] end
      return out
    end
    for _, n in ipairs(M.targets(s)) do
      if prev[n] == nil then prev[n] = s; queue[#queue + 1] = n end
    end
  end
  return nil
end

return M
