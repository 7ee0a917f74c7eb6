-- Recovery follows the schema (issue 17 item 1): every WalEventType variant has a reducer
-- handler, every snapshot collection is hydrated and emitted, and an event the reducer
-- does not know is a `nil, err` (never a raise that leaves the WAL reader open).
local lfs = require "lfs"
local W = require "actionqueue.storage.schema.wal"
local S = require "actionqueue.storage.schema.snapshot"
local state = require "actionqueue.storage.recovery.state"
local reducer = require "actionqueue.storage.recovery.reducer"
local bootstrap = require "actionqueue.storage.recovery.bootstrap"
local to_snapshot = require "actionqueue.storage.recovery.to_snapshot"
local fixtures = require "support.fixtures"
local files = require "support.files"

-- The snapshot fields that hold the projection (everything but the frame header fields).
local HEADER_FIELDS = { version = true, timestamp = true, metadata = true }
local function collections()
  local out = {}
  for _, f in ipairs(S.Snapshot.fields) do
    if not HEADER_FIELDS[f.name] then out[#out + 1] = f.name end
  end
  return out
end

local RESET = { dependency_declarations = true, runs = true, actors = true }

describe("recovery follows the schema", function()
  it("has a reducer handler for every WalEventType variant and none besides", function()
    local variants = {}
    for _, v in ipairs(W.WalEventType.variants) do
      variants[v.name] = true
      assert.is_function(reducer.handlers[v.name], "no reducer handler for " .. v.name)
    end
    for name in pairs(reducer.handlers) do
      assert.is_true(variants[name] == true, "reducer handler for unknown variant " .. name)
    end
  end)

  it("stores runs only while csrc/replay.c reads the schema's fields, in the schema's order", function()
    local core = require "actionqueue.storage.core"
    local function with_layout(name, layout)
      local cfg = setmetatable({ layouts = setmetatable({ [name] = layout },
        { __index = state.REPLAY_CONFIG.layouts }) }, { __index = state.REPLAY_CONFIG })
      return pcall(core.replay_state, cfg)
    end
    assert.is_true((with_layout("Nothing", "x")))
    for _, name in ipairs { "RunStateChanged", "TaskCreated", "RunInstance", "AttemptHistoryEntry" } do
      local layout = state.REPLAY_CONFIG.layouts[name]
      local ok, err = with_layout(name, layout .. ",added_field")
      assert.is_false(ok)
      assert.matches("the schema's " .. name .. " is {" .. layout:gsub("%p", "%%%0") .. ",added_field}", err)
    end
    local handled = state.new().core:handled()
    assert.is_true(#handled > 0)
    for _, name in ipairs(handled) do assert.is_function(reducer.handlers[name]) end
  end)

  it("hydrates every snapshot collection of the schema, in the order of recovery.md §5", function()
    local hydrated = {}
    for _, step in ipairs(bootstrap.HYDRATION) do
      assert.is_nil(hydrated[step[1]], "hydrated twice: " .. step[1])
      hydrated[step[1]] = true
      assert.is_function(step[2])
    end
    for _, name in ipairs(collections()) do
      assert.is_true(hydrated[name] == true, "snapshot field " .. name .. " is not hydrated")
    end
    assert.equal(#collections(), #bootstrap.HYDRATION)
  end)

  it("emits every snapshot field of the schema", function()
    local snap = to_snapshot.build_unchecked(state.new(), 5)
    for _, f in ipairs(S.Snapshot.fields) do
      assert.is_not_nil(snap[f.name], "snapshot field " .. f.name .. " is not emitted")
    end
  end)

  it("round-trips every collection of a snapshot that has all of them (hydrate, then build)", function()
    if not fixtures.available() then return pending("fixtures not available") end
    local snapshot = require "actionqueue.storage.snapshot"
    local snap = assert(snapshot.load(fixtures.path("snapshot", "valid_09_big_numbers.snap")))
    local st = assert(bootstrap.hydrate(snap))
    local out = to_snapshot.build_unchecked(st, snap.timestamp)
    for _, name in ipairs(collections()) do
      if name ~= "engine" then
        assert.is_true(#snap[name] > 0, "fixture has no " .. name)
      end
      -- Hydration drops by design (§5): declared_at (the build timestamp), a run's
      -- effective_priority and an actor's last_heartbeat_at; the rest comes back as is.
      if not RESET[name] then
        assert.same(snap[name], out[name], name)
      else
        assert.equal(#snap[name], #out[name], name)
      end
    end
  end)
end)

describe("an event variant without a reducer handler", function()
  local saved
  before_each(function() saved = reducer.handlers.EnginePaused end)
  after_each(function() reducer.handlers.EnginePaused = saved end)

  it("is nil, err from reducer.apply (no raise), state unchanged", function()
    reducer.handlers.EnginePaused = nil
    local st = state.new()
    local ok, err = reducer.apply(st, { sequence = 1, event = { EnginePaused = { timestamp = 5 } } })
    assert.is_nil(ok)
    assert.equal("UnknownVariant", err.kind)
    assert.equal("unknown event variant EnginePaused", err.message)
    assert.equal(0, st.latest)
  end)

  it("is a WalReplay error from bootstrap, and the WAL reader is closed", function()
    local appender = require "actionqueue.storage.wal.appender"
    local reader = require "actionqueue.storage.wal.reader"
    local dir = files.tmpdir()
    finally(function() files.rmtree(dir) end)
    assert(lfs.mkdir(dir .. "/wal"))
    assert(lfs.mkdir(dir .. "/snapshots"))
    local app = assert(appender.open(dir .. "/wal/actionqueue.wal", { sync = "none" }))
    assert(app:append({ sequence = 1, event = { EnginePaused = { timestamp = 5 } } }))
    assert(app:close())
    reducer.handlers.EnginePaused = nil
    local opened = {}
    local open = reader.open
    reader.open = function(...)
      local rd, err = open(...)
      if rd then opened[#opened + 1] = rd end
      return rd, err
    end
    local okc, r, err = pcall(bootstrap.run, dir)
    reader.open = open
    assert.is_true(okc, tostring(r))
    assert.is_nil(r)
    assert.equal("WalReplay", err.kind)
    assert.equal("WAL replay error: Reducer error: unknown event variant EnginePaused", err.message)
    assert.is_true(#opened > 0)
    for _, rd in ipairs(opened) do assert.is_nil(rd.log, "a WAL reader was left open") end
  end)
end)

describe("packed run histories (state.HISTORY, state.ATTEMPTS)", function()
  it("round-trip every field of their schema record, absent optionals included", function()
    for _, l in ipairs { state.HISTORY, state.ATTEMPTS } do
      local full, sparse = {}, {}
      for i, name in ipairs(l.names) do full[name] = "v" .. i end
      sparse[l.names[#l.names]] = 7 -- only the last field set
      local list = { full, sparse, full }
      local flat = state.pack(l, list)
      assert.equal(3 * l.width, #flat)
      assert.same(list, state.unpack(l, flat))
    end
  end)
end)
