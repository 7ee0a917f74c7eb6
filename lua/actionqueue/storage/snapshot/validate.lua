--- Semantic validation of an in-memory snapshot (snapshot-format.md §6, recovery.md §4).
--
-- The rules have one implementation, in C (csrc/verdict.c): the same code judges a file
-- while `check` skims it, while `load` builds it, and here a table built in Lua, through
-- the table's canonical encoding (the C encoder), so texts, paths and order are the
-- engine's everywhere. In the default mode the first violation is returned (what the
-- engine reports); with `{all = true}` every violation, in the engine's rule order, each
-- with the path of the offending value (`runs[3].state_history[2]`, 1-based) so an
-- operator can repair a file.
--
-- Violations are `{kind = <rule name>, path = <document path>, message = <reference text>}`
-- (the text without the loader's `Mapping error: ` prefix). A table the encoder refuses
-- (a value of the wrong kind, an id that is no UUID ...) is reported as one violation of
-- kind `EncodeError` with the encoder's path and text.
-- @module actionqueue.storage.snapshot.validate
local core = require "actionqueue.storage.core"
local dsl = require "actionqueue.storage.schema.dsl"
local S = require "actionqueue.storage.schema.snapshot"
local load = require "actionqueue.storage.snapshot.load"

local M = {}

-- A top-level field the decoder defaults when absent (`engine`, the reference lists) may
-- be absent in a table too: the table's encoding gets the default (a shallow copy of
-- the root only when one is missing; the encoder reads raw fields, as here).
local function with_defaults(snap)
  local copy
  for _, f in ipairs(S.root.fields) do
    if rawget(snap, f.name) == nil then
      local d = dsl.default_of(f)
      if d ~= nil then
        if not copy then
          copy = {}
          for _, g in ipairs(S.root.fields) do copy[g.name] = rawget(snap, g.name) end
        end
        copy[f.name] = d
      end
    end
  end
  return copy or snap
end

-- `tasks[1].task_spec.id: expected TaskId (UUID string), got nil` -> path, problem
local function encode_violation(msg)
  local path, problem = msg:match("^([%w_%.%[%]]+): (.*)$")
  return { kind = "EncodeError", path = path or "", message = problem or msg }
end

--- Validates a snapshot the way the reference engine does.
-- @tparam table snap in-memory snapshot
-- @tparam[opt] table opts `{all = true}` to collect every violation
-- @return default mode: `true`, or `nil, violation` (the engine's first failure);
--   all mode: the list of violations (empty when valid)
function M.validate(snap, opts)
  assert(type(snap) == "table", "validate: snapshot table expected")
  local all = type(opts) == "table" and opts.all or false
  -- the rules judge the table's encoding in a C buffer (no Lua string of it)
  local list, msg, where = core.snapshot_rules(with_defaults(snap), load.verdict_plan(), all)
  if not list then
    if where == "encode" then
      list = { encode_violation(msg) }
    else
      -- (the encoding is the decoder's input by construction; kept visible if not)
      list = { { kind = "DecodeError", path = "", message = msg } }
    end
  end
  if all then return list end
  if list[1] then return nil, list[1] end
  return true
end

--- The display text of the first violation, as the loader prints it
-- (`Mapping error: ...`), or nil when the snapshot is valid.
function M.mapping_error(snap)
  local ok, v = M.validate(snap)
  if ok then return nil end
  return "Mapping error: " .. v.message
end

return M
