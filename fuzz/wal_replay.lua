-- libFuzzer target (differential): arbitrary WAL bytes as DIR/wal/actionqueue.wal of a
-- data dir without a snapshot, through recovery.recover (the bootstrap's one pass:
-- csrc/replay.c's ReplayState:replay over the frames, the postcard skim, the tasks' and
-- runs' events applied from their payload).
-- The reference is the record-at-a-time path: reader.scan in the writer-open order with
-- every payload fully decoded into Lua values, then reducer.apply per record on a fresh
-- projection (the tasks' and runs' rules are C-only since the replay moved there: that
-- path re-encodes the decoded fields for them, so it checks the loop, the skim and the
-- dispatch, not a second copy of those rules).
-- Properties: nothing raises; the same outcome (kind and text of the error, events
-- applied, sequences, counts, runs by state, paused); the snapshot of both projections
-- (to_snapshot.build + the canonical encoder) is the same, and the streamed compaction
-- (to_snapshot.write) writes exactly it or, when the build is refused, nothing.
-- When the input is the WAL of a WAL-only golden recovery fixture, the printed lines of
-- `aqstore compact` (RECOVERED ..., OK .../ERR ...) must be the manifest's.
-- datadir.lua needs lfs, the fixtures' manifest cjson: the system's (uninstrumented)
-- modules; the core stays the statically linked, instrumented one (package.preload).
package.cpath = package.cpath .. ";/usr/local/lib/lua/5.4/?.so;/usr/lib/x86_64-linux-gnu/lua/5.4/?.so"
  .. ";/usr/lib/lua/5.4/?.so"
local lfs = require "lfs"
local core = require "actionqueue.storage.core"
local recovery = require "actionqueue.storage.recovery"
local reader = require "actionqueue.storage.wal.reader"
local appender = require "actionqueue.storage.wal.appender"
local reducer = require "actionqueue.storage.recovery.reducer"
local state_mod = require "actionqueue.storage.recovery.state"
local to_snapshot = require "actionqueue.storage.recovery.to_snapshot"
local snapshot = require "actionqueue.storage.snapshot"

local TS = 1800000000 -- the recovery fixtures' compaction timestamp
local n_expect = 0
local base = io.open("/dev/shm", "rb") and "/dev/shm" or (os.getenv("TMPDIR") or "/tmp")
-- a temp data dir per input, removed before the driver returns (or raises)
local dir = ("%s/aqs-fuzz-replay-%d-%d"):format(base, os.time(), math.random(1 << 30))
local DATA, WAL, OUT = dir .. "/data", dir .. "/data/wal/actionqueue.wal", dir .. "/out.snap"

local function put(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end
local function get(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

-- The golden WAL-only recovery fixtures: WAL bytes -> expected output lines.
local EXPECT = {}
do
  local fixtures = os.getenv("AQ_FIXTURES")
  for _, c in ipairs { fixtures or false, (os.getenv("AQS_ROOT") or ".") .. "/../shared/fixtures",
                       "/work/shared/fixtures" } do
    if c and get(c .. "/wal/manifest.json") then fixtures = c break end
  end
  local has_cjson, cjson = pcall(require, "cjson")
  if fixtures and has_cjson then
    for _, e in ipairs(cjson.decode(get(fixtures .. "/wal/manifest.json"))) do
      if e.kind == "recovery" and e.snapshot == cjson.null and e.timestamp == TS
          and type(e.wal) == "table" and type(e.recover) == "table" then
        local bytes = get(fixtures .. "/wal/" .. e.wal.file)
        if bytes then EXPECT[bytes] = table.concat(e.recover.stdout, "\n") n_expect = n_expect + 1 end
      end
    end
  end
end

local function summary_line(st, applied, latest_writer)
  local by = {}
  for k, v in pairs(state_mod.runs_by_state(st)) do by[#by + 1] = k .. "=" .. tostring(v) end
  table.sort(by)
  return ("applied=%d latest=%s writer=%s tasks=%d runs=%d paused=%s states={%s}"):format(applied,
    math.tointeger(st.latest) and ("%u"):format(st.latest) or tostring(st.latest),
    ("%u"):format(latest_writer), state_mod.task_count(st), state_mod.run_count(st),
    tostring(st.engine.paused), table.concat(by, ","))
end

-- The projection's snapshot: "OK <payload>" | "ERR <text>"
local function built(st)
  local snap, v = to_snapshot.build(st, TS)
  if not snap then return "ERR " .. tostring(v and v.message), nil end
  local payload = assert(snapshot.encode(snap))
  return "OK " .. payload, payload, snap
end

local function by_recovery()
  local r, err = recovery.recover(DATA)
  if not r then return "ERR " .. tostring(err.kind) .. " " .. tostring(err.message), nil, err end
  return "RECOVERED " .. summary_line(r.state, r.wal_replay_events_applied, r.wal_writer_sequence), r
end

local function by_records()
  local events = {}
  local sum = reader.scan(WAL, { order = "writer_open" }, function(_, ev) events[#events + 1] = ev end)
  if sum.error then
    return "ERR WalInit WAL init error: " .. appender.open_error(sum.error).message
  end
  local st, applied = state_mod.new(), 0
  for _, ev in ipairs(events) do
    local ok, rerr = reducer.apply(st, ev)
    if not ok then
      return "ERR WalReplay WAL replay error: Reducer error: " .. tostring(rerr.message)
    end
    applied = applied + 1
  end
  return "RECOVERED " .. summary_line(st, applied, sum.last_sequence), st
end

-- in the fuzzer's log (no `arg` there; busted has one): the golden check is armed
if rawget(_G, "arg") == nil then
  io.stderr:write(("wal_replay: %d golden WAL-only recovery expectations\n"):format(n_expect))
end

local function check(data)
  put(WAL, data)
  local a, r = by_recovery()
  local b, ref_st = by_records()
  if a ~= b then error(("recovery says %q, records say %q"):format(a, b)) end
  local lines
  if r then
    local ba, payload = built(r.state)
    local bb = built(ref_st)
    if ba ~= bb then error(("snapshots differ: %q vs %q"):format(ba:sub(1, 200), bb:sub(1, 200))) end
    local ok, werr = to_snapshot.write(r.state, TS, OUT)
    if payload then
      assert(ok == true, "streamed compaction refused a snapshot the build accepts: " ..
        tostring(werr and werr.message))
      assert(get(OUT) == core.frame_encode(4, payload), "streamed compaction bytes differ from build + encode")
    else
      assert(ok == false, "streamed compaction wrote a snapshot the build refuses: " .. ba)
      assert(get(OUT) == nil, "streamed compaction left a file")
    end
    local st = r.state
    lines = ("RECOVERED snapshot_loaded=false snapshot_sequence=0 snapshot_events_applied=0 "
      .. "wal_replay_events_applied=%d latest_sequence=%u wal_writer_sequence=%u tasks=%d runs=%d\n")
      :format(r.wal_replay_events_applied, st.latest, r.wal_writer_sequence,
        state_mod.task_count(st), state_mod.run_count(st))
    if payload then
      lines = lines .. ("OK wal_sequence=%u tasks=%d runs=%d snapshot_bytes=%d"):format(st.latest,
        state_mod.task_count(st), state_mod.run_count(st), 12 + #payload)
    else
      lines = lines .. ba
    end
  else
    lines = a:gsub("^ERR %S+ ", "ERR ")
  end
  local want = EXPECT[data]
  if want and want ~= lines then
    error(("golden recovery fixture: expected %q, got %q"):format(want, lines))
  end
end

local function clean()
  os.remove(WAL)
  os.remove(OUT)
  for _, d in ipairs { DATA .. "/wal", DATA .. "/snapshots", DATA } do
    for name in lfs.dir(d) do
      if name ~= "." and name ~= ".." then os.remove(d .. "/" .. name) end
    end
    lfs.rmdir(d)
  end
  lfs.rmdir(dir)
end

-- (the second value, the temp dir, is for the spec)
return function(data)
  for _, d in ipairs { dir, DATA, DATA .. "/wal", DATA .. "/snapshots" } do assert(lfs.mkdir(d)) end
  local ok, err = pcall(check, data)
  clean()
  if not ok then error(err, 0) end
end, dir
