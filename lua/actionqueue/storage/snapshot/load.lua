--- The snapshot loader (snapshot-format.md §1.3): frame checks in the reference's order,
-- then decode, then semantic validation, with the reference's texts (§1.5).
-- @module actionqueue.storage.snapshot.load
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local codec = require "actionqueue.storage.snapshot.codec"
local S = require "actionqueue.storage.schema.snapshot"

local load = {}

local READ_OPTS = { version = S.FRAME_VERSION, max_length = S.MAX_PAYLOAD }
local TRANSCODE_OPTS = { version = S.FRAME_VERSION, max_length = S.MAX_PAYLOAD, transcode = true }

local function decode_error(text, fields)
  local f = fields or {}
  f.detail = text
  return errors.new("DecodeError", f, "Decode error: " .. text)
end

local SHORT = {
  version = function(got)
    return ("truncated snapshot version frame: read %d of 4 bytes"):format(got)
  end,
  length = function(got)
    if got == 0 then return "truncated snapshot: EOF after version frame, expected length frame" end
    return ("truncated snapshot length frame: read %d of 4 bytes"):format(got)
  end,
  crc = function(got)
    if got == 0 then return "truncated snapshot: EOF after length frame, expected CRC-32 frame" end
    return ("truncated snapshot CRC-32 frame: read %d of 4 bytes"):format(got)
  end,
}

--- Maps a `core.frame_read` result to the loader outcome.
-- @tparam table r the frame result
-- @return payload string | false (no snapshot) | nil, err
function load.frame_outcome(r)
  local st = r.status
  if st == "ok" then return r.payload end
  if st == "missing" or st == "empty" then return false end
  if st == "short_header" then return nil, decode_error(SHORT[r.field](r.got)) end
  if st == "bad_version" then
    return nil, errors.new("IncompatibleVersion", { expected = r.expected, found = r.found },
      ("Incompatible snapshot version: expected %d, found %d"):format(r.expected, r.found))
  end
  if st == "too_long" then
    return nil, decode_error(("snapshot payload length %d exceeds maximum %d"):format(r.length, r.max))
  end
  if st == "short_payload" then
    return nil, errors.new("IoError", { detail = "failed to fill whole buffer" },
      "I/O error: failed to fill whole buffer")
  end
  if st == "crc_mismatch" then
    return nil, errors.new("CrcMismatch", { expected = r.expected, actual = r.actual },
      ("Snapshot CRC-32 mismatch: expected 0x%08x, actual 0x%08x"):format(r.expected, r.actual))
  end
  if st == "io_error" then
    -- r.op / r.path: the step and the file (errors.where); the text stays the engine's
    return nil, errors.new("IoError", { detail = r.message, errno = r.errno, op = r.op, path = r.path },
      "I/O error: " .. tostring(r.message))
  end
  return nil, errors.new("IoError", { detail = "unexpected frame status " .. tostring(st) },
    "I/O error: unexpected frame status " .. tostring(st))
end

