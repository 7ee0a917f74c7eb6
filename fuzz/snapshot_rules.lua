-- libFuzzer target (differential): snapshot.validate on Lua tables (the rules of
-- csrc/verdict.c run on the table's canonical encoding) against the streamed verdict of
-- that encoding written as a file (load.verdict: the skim decoder and the same rules
-- while reading).
-- The tables: the input decoded as a snapshot payload (codec.decode; inputs that do not
-- decode are skipped), then mutated the way a script would: values copied from one place
-- of the tree to another place holding the same Lua type, integers set to edge values,
-- list elements duplicated, removed or swapped. The input's bytes choose the mutations.
-- Properties: the default mode's violation is the first of {all = true} (valid iff that
-- list is empty); a table the encoder refuses is an EncodeError violation and nothing
-- else is; the encoding's verdict is OK with the table's counts iff validate accepts, and
-- otherwise the same rule, path and text, or the same decode-time check's text.
local core = require "actionqueue.storage.core"
local codec = require "actionqueue.storage.snapshot.codec"
local validate = require "actionqueue.storage.snapshot.validate"
local load = require "actionqueue.storage.snapshot.load"

local base = io.open("/dev/shm", "rb") and "/dev/shm" or (os.getenv("TMPDIR") or "/tmp")
local FILE = ("%s/aqs-fuzz-rules-%d-%d.snap"):format(base, os.time(), math.random(1 << 30))

local EDGE = { 0, 1, -1, 2, 255, 65535, 4294967295, 4294967296, math.maxinteger, math.mininteger }

-- Every (table, key) slot of the tree, in a deterministic order.
local function slots(t, out)
  out = out or {}
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  for _, k in ipairs(keys) do
    out[#out + 1] = { t, k }
    if type(t[k]) == "table" then slots(t[k], out) end
  end
  return out
end

local function mutate(snap, data)
  local n = math.min(#data // 4, 8)
  for i = 1, n do
    local b1, b2, b3, b4 = data:byte(#data - 4 * i + 1, #data - 4 * i + 4)
    local all = slots(snap)
    if #all == 0 then return end
    local op, s = b1 % 5, all[(b2 * 256 + b3) % #all + 1]
    local t, k = s[1], s[2]
    local v = t[k]
    if op == 0 then -- copy a scalar of the same Lua type from elsewhere (an id, a state ...)
      local from = all[(b3 * 256 + b4) % #all + 1]
      local w = from[1][from[2]]
      if type(w) == type(v) and type(w) ~= "table" then t[k] = w end
    elseif op == 1 and math.type(v) == "integer" then
      t[k] = EDGE[b4 % #EDGE + 1]
    elseif type(v) == "table" and #v > 0 then
      local j, l = b3 % #v + 1, b4 % #v + 1
      if op == 2 then table.insert(v, l, v[j])       -- duplicate an element
      elseif op == 3 then table.remove(v, j)         -- remove one
      else v[j], v[l] = v[l], v[j] end               -- swap two
    end
  end
end

-- The run-level decode checks and the section 6 rule that judges the same condition.
local RUN_CHECKS = {
  { "run_id must not be nil", "InvalidRunId" },
  { "task_id must not be nil", "InvalidTaskId" },
  { "active attempt_id is only valid in Running state", "InvalidAttemptLineageState" },
  { "terminal state cannot have an active attempt", "InvalidAttemptLineageState" },
  { "Ready state requires scheduled_at (", "InvalidReadyScheduleCausality" },
}

local function describe(v) return ("%s %s %s"):format(v.kind, tostring(v.path), v.message) end

return function(data)
  local snap = codec.decode(data)
  if type(snap) ~= "table" then return end
  mutate(snap, data)
  local ok, v = validate.validate(snap)
  local list = validate.validate(snap, { all = true })
  if ok then
    assert(#list == 0, "default mode valid, all mode found " .. describe(list[1] or {}))
  else
    assert(list[1], "default mode found " .. describe(v) .. ", all mode nothing")
    assert(describe(list[1]) == describe(v),
      ("first of all mode %q, default mode %q"):format(describe(list[1]), describe(v)))
  end
  local payload, eerr = codec.encode(snap)
  if not payload then
    assert(not ok and v.kind == "EncodeError", "the encoder refuses (" ..
      tostring(type(eerr) == "table" and eerr.message or eerr) .. ") but validate says " ..
      (ok and "valid" or describe(v)))
    return
  end
  if not ok and v.kind == "EncodeError" then
    error("the encoder accepts but validate says " .. describe(v))
  end
  local f = assert(io.open(FILE, "wb"))
  f:write(core.frame_encode(4, payload))
  f:close()
  local r, err = load.verdict(FILE)
  os.remove(FILE)
  if ok then
    if not r then
      -- the frame version follows the document's; an unsupported one is the frame's verdict
      if err.kind == "IncompatibleVersion" then return end
      error("validate accepts, the verdict of the encoding says " .. tostring(err.message))
    end
    assert(r.tasks == #(snap.tasks or {}) and r.runs == #(snap.runs or {}), "verdict counts")
  else
    if r then error("validate says " .. describe(v) .. ", the verdict of the encoding says OK") end
    if err.kind == "IncompatibleVersion" then return end
    -- the loader checks a run's instance while decoding (its first failing run in document
    -- order); validate judges the same conditions as section 6 rules, with their texts
    -- (validate_snapshot_display of the golden mapping fixtures), in the engine's order:
    -- its first violation may be another rule, but the matching rule is in the all list
    if err.kind == "DecodeError" then
      for _, c in ipairs(RUN_CHECKS) do
        if err.message:find(c[1], 1, true) then
          for _, w in ipairs(list) do
            if w.kind == c[2] then return end
          end
          error("the verdict " .. err.message .. ", validate's all mode has no " .. c[2])
        end
      end
    end
    if v.kind == "DecodeError" then -- a decode-time check no section 6 rule repeats
      local want = "Failed to decode snapshot: " .. v.message
      if err.kind ~= "DecodeError" or err.message:sub(-#want) ~= want then
        error("validate says " .. describe(v) .. ", the verdict " .. tostring(err.kind) .. " " ..
          tostring(err.message))
      end
      return
    end
    if err.kind ~= "MappingError" then
      error("validate says " .. describe(v) .. ", the verdict " .. tostring(err.kind) .. " " ..
        tostring(err.message))
    end
    if describe(err.violation) ~= describe(v) then
      error(("validate says %q, the verdict %q"):format(describe(v), describe(err.violation)))
    end
  end
end
