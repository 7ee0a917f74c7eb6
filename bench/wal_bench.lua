-- WAL v5 throughput (not a test: it prints figures).
--  1. decode a generated 100k-record WAL: records/s and MB/s, for the full reader
--     (frames + CRC + postcard) and for the postcard decoder alone; compared per byte
--     with the snapshot JSON path (C json_decode on the same events as JSON, and on a
--     snapshot fixture payload when the shared fixtures are present);
--  2. durable appends with sync "always" vs the device's raw append+fdatasync rate
--     measured in the same run, same directory (target >= 0.9x);
--  3. "batch" group commit records/s (target >= 100,000).
-- Env: WAL_BENCH_RECORDS (default 100000), WAL_BENCH_SYNCS (default 2000), WAL_BENCH_DIR.
local core = require "actionqueue.storage.core"
local codec = require "actionqueue.storage.wal.codec"
local reader = require "actionqueue.storage.wal.reader"
local appender = require "actionqueue.storage.wal.appender"
local W = require "actionqueue.storage.schema.wal"

local N = tonumber(os.getenv("WAL_BENCH_RECORDS")) or 100000
local SYNCS = tonumber(os.getenv("WAL_BENCH_SYNCS")) or 2000
local now = core.proc_clock or os.clock
local dir = os.getenv("WAL_BENCH_DIR") or "/tmp"

local function path(name) return string.format("%s/wal_bench_%d_%s.wal", dir, math.random(1e9), name) end
local function id(prefix, n) return string.format("%s-0000-4000-8000-%012x", prefix, n) end

-- A mix of variants modelled on a task's life.
local function make_events(n)
  local events, seq, i, t = {}, 0, 0, 1700000000
  local function push(variant, fields)
    seq = seq + 1
    events[seq] = { sequence = seq, event = { [variant] = fields } }
  end
  while seq < n do
    i = i + 1
    local task, run, att = id("7a5c0000", i), id("12a00000", i), id("a77e0000", i)
    push("TaskCreated", { timestamp = t, task_spec = {
      id = task, payload = { bytes = string.rep("x", 32), content_type = "text/plain" },
      run_policy = (i % 3 == 0) and { Repeat = { count = 3, interval_secs = 60 } } or "Once",
      constraints = { max_attempts = 3, timeout_secs = 30 },
      metadata = { tags = { "bench" }, priority = i % 10 - 5 } } })
    push("RunCreated", { run_instance = { id = run, task_id = task, state = "Scheduled",
      attempt_count = 0, created_at = t, scheduled_at = t, effective_priority = 0, last_state_change_at = t } })
    push("RunStateChanged", { run_id = run, previous_state = "Scheduled", new_state = "Ready", timestamp = t })
    push("LeaseAcquired", { run_id = run, owner = "worker-1", expiry = t + 30, timestamp = t })
    push("AttemptStarted", { run_id = run, attempt_id = att, timestamp = t })
    push("AttemptFinished", { run_id = run, attempt_id = att, result = "Success", output = "ok", timestamp = t })
    push("LeaseReleased", { run_id = run, owner = "worker-1", expiry = t + 30, timestamp = t })
    push("RunStateChanged", { run_id = run, previous_state = "Running", new_state = "Completed", timestamp = t })
    t = t + 1
  end
  for k = n + 1, #events do events[k] = nil end
  return events
end

local function rate(n, secs) return n / secs end
-- best of 3 wall-clock runs (the machine is shared)
local function best(f)
  local b = math.huge
  for _ = 1, 3 do
    local t0 = now()
    f()
    b = math.min(b, now() - t0)
  end
  return b
end
local function mb(bytes, secs) return bytes / 1048576 / secs end

print(string.format("wal_bench: %d records, %d durable appends, dir %s", N, SYNCS, dir))
local events = make_events(N)

-- 1. decode ------------------------------------------------------------------------
local p = path("decode")
do
  local w = assert(appender.open(p, { sync = "none" }))
  local t0 = now()
  assert(w:append_batch(events))
  w:close()
  print(string.format("  encode+write (one batch, no sync): %.0f records/s", rate(N, now() - t0)))
end
local f = assert(io.open(p, "rb"))
local data = f:read("a")
f:close()
local size = #data

local t0 = now()
local s = reader.scan(p, nil, function() end)
local secs = now() - t0
assert(s.records == N and not s.error)
print(string.format("  reader.scan, events built:         %.0f records/s, %.1f MB/s (%d bytes)",
  rate(N, secs), mb(size, secs), size))
t0 = now()
s = reader.scan(p)
secs = now() - t0
assert(s.records == N and not s.error)
print(string.format("  reader.scan, skim (verify/open):   %.0f records/s, %.1f MB/s",
  rate(N, secs), mb(size, secs)))