-- The rules' plan (csrc/verdict.c): the compiled schema with the rules' hooks, and the
-- run state machine from statemachine.lua (its one source). Shared by check, load and
-- snapshot.validate.
local plan
local function verdict_plan()
  if not plan then
    local sm = require "actionqueue.storage.statemachine"
    local allowed, lease = {}, {}
    for _, from in ipairs(sm.states) do
      for _, to in ipairs(sm.targets(from)) do allowed[#allowed + 1] = { from, to } end
      if sm.may_hold_lease(from) then lease[#lease + 1] = from end
    end
    plan = core.verdict_plan(codec.schema(), {
      schema_version = S.SCHEMA_VERSION, allowed = allowed, lease_states = lease })
  end
  return plan
end
load.verdict_plan = verdict_plan

--- Loads a snapshot file.
-- The payload is streamed from the file in chunks into the decoder (csrc/verdict.c
-- `snapshot_read`), with the CRC on the same pass: no buffer of the whole payload beside
-- the tree. The mapping rules are judged on the same pass by the verdict's hooks (no
-- walk of the tree afterwards).
-- @tparam string path
-- @return snapshot table | `false` (no snapshot: missing or 0-byte file) | `nil, err`
--   (`err.kind` IoError | DecodeError | MappingError | IncompatibleVersion | CrcMismatch)
function load.load(path)
  assert(type(path) == "string", "snapshot.load: path string expected")
  local r = core.snapshot_read(path, verdict_plan(), READ_OPTS)
  if r.status == "ok" then return r.value end
  return load.verdict_outcome(r)
end

--- The loader's outcome for `path` without building the snapshot: the payload is
-- streamed from the file in chunks through the CRC, the decoder (skim mode) and the
-- mapping rules (csrc/verdict.c); memory stays bounded by the id sets.
-- @tparam string path
-- @return `{tasks = N, runs = M}` | `false` (no snapshot) | `nil, err` (the same error
--   `load` returns: kind, message, and `violation` / `line`, `column`)
function load.verdict(path)
  assert(type(path) == "string", "snapshot.verdict: path string expected")
  return load.verdict_outcome(core.snapshot_verdict(path, verdict_plan(), READ_OPTS))
end

--- The raw result of the streamed verdict (`core.snapshot_verdict`), the payload copied
-- into `writer` (an AtomicWriter inside `begin_frame`) when one is given, or with
-- `transcode` its canonical encoding (the rewrite, csrc/transcode.c).
-- @tparam string path
-- @param[opt] writer
-- @tparam[opt] boolean transcode
-- @treturn table `{status = "ok", tasks, runs, canonical, json_version, ...}` or a failure
function load.verdict_result(path, writer, transcode)
  return core.snapshot_verdict(path, verdict_plan(), transcode and TRANSCODE_OPTS or READ_OPTS, writer)
end

--- `load.verdict`'s return values for a `core.snapshot_verdict` result.
-- @tparam table r
function load.verdict_outcome(r)
  local st = r.status
  if st == "ok" then return { tasks = r.tasks, runs = r.runs } end
  if st == "decode_error" then
    return nil, decode_error("Failed to decode snapshot: " .. r.message, { line = r.line, column = r.column })
  end
  if st == "mapping_error" then
    local v = { kind = r.kind, path = r.path, message = r.message }
    return nil, errors.new("MappingError", { violation = v }, "Mapping error: " .. v.message)
  end
  return load.frame_outcome(r)
end

--- Loads `path` and classifies the outcome: the one implementation of what
-- `aqstore check FILE` prints and what a batch `check` job reports.
-- @tparam string path
-- @treturn table `{status = "ok", line = "OK tasks=N runs=M", tasks = N, runs = M}`,
--   `{status = "none", line = "NONE"}` (missing or 0-byte file: no snapshot) or
--   `{status = "error", line = "ERR " .. message, kind = err.kind, message = err.message,
--   err = err}` (`message` is the loader's text, snapshot-format.md §1.5)
function load.check(path)
  local snap, err = load.verdict(path)
  if snap then
    local tasks, runs = snap.tasks, snap.runs
    return { status = "ok", line = ("OK tasks=%d runs=%d"):format(tasks, runs), tasks = tasks, runs = runs }
  elseif snap == false then
    return { status = "none", line = "NONE" }
  end
  local kind, message = "Error", tostring(err)
  if type(err) == "table" then kind, message = err.kind or kind, err.message or message end
  return { status = "error", line = "ERR " .. message, kind = kind, message = message, err = err }
end

--- Frame and CRC check only (no JSON decoding).
-- @tparam string path
-- @treturn table the `core.frame_read` result (status ok/missing/empty/...)
function load.verify(path)
  return core.frame_read(path, { version = S.FRAME_VERSION, max_length = S.MAX_PAYLOAD })
end

--- One line describing a `frame_read` / `load.verify` result: the one wording shared by
-- `aqstore verify` and batch `verify` jobs.
-- `ok` -> `frame v4, payload N bytes, crc 0x...`; `missing` / `empty` ->
-- `no snapshot (file not found)` / `no snapshot (empty file)`; every other status -> the
-- loader's error text for it (snapshot-format.md §1.3/§1.5, e.g. `Snapshot CRC-32 mismatch:
-- expected 0x93fae80f, actual 0x93fae88f`), a truncated payload with its counts appended
-- (`I/O error: failed to fill whole buffer (payload length N, got M bytes)`).
-- @tparam table r the frame result
-- @treturn string
function load.describe_frame(r)
  local st = r.status
  if st == "ok" then
    return ("frame v%d, payload %d bytes, crc 0x%08x"):format(r.version, r.length, r.crc)
  elseif st == "missing" then
    return "no snapshot (file not found)"
  elseif st == "empty" then
    return "no snapshot (empty file)"
  end
  local _, err = load.frame_outcome(r)
  if st == "short_payload" then
    return ("%s (payload length %d, got %d bytes)"):format(err.message, r.length, r.got)
  end
  return err.message
end

return load
