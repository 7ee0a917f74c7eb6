-- Golden recovery fixtures (fixtures/wal/recovery, manifest kind "recovery"): every data
-- dir compacts to the expected snapshot bytes or prints the expected ERR line, on a copy,
-- without modifying the WAL. Plus round trips: a compacted snapshot loads and recovers
-- to the state of the WAL-only replay (modulo the documented hydration losses).
local fixtures = require "support.fixtures"
local files = require "support.files"
local cjson = require "cjson"

local have_snapshot = pcall(function()
  local s = require "actionqueue.storage.snapshot"
  assert(s.load and s.write)
end)

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

local tmpdir, read = files.tmpdir, files.read

local function copy_fixture(dir)
  local tmp = tmpdir()
  local data = tmp .. "/data"
  local src = fixtures.path("wal", dir)
  if not os.execute("test -d '" .. src .. "'") then
    sh("mkdir -p '" .. data .. "'") -- empty_datadir may be dropped by a checkout
  else
    sh("cp -r '" .. src .. "' '" .. data .. "'")
  end
  return tmp, data
end

local entries = {}
if fixtures.available() then
  for _, e in ipairs(fixtures.manifest("wal")) do
    if e.kind == "recovery" then entries[#entries + 1] = e end
  end
end

local function recovered_line(s)
  return string.format("RECOVERED snapshot_loaded=%s snapshot_sequence=%u snapshot_events_applied=%d "
    .. "wal_replay_events_applied=%d latest_sequence=%u wal_writer_sequence=%u tasks=%d runs=%d",
    tostring(s.snapshot_loaded), s.snapshot_sequence, s.snapshot_events_applied,
    s.wal_replay_events_applied, s.latest_sequence, s.wal_writer_sequence, s.tasks, s.runs)
end

describe("recovery fixtures: compact DIR --timestamp T", function()
  it("has recovery fixtures", function()
    assert.is_true(#entries >= 29)
  end)

  for _, e in ipairs(entries) do
    local test = have_snapshot and it or pending
    test(e.dir, function()
      local recovery = require "actionqueue.storage.recovery"
      local tmp, data = copy_fixture(e.dir)
      local wal_before = read(data .. "/wal/actionqueue.wal")
      local snap_before = read(data .. "/snapshots/snapshot.bin")
      local out = tmp .. "/out.snap"
      local ok, info = recovery.compact(data, { timestamp = math.tointeger(e.timestamp), out = out })
      local stdout = e.recover.stdout
      if e.expected_snap ~= cjson.null then
        assert.is_true(ok, info and info.message)
        assert.equal(stdout[1], recovered_line(info.recovered))
        local expected = assert(read(fixtures.path("wal", e.expected_snap)))
        local got = read(out)
        assert.equal(#expected, #got)
        assert.is_true(expected == got, "bytes differ from " .. e.expected_snap)
        assert.equal(stdout[2], string.format("OK wal_sequence=%u tasks=%d runs=%d snapshot_bytes=%d",
          info.wal_sequence, info.tasks, info.runs, info.snapshot_bytes))
      else
        assert.is_nil(ok)
        assert.equal(stdout[#stdout], "ERR " .. info.message)
        if #stdout == 2 then
          assert.equal(stdout[1], recovered_line(info.recovered))
        end
        assert.is_nil(read(out))
      end
      -- never modifies the WAL nor the input snapshot
      if wal_before then assert.is_true(wal_before == read(data .. "/wal/actionqueue.wal")) end
      assert.is_true(snap_before == read(data .. "/snapshots/snapshot.bin"))
      sh("rm -rf '" .. tmp .. "'")
    end)
  end
end)

-- Projection comparison modulo the hydration losses (recovery.md §5, §14.4).
local function normalized(snap)
  for _, r in ipairs(snap.runs) do
    r.run_instance.effective_priority = 0
    local h = r.state_history
    r.run_instance.last_state_change_at = h[#h] and h[#h].timestamp or r.run_instance.created_at
  end
  for _, a in ipairs(snap.actors) do a.last_heartbeat_at = nil end
  for _, t in ipairs(snap.tasks) do t.updated_at = nil end
  -- a 0-limit budget exhausted through a 0-amount consume comes back not exhausted
  for _, b in ipairs(snap.budgets) do
    if b.limit == 0 and b.consumed == 0 then b.exhausted = false end
  end
  return snap
end

describe("recovery round trips", function()
  local test = (have_snapshot and fixtures.available()) and it or pending

  test("a compacted snapshot loads and recovers to the WAL-only state", function()
    local recovery = require "actionqueue.storage.recovery"
    local snapshot = require "actionqueue.storage.snapshot"
    for _, name in ipairs { "recovery/wal_only_medium", "recovery/large_wal_only",
                            "recovery/hydration_losses_wal_only", "recovery/capability_grants_wal_only",
                            "recovery/budget_limits_wal_only", "recovery/budgets_multi_dim_wal_only" } do
      local tmp, data = copy_fixture(name)
      local out = tmp .. "/c.snap"
      assert(recovery.compact(data, { timestamp = 1800000000, out = out }))
      local loaded = assert(snapshot.load(out))
      local full = assert(recovery.recover(data, { bootstrap = true })) -- creates snapshots/
      -- the snapshot, installed next to the same WAL, covers everything
      sh("cp '" .. out .. "' '" .. data .. "/snapshots/snapshot.bin'")
      local r = assert(recovery.recover(data))
      assert.is_true(r.snapshot_loaded)
      assert.equal(0, r.wal_replay_events_applied)
      assert.equal(full.state.latest, r.state.latest)
      local a = normalized(assert(recovery.build(full.state, 1800000000)))
      local b = assert(recovery.build(r.state, 1800000000))
      assert.same(a, normalized(b))
      assert.same(normalized(loaded), normalized(b))
      sh("rm -rf '" .. tmp .. "'")
    end
  end)

  test("snapshot at sequence N + tail equals the full replay (§13.1 #17)", function()
    local recovery = require "actionqueue.storage.recovery"
    local snapshot = require "actionqueue.storage.snapshot"
    local reader = require "actionqueue.storage.wal.reader"
    local reducer = recovery.reducer
    local tmp, data = copy_fixture("recovery/wal_only_medium")
    local full = assert(recovery.recover(data, { bootstrap = true })) -- creates snapshots/
    for _, n in ipairs { 1, 100, 450, 898 } do
      local st = recovery.state.new()
      reader.scan(data .. "/wal/actionqueue.wal", {}, function(_, ev)
        if st.latest < n then assert(reducer.apply(st, ev)) end
      end)
      local snap = assert(recovery.build(st, 1700100000))
      assert(snapshot.write(data .. "/snapshots/snapshot.bin", snap))
      local r = assert(recovery.recover(data))
      assert.is_true(r.snapshot_loaded)
      assert.equal(n, r.snapshot_sequence)
      assert.equal(full.state.latest - n, r.wal_replay_events_applied)
      local a = normalized(assert(recovery.build(full.state, 1)))
      local b = normalized(assert(recovery.build(r.state, 1)))
      assert.same(a, b)
    end
    sh("rm -rf '" .. tmp .. "'")
  end)
end)
