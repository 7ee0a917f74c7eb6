-- The bootstrap's one WAL pass (steps 2, 6 and 7 of recovery.md §2 together): the
-- outcome must stay the one of the reference's separate steps, whose strict scan of the
-- whole file comes before the snapshot's warnings and before any replay.
local lfs = require "lfs"
local files = require "support.files"
local codec = require "actionqueue.storage.wal.codec"
local recovery = require "actionqueue.storage.recovery"

local function paused(ts) return { EnginePaused = { timestamp = ts } } end
local function resumed(ts) return { EngineResumed = { timestamp = ts } } end

-- A data dir whose WAL holds `records` ({seq, event}) followed by the raw bytes `tail`.
local function data_dir(records, tail)
  local d = files.tmpdir()
  assert(lfs.mkdir(d .. "/wal"))
  assert(lfs.mkdir(d .. "/snapshots"))
  local f = assert(io.open(d .. "/wal/actionqueue.wal", "wb"))
  for _, r in ipairs(records) do
    local rec = assert(codec.encode_record({ sequence = r[1], event = r[2] }))
    f:write(rec)
  end
  f:write(tail or "")
  f:close()
  return d
end

describe("the bootstrap's one WAL pass", function()
  it("reports a corruption after a reducer rejection as the strict scan's WAL init error", function()
    local d = data_dir({ { 1, paused(10) }, { 2, paused(11) }, { 3, resumed(12) } }, "\5\0")
    finally(function() files.rmtree(d) end)
    local r, err = recovery.recover(d)
    assert.is_nil(r)
    assert.equal("WalInit", err.kind)
    assert.matches("^WAL init error: .*WAL corruption at offset %d+ %(incomplete_header%)$", err.message)
  end)

  it("without a corruption, the same WAL is a replay error after the events before it", function()
    local d = data_dir({ { 1, paused(10) }, { 2, paused(11) }, { 3, resumed(12) } })
    finally(function() files.rmtree(d) end)
    local r, err = recovery.recover(d)
    assert.is_nil(r)
    assert.equal("WAL replay error: Reducer error: Engine control causality violation during replay: "
      .. "engine pause rejected: already paused at 10, duplicate timestamp 11", err.message)
  end)

  it("does not report the snapshot's warnings when the WAL fails its strict scan", function()
    local d = data_dir({ { 1, paused(10) } }, "\5\0\0\0\1")
    finally(function() files.rmtree(d) end)
    local f = assert(io.open(d .. "/snapshots/snapshot.bin", "wb"))
    f:write("garbage, not a snapshot")
    f:close()
    local warned = {}
    local r, err = recovery.recover(d, { on_warning = function(w) warned[#warned + 1] = w end })
    assert.is_nil(r)
    assert.equal("WalInit", err.kind)
    assert.same({}, warned)
    -- and with a good WAL the warning is reported once
    f = assert(io.open(d .. "/wal/actionqueue.wal", "wb"))
    f:write(codec.encode_record({ sequence = 1, event = paused(10) }))
    f:close()
    r = assert(recovery.recover(d, { on_warning = function(w) warned[#warned + 1] = w end }))
    assert.equal(1, #warned)
    assert.matches("^snapshot load failed, falling back to WAL%-only replay: ", warned[1])
    assert.same(warned, r.warnings)
    assert.is_true(r.state.engine.paused)
  end)

  it("replays from the first record with sequence s + 1 only (records before it skimmed)", function()
    local d = data_dir({})
    finally(function() files.rmtree(d) end)
    -- snapshot at 2 (engine paused at 10), WAL 1, 2, 3 (resume), 4 (pause)
    local st = recovery.state.new()
    assert(recovery.reducer.apply(st, { sequence = 1, event = paused(10) }))
    st.latest = 2
    local snapshot = require "actionqueue.storage.snapshot"
    assert(snapshot.write(d .. "/snapshots/snapshot.bin", assert(recovery.build(st, 99))))
    local f = assert(io.open(d .. "/wal/actionqueue.wal", "wb"))
    for i, ev in ipairs { paused(10), resumed(11), resumed(12), paused(13) } do
      f:write(codec.encode_record({ sequence = i, event = ev }))
    end
    f:close()
    local r = assert(recovery.recover(d))
    assert.same({ 2, 2, 4, true, 13 }, { r.snapshot_sequence, r.wal_replay_events_applied,
      r.state.latest, r.state.engine.paused, r.state.engine.paused_at })
  end)
end)