local payloads, pbytes, pos = {}, 0, 1
for k = 1, N do
  local _, len = string.unpack("<I4I4", data, pos)
  payloads[k] = data:sub(pos + 12, pos + 11 + len)
  pbytes = pbytes + len
  pos = pos + 12 + len
end
local decode = core.postcard_decode
local WalEvent = W.WalEvent
local opts = codec.options()
secs = best(function() for k = 1, N do assert(decode(payloads[k], WalEvent, opts)) end end)
local pc_rate = mb(pbytes, secs)
print(string.format("  postcard_decode alone:             %.0f records/s, %.1f MB/s", rate(N, secs), pc_rate))
local SK = { skim = true }
secs = best(function() for k = 1, N do assert(decode(payloads[k], WalEvent, SK)) end end)
local sk_rate = mb(pbytes, secs)
print(string.format("  postcard skim alone:               %.0f records/s, %.1f MB/s", rate(N, secs), sk_rate))

if core.json_encode and core.json_decode then
  local jsons, jbytes = {}, 0
  for k = 1, N do
    jsons[k] = assert(core.json_encode((decode(payloads[k], WalEvent, opts)), WalEvent))
    jbytes = jbytes + #jsons[k]
  end
  secs = best(function() for k = 1, N do assert(core.json_decode(jsons[k], WalEvent)) end end)
  local js_rate = mb(jbytes, secs)
  print(string.format("  json_decode, same events as JSON:  %.0f records/s, %.1f MB/s (%d bytes, %.1fx postcard)",
    rate(N, secs), js_rate, jbytes, jbytes / pbytes))
  print(string.format("  per event: decode %.1fx, skim %.1fx faster than JSON; per byte: decode %.2fx, skim %.2fx",
    (jbytes / js_rate) / (pbytes / pc_rate), (jbytes / js_rate) / (pbytes / sk_rate),
    pc_rate / js_rate, sk_rate / js_rate))
  local ok, fixtures = pcall(require, "spec.support.fixtures")
  local snap = ok and fixtures.read(fixtures.path("snapshot", "valid_12_medium_1000.snap"))
  if snap then
    local S = require "actionqueue.storage.schema.snapshot"
    local payload = snap:sub(13)
    local reps = 20
    t0 = now()
    for _ = 1, reps do assert(core.json_decode(payload, S.Snapshot)) end
    secs = now() - t0
    print(string.format("  snapshot json_decode (valid_12_medium_1000, %d bytes): %.1f MB/s",
      #payload, mb(#payload * reps, secs)))
  end
else
  print("  (core.json_decode not built: JSON comparison skipped)")
end
os.remove(p)

-- 2. durable appends vs raw fdatasync ---------------------------------------------
local small = {}
for k = 1, SYNCS do small[k] = { sequence = k, event = { EnginePaused = { timestamp = 1700000000 + k } } } end
local rec = assert(codec.encode_record(small[1]))

-- Interleaved in rounds on two open logs so that the device's (and the machine's)
-- changing load hits both alike; rates from the summed times.
do
  local rp, ap = path("raw"), path("always")
  local log = assert(core.log_open(rp))
  local w = assert(appender.open(ap, { sync = "always" }))
  local ROUNDS = 10
  local per = SYNCS // ROUNDS
  local raw_t, always_t, k = 0, 0, 0
  for _ = 1, ROUNDS do
    local r0 = now()
    for _ = 1, per do
      assert(log:append(rec))
      assert(log:sync())
    end
    raw_t = raw_t + (now() - r0)
    r0 = now()
    for _ = 1, per do
      k = k + 1
      assert(w:append(small[k]))
    end
    always_t = always_t + (now() - r0)
  end
  log:close()
  w:close()
  os.remove(rp)
  os.remove(ap)
  local raw, always = per * ROUNDS / raw_t, per * ROUNDS / always_t
  print(string.format("  raw append+fdatasync:  %.0f /s", raw))
  print(string.format("  appender sync=always:  %.0f records/s (%.2fx raw; target >= 0.9x)", always, always / raw))
end

-- 3. batch group commit -----------------------------------------------------------
for _, B in ipairs { 1000, 10000 } do
  local bp = path("batch")
  local w = assert(appender.open(bp, { sync = "batch" }))
  local r0 = now()
  local k = 1
  while k <= N do
    local chunk = table.move(events, k, math.min(k + B - 1, N), 1, {})
    assert(w:append_batch(chunk))
    k = k + B
  end
  local rs = now() - r0
  w:close()
  os.remove(bp)
  print(string.format("  appender sync=batch (%d per commit): %.0f records/s, %d fdatasyncs (target >= 100,000)",
    B, N / rs, math.ceil(N / B)))
end
