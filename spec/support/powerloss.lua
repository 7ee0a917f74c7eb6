--- Power-loss scenarios, run in a child lua5.4 against the test build of the core
-- (build-iotest/, compiled with -DAQS_IO_TEST and spec/support/powerloss.c).
-- `powerloss.run(scenario, args)` starts the child with this file as script; the child
-- prints one line per case (`CASE <name> <n> ok|LOST <why>`) and a `DONE` line.
local M = {}

local root = (debug.getinfo(1, "S").source:sub(2):match("^(.*)/spec/support/[^/]*$")) or "."
if root:sub(1, 1) ~= "/" then root = assert(io.popen("pwd")):read("l") .. "/" .. root end
M.root = root
M.module = root .. "/build-iotest/actionqueue/storage/core.so"

function M.available()
  local f = io.open(M.module, "rb")
  if f then f:close() return true end
  return false
end

local spec_files = require "support.files"
local shq = spec_files.q

--- Runs a scenario; returns the list of case tables {name, n, ok, why} and the raw output.
function M.run(scenario, ...)
  local args = { ... }
  for i, a in ipairs(args) do args[i] = shq(a) end
  local cmd = ("LUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s %s 2>&1"):format(
    shq(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/spec/?.lua;;"),
    shq(root .. "/build-iotest/?.so;;"), shq(root .. "/spec/support/powerloss.lua"),
    shq(scenario), table.concat(args, " "))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local cases, done = {}, false
  for line in out:gmatch("[^\n]+") do
    local name, n, verdict = line:match("^CASE (%S+) (%d+) (.*)$")
    if name then
      cases[#cases + 1] = { name = name, n = tonumber(n), ok = verdict == "ok",
        why = verdict ~= "ok" and verdict or nil }
    elseif line == "DONE" then
      done = true
    end
  end
  return cases, out, done
end

if not (arg and arg[0] and arg[0]:match("powerloss%.lua$")) then return M end

---------------------------------------------------------------------------- child
local pl = assert(package.loadlib(package.searchpath("actionqueue.storage.core", package.cpath),
  "luaopen_aqs_powerloss"))()
local snapshot = require "actionqueue.storage.snapshot"
local wal = require "actionqueue.storage.wal"
local fixtures = require "support.fixtures"

local slurp, put = spec_files.read, spec_files.write
local function ls(dir)
  local t = {}
  local p = io.popen("ls -A " .. shq(dir))
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  table.sort(t)
  return table.concat(t, ",")
end
local function case(name, n, why)
  io.write(("CASE %s %d %s\n"):format(name, n, why or "ok"))
  io.stdout:flush()
end

local scenario, dir = arg[1], arg[2]
local MAXCUT = tonumber(arg[3]) or math.huge

local function fresh(files)
  os.execute("rm -rf " .. shq(dir) .. " && mkdir -p " .. shq(dir))
  for name, data in pairs(files) do
    os.execute("mkdir -p " .. shq((dir .. "/" .. name):match("^(.*)/")))
    put(dir .. "/" .. name, data)
  end
end

-- Cut points to try: every call up to the baseline's count, or a spread of MAXCUT.
local function cut_points(total)
  local pts = {}
  if total <= MAXCUT then
    for n = 1, total do pts[#pts + 1] = n end
  else
    for i = 1, MAXCUT do pts[#pts + 1] = math.max(1, (i * total) // MAXCUT) end
  end
  return pts
end

if scenario == "snapshot" then
  -- snapshot.write over an existing snapshot: OLD is durable, NEW is being written.
  local OLD = assert(slurp(fixtures.path("snapshot", "valid_01_tasks.snap")))
  local NEWB = assert(slurp(fixtures.path("snapshot", "valid_02_runs_all_states.snap")))
  local new_snap = assert(snapshot.decode(NEWB:sub(13)))
  local target = dir .. "/snapshot.bin"
  local function check(n, ok, label)
    local got = slurp(target)
    if ok and got ~= NEWB then return case(label, n, "LOST acknowledged write: target is " ..
      (got == OLD and "the old snapshot" or ("%d other bytes"):format(got and #got or -1))) end
    if got ~= OLD and got ~= NEWB then return case(label, n, "LOST target is neither old nor new") end
    local names = ls(dir)
    if names ~= "snapshot.bin" then return case(label, n, "LOST leftover files: " .. names) end
    local s = snapshot.load(target)
    if not s then return case(label, n, "LOST target does not load") end
    -- a second run without faults succeeds
    if not snapshot.write(target, new_snap, { validated = true }) or slurp(target) ~= NEWB then
      return case(label, n, "LOST rerun failed")
    end
    case(label, n)
  end
  fresh({ ["snapshot.bin"] = OLD })
  pl.start(dir)
  assert(snapshot.write(target, new_snap, { validated = true }))
  local base = pl.stats()
  pl.stop()
  for _, n in ipairs(cut_points(base.calls + 1)) do
    fresh({ ["snapshot.bin"] = OLD })
    pl.start(dir)
    pl.set({ cut_at = n })
    local ok = snapshot.write(target, new_snap, { validated = true })
    pl.crash()
    check(n, ok, "cut")
  end
  for k = 1, base.syncs do
    fresh({ ["snapshot.bin"] = OLD })
    pl.start(dir)
    pl.set({ skip_sync = k })
    local ok = snapshot.write(target, new_snap, { validated = true })
    pl.crash()
    check(k, ok, "skip_sync")
  end
  io.write(("BASE calls %d syncs %d\n"):format(base.calls, base.syncs))
elseif scenario == "wal" then
  -- Appends with sync "always"; the WAL file exists (durable) or is created by the appender.
  local create = arg[4] == "create"
  local events = {}
  for _, ev in wal.records(fixtures.path("wal", "events", "all_events.wal")) do
    events[#events + 1] = ev
    if #events == 6 then break end
  end
  local path = dir .. "/actionqueue.wal"
  local function setup() fresh(create and {} or { ["actionqueue.wal"] = "" }) end
  local function run(upto)
    local acked = {}
    local a = wal.open_appender(path)
    if not a then return acked end
    for i = 1, upto or #events do
      if not a:append(events[i]) then break end
      acked[#acked + 1] = events[i].sequence
    end
    a:close()
    return acked
  end
  local function check(n, acked, label)
    local got = {}
    if slurp(path) then
      local a, err = wal.open_appender(path, { repair = "truncate_partial" })
      if not a then return case(label, n, "LOST repair/open failed: " .. tostring(err)) end
      a:close()
      for _, ev in wal.records(path) do got[#got + 1] = ev.sequence end
    end
    for i, s in ipairs(acked) do
      if got[i] ~= s then
        return case(label, n, ("LOST acknowledged sequence %d (have %d records)"):format(s, #got))
      end
    end
    -- a second run without faults appends after whatever survived
    local a = wal.open_appender(path)
    if not a then return case(label, n, "LOST reopen failed") end
    local ok = a:append({ sequence = a:next_sequence(), event = { EnginePaused = { timestamp = 1 } } })
    a:close()
    if not ok then return case(label, n, "LOST rerun append failed") end
    case(label, n)
  end
  setup()
  pl.start(dir)
  run()
  local base = pl.stats()
  pl.stop()
  for _, n in ipairs(cut_points(base.calls + 1)) do
    setup()
    pl.start(dir)
    pl.set({ cut_at = n })
    local acked = run()
    pl.crash()
    check(n, acked, create and "cut_create" or "cut")
  end
  -- Skip the k-th sync and lose power right after the append it belonged to.
  -- (With "create" sync 1 is the directory's, sync k+1 belongs to append k.)
  for k = 1, base.syncs do
    setup()
    pl.start(dir)
    pl.set({ skip_sync = k })
    local acked = run(create and math.max(k - 1, 1) or k)
    pl.crash()
    check(k, acked, create and "skip_sync_create" or "skip_sync")
  end
  io.write(("BASE calls %d syncs %d\n"):format(base.calls, base.syncs))
elseif scenario == "compact" then
  -- recovery.compact of a snapshot + WAL tail data dir: old or new snapshot, WAL untouched.
  local recovery = require "actionqueue.storage.recovery"
  local src = fixtures.path("wal", "recovery", "snapshot_plus_tail")
  local SNAP = assert(slurp(src .. "/snapshots/snapshot.bin"))
  local WALB = assert(slurp(src .. "/wal/actionqueue.wal"))
  local files = { ["snapshots/snapshot.bin"] = SNAP, ["wal/actionqueue.wal"] = WALB }
  local target = dir .. "/snapshots/snapshot.bin"
  local function run() return recovery.compact(dir, { timestamp = 1700000000 }) end
  fresh(files)
  assert(run())
  local EXPECTED = slurp(target)
  local function check(n, ok, label)
    local got = slurp(target)
    if slurp(dir .. "/wal/actionqueue.wal") ~= WALB then return case(label, n, "LOST the WAL changed") end
    if ok and got ~= EXPECTED then return case(label, n, "LOST acknowledged compaction: " ..
      (got == SNAP and "the old snapshot" or ("%d other bytes"):format(got and #got or -1))) end
    if got ~= SNAP and got ~= EXPECTED then return case(label, n, "LOST snapshot is neither old nor new") end
    if ls(dir .. "/snapshots") ~= "snapshot.bin" then return case(label, n, "LOST leftover files") end
    local rok, rerr = run()
    if not rok then return case(label, n, "LOST rerun failed " .. tostring(rerr)) end
    case(label, n)
  end
  fresh(files)
  pl.start(dir)
  assert(run())
  local base = pl.stats()
  pl.stop()
  for _, n in ipairs(cut_points(base.calls + 1)) do
    fresh(files)
    pl.start(dir)
    pl.set({ cut_at = n })
    local ok = run()
    pl.crash()
    check(n, ok, "cut")
  end
  for k = 1, base.syncs do
    fresh(files)
    pl.start(dir)
    pl.set({ skip_sync = k })
    local ok = run()
    pl.crash()
    check(k, ok, "skip_sync")
  end
  io.write(("BASE calls %d syncs %d\n"):format(base.calls, base.syncs))
elseif scenario == "repair" then
  -- safe-mode repair of a torn tail: the valid records always survive; once repair has
  -- returned, the cut is durable and the saved cut bytes are complete.
  local repair = require "actionqueue.storage.wal.repair"
  local data = assert(slurp(fixtures.path("wal", "events", "all_events.wal")))
  local recs, off = {}, 1
  while off + 11 <= #data and #recs < 4 do
    local len = string.unpack("<I4", data, off + 4)
    recs[#recs + 1] = data:sub(off, off + 11 + len)
    off = off + 12 + len
  end
  local GOOD = recs[1] .. recs[2] .. recs[3]
  local TORN = recs[4]:sub(1, #recs[4] // 2)
  local path = dir .. "/actionqueue.wal"
  local cut = ("%s.cut-%d"):format(path, #GOOD)
  local function check(n, ok, label)
    local got = slurp(path)
    if ok and got ~= GOOD then return case(label, n, "LOST acknowledged repair: WAL not cut") end
    if ok and slurp(cut) ~= TORN then return case(label, n, "LOST acknowledged repair: cut bytes incomplete") end
    if got ~= GOOD and got ~= GOOD .. TORN then return case(label, n, "LOST valid records damaged") end
    local r = repair.run(path)
    if not r or slurp(path) ~= GOOD then return case(label, n, "LOST rerun failed") end
    case(label, n)
  end
  fresh({ ["actionqueue.wal"] = GOOD .. TORN })
  pl.start(dir)
  assert(repair.run(path))
  local base = pl.stats()
  pl.stop()
  for _, n in ipairs(cut_points(base.calls + 1)) do
    fresh({ ["actionqueue.wal"] = GOOD .. TORN })
    pl.start(dir)
    pl.set({ cut_at = n })
    local ok = repair.run(path)
    pl.crash()
    check(n, ok, "cut")
  end
  for k = 1, base.syncs do
    fresh({ ["actionqueue.wal"] = GOOD .. TORN })
    pl.start(dir)
    pl.set({ skip_sync = k })
    local ok = repair.run(path)
    pl.crash()
    check(k, ok, "skip_sync")
  end
  io.write(("BASE calls %d syncs %d\n"):format(base.calls, base.syncs))
else
  error("unknown scenario " .. tostring(scenario))
end
print("DONE")
