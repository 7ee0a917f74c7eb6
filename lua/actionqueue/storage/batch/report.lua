--- Batch reports: entries, the crash-safe journal, the final JSON file, loading and merging.
-- Report JSON: `{"jobs": [entry...], "summary": {"ok": N, "failed": N, "skipped": N}, ...}`.
-- An entry has `input`, `kind`, `status` ("ok" | "failed" | "skipped"), `error` (text or
-- null), `error_kind` (or null), `seconds`, `bytes`, and when present `output`,
-- `output_crc` (CRC-32 of the file written), `input_size`/`input_mtime`/`input_crc`.
-- While a batch runs, each finished job is appended as one JSON line to `FILE.journal`,
-- fsynced in groups (group commit, see `report.journal`); the final report is then written
-- atomically and the journal removed.
-- A batch killed midway therefore leaves `FILE.journal`, which `report.load` reads.
-- @module actionqueue.storage.batch.report
local cjson = require "cjson"
local core = require "actionqueue.storage.core"
local fsutil = require "actionqueue.storage.fsutil"
local plain = require "actionqueue.storage.cjson_plain"

local report = {}

-- Entry fields in the order they are written (other result fields follow, sorted).
local ORDER = { "index", "input", "kind", "output", "status", "error", "error_kind", "seconds", "bytes",
  "output_crc", "output_bytes", "input_size", "input_mtime", "input_crc" }
local ORDERED = {}
for _, k in ipairs(ORDER) do ORDERED[k] = true end
local INTERNAL = { path = true, output_path = true, id = true }

--- Builds a report entry from a job and its result.
-- @tparam table job normalised job
-- @tparam table result worker result
-- @treturn table entry
function report.entry(job, result)
  local e = {}
  for k, v in pairs(result) do
    if not INTERNAL[k] then e[k] = plain.value(v) end
  end
  e.index, e.input, e.kind, e.output = job.index, job.input, job.kind, job.output
  e.status = result.status or "failed"
  e.seconds = tonumber(result.seconds) or 0
  e.bytes = tonumber(result.bytes) or 0
  if e.status == "ok" or e.status == "skipped" then
    e.error, e.error_kind = nil, nil
  end
  return e
end

-- Entries whose fields from `status` on arrived already encoded from a worker
-- (`report.set_tail`): the text is reused instead of encoding the entry again.
local tails = setmetatable({}, { __mode = "k" })
local encoded = setmetatable({}, { __mode = "k" }) -- their whole text, once made

local HEAD = { "index", "input", "kind", "output" }
local NHEAD = #HEAD

-- `"key":` texts, made once per key.
local KEYS = setmetatable({}, { __index = function(t, k)
  local q = cjson.encode(k) .. ":"
  t[k] = q
  return q
end })

-- cjson's text for a value (integers below 1e14 written directly: the same digits, faster).
local function encode_value(v)
  if math.type(v) == "integer" and v < 100000000000000 and v > -100000000000000 then
    return string.format("%d", v)
  end
  return cjson.encode(v)
end

local function encode_fields(e, first, last, parts)
  for i = first, last do
    local k = ORDER[i]
    local v = rawget(e, k)
    if v == nil then
      if k == "error" or k == "error_kind" then parts[#parts + 1] = KEYS[k] .. "null" end
    else
      parts[#parts + 1] = KEYS[k] .. encode_value(v)
    end
  end
  return parts
end

--- Encodes the fields of an entry from `status` on (no `index`, `input`, `kind`, `output`)
-- as JSON object members without the braces: what a worker sends for a finished job.
-- @tparam table e entry
-- @treturn string
function report.encode_tail(e)
  local parts = encode_fields(e, NHEAD + 1, #ORDER, {})
  local extra = {}
  for k in pairs(e) do
    if not ORDERED[k] and type(k) == "string" then extra[#extra + 1] = k end
  end
  table.sort(extra)
  for _, k in ipairs(extra) do parts[#parts + 1] = KEYS[k] .. encode_value(e[k]) end
  return table.concat(parts, ",")
end

-- An entry made from the head of a worker's line only (status, seconds, bytes): the other
-- fields are decoded from its tail the first time one is read or the entry is iterated.
local function materialize(e)
  local tail = tails[e]
  setmetatable(e, nil)
  local t = tail and plain.decode("{" .. tail .. "}")
  if not t then return end
  for k, v in pairs(t) do
    if rawget(e, k) == nil then rawset(e, k, v) end
  end
end
local LAZY = {
  __index = function(e, k)
    materialize(e)
    return rawget(e, k)
  end,
  __pairs = function(e)
    materialize(e)
    return next, e, nil
  end,
}

--- Records that `tail` (from `report.encode_tail`) is the encoding of entry `e` from
-- `status` on, so `encode_entry(e)` reuses it. The entry must not be changed afterwards.
-- With `lazy`, `e` holds only some fields yet (`index`, `input`, `kind`, `output`, `status`,
-- `seconds`, `bytes`): the others are decoded from `tail` when first read.
function report.set_tail(e, tail, lazy)
  tails[e] = tail
  if lazy then setmetatable(e, LAZY) end
end

--- Encodes one entry as a single JSON object (keys in a stable order; `error` always present).
-- @tparam table e entry
-- @treturn string JSON text without newline
function report.encode_entry(e)
  local text = encoded[e]
  if text then return text end
  local tail = tails[e]
  local parts = encode_fields(e, 1, NHEAD, {})
  parts[#parts + 1] = tail or report.encode_tail(e)
  text = "{" .. table.concat(parts, ",") .. "}"
  if tail then encoded[e] = text end -- the journal line is reused by the final report
  return text
end

--- Counts statuses.
-- @tparam table entries
-- @treturn table `{ok = N, failed = N, skipped = N}`
function report.summary(entries)
  local s = { ok = 0, failed = 0, skipped = 0 }
  for _, e in ipairs(entries) do
    s[e.status] = (s[e.status] or 0) + 1
  end
  return s
end

--- Encodes a whole report.
-- @tparam table entries
-- @tparam[opt] table meta extra top-level fields (e.g. `shard`, `seconds`)
-- @treturn string JSON text
function report.encode(entries, meta)
  local lines = {}
  for i, e in ipairs(entries) do lines[i] = "  " .. report.encode_entry(e) end
  local s = report.summary(entries)
  local out = { '{"jobs": [\n', table.concat(lines, ",\n"), #lines > 0 and "\n" or "", "],\n",
    string.format(' "summary": {"ok": %d, "failed": %d, "skipped": %d}', s.ok, s.failed, s.skipped) }
  if meta then
    local keys = {}
    for k in pairs(meta) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      out[#out + 1] = ",\n " .. cjson.encode(k) .. ": " .. cjson.encode(meta[k])
    end
  end
  out[#out + 1] = "\n}\n"
  return table.concat(out)
end

--- Writes `data` to `path` atomically (see `fsutil.write_file_atomic`), never replacing
-- a file owned by another user: the replacement would keep their ownership, and a report
-- is what `--resume` trusts (docs/safety.md "The report journal").
-- @return true | nil, message, ENAME, info
function report.write_file(path, data)
  return fsutil.write_file(path, data, { foreign = false })
end

--- Refuses a report path that another user owns (checked before a batch starts, so the
-- work is not done for a report that cannot be written).
-- @return true | nil, message
function report.check_owner(path)
  local a = require("lfs").symlinkattributes(path)
  local euid = core.proc_info().euid
  if a and a.mode == "file" and a.uid ~= euid then
    return nil, string.format("report %s: refusing to replace a file owned by uid %d (we are uid %d): " ..
      "another user could read or rewrite it; remove it or choose another path", path, a.uid, euid)
  end
  return true
end

--- The journal of a report being written (group commit).
-- `append(entry)` only buffers the entry's line; `commit()` writes every buffered line with
-- one write and makes them durable with one fsync. The runner commits a group when it is
-- `GROUP` entries large or `GROUP_SECONDS` old, and before the final report, so a kill
-- (even a power loss) loses at most the last uncommitted group: those jobs are not in the
-- journal and `--resume` runs them again. A line is never in the journal before its job
-- has finished.
-- A new run starts an empty journal; with `opts.append` (a resume into the same report)
-- the journal is opened for append and never truncated, so the progress it holds survives
-- a resume killed at any moment. A torn last line (the kill landed mid-write) is ended
-- before the first new line, so it spoils no new entry.
-- One process at a time: the journal is held with an exclusive lock until `close`, so a
-- second run into the same report (two resumes at once, or a new run) is refused at once
-- and never truncates or appends to the live journal; a journal owned by another user
-- (a shared folder) is refused too (`core.proc_open`, docs/safety.md).
-- @tparam string path the report path (the journal is `path .. ".journal"`)
-- @tparam[opt] table opts `append` (keep the existing lines)
-- @treturn table journal with `append(entry)`, `commit()`, `pending()`, `close(remove)`
-- @return nil, message
function report.journal(path, opts)
  local jpath = path .. ".journal"
  local append = opts and opts.append
  local size = append and fsutil.file_size(jpath) or 0
  local torn = size > 0 and fsutil.read_range(jpath, size - 1, 1) ~= "\n"
  local fd, err, ename = core.proc_open(jpath, append and "append" or "truncate")
  if not fd and ename == "EWOULDBLOCK" then
    return nil, require("actionqueue.storage.datadir").locked_error(jpath, err, ename).message ..
      " (another batch is writing this report; wait for it, or choose another --report)"
  end
  if not fd then return nil, err end
  fsutil.fsync_dir(fsutil.dirname(jpath))
  local j = { path = jpath }
  local buf, n = {}, 0
  function j.append(e)
    n = n + 1
    buf[n] = report.encode_entry(e)
    return true
  end
  --- Number of entries appended but not committed yet.
  function j.pending() return n end
  function j.commit()
    if n == 0 or not fd then return true end
    buf[n + 1] = ""
    local data = table.concat(buf, "\n", 1, n + 1)
    if torn then data = "\n" .. data end
    buf, n = {}, 0
    local ok, werr = core.proc_write(fd, data)
    if not ok then return nil, werr end
    torn = false
    return core.proc_fsync(fd)
  end
  function j.close(remove)
    -- removed while still locked: a run that opened the name meanwhile finds it gone
    if remove and fd then os.remove(jpath) end
    if fd then core.proc_close(fd) end
    fd = nil
  end
  return j
end
report.GROUP = 256
report.GROUP_SECONDS = 0.05


--- Loads a report: the final JSON file, or its journal when the batch was killed.
-- A journal's last line may be torn by the kill; such a line is ignored.
-- @tparam string path report path (or a `.journal` path)
-- @treturn table list of entries
-- @treturn string which file was read
-- @return nil, message when neither exists or the report is not valid JSON
function report.load(path)
  local data = fsutil.read_file(path)
  local source = path
  if data and not path:match("%.journal$") then
    local t, err = require("cjson.safe").decode(data)
    if type(t) ~= "table" or type(t.jobs) ~= "table" then
      return nil, path .. ": not a batch report" .. (err and (" (" .. err .. ")") or "")
    end
    local entries = {}
    for i, e in ipairs(t.jobs) do entries[i] = type(e) == "table" and plain.fields(e) or e end
    return entries, source
  end
  if not data then
    source = path .. ".journal"
    data = fsutil.read_file(source)
    if not data then return nil, path .. ": no report and no journal" end
  end
  local entries = {}
  for line in data:gmatch("[^\n]+") do
    local e = plain.decode(line)
    if e and e.status then entries[#entries + 1] = e end
  end
  return entries, source
end

local function key(e)
  return table.concat({ e.kind or "", e.input or "", e.output or "" }, "\0")
end
report.key = key

--- Merges several reports (e.g. one per shard) into one entry list.
-- Entries are ordered by their job `index` (then input); when the same job (index, kind,
-- input, output) appears more
-- than once the later report wins, except that a success is never replaced by a failure.
-- @tparam table paths report files
-- @treturn table entries
-- @return nil, message
function report.merge(paths)
  local by_key, order = {}, {}
  for _, p in ipairs(paths) do
    local entries, err = report.load(p)
    if not entries then return nil, err end
    for _, e in ipairs(entries) do
      local k = tostring(e.index) .. "\0" .. key(e)
      local old = by_key[k]
      if not old then
        order[#order + 1] = k
        by_key[k] = e
      elseif not (old.status ~= "failed" and e.status == "failed") then
        by_key[k] = e
      end
    end
  end
  local out = {}
  for i, k in ipairs(order) do out[i] = by_key[k] end
  table.sort(out, function(a, b)
    local ia, ib = a.index or math.huge, b.index or math.huge
    if ia ~= ib then return ia < ib end
    return (a.input or "") < (b.input or "")
  end)
  return out
end

return report
