-- core.json_encode options: `indent` (pretty printing, serde_json's to_string_pretty
-- layout), `features` (feature-gated enum variants) and the schema field attribute
-- `skip_if_none` (CronPolicy.max_occurrences, snapshot-format.md §3.4 / wal-format.md §7.2).
local core = require "actionqueue.storage.core"
local dsl = require "actionqueue.storage.schema.dsl"
local T = require "actionqueue.storage.schema.types"
local S = require "actionqueue.storage.schema.snapshot"
local W = require "actionqueue.storage.schema.wal"
local fixtures = require "spec.support.fixtures"

local Item = dsl.record { "Item",
  { "name", dsl.string },
  { "tags", dsl.list(dsl.string) },
  { "blob", dsl.bytes },
  { "note", dsl.option(dsl.u64) },
}
local Doc = dsl.record { "Doc",
  { "items", dsl.list(Item) },
  { "policy", T.RunPolicy },
  { "empty", dsl.list(dsl.u32) },
}

local doc = {
  items = { { name = "a b:\n", tags = { "x", "y" }, blob = "\1\2", note = -1 },
            { name = "", tags = {}, blob = "" } },
  policy = { Repeat = { count = 3, interval_secs = 60 } },
  empty = {},
}

-- removes the whitespace outside JSON strings
local function squeeze(s)
  local out, i = {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == '"' then
      local j = i + 1
      while s:sub(j, j) ~= '"' do j = j + (s:sub(j, j) == "\\" and 2 or 1) end
      out[#out + 1] = s:sub(i, j)
      i = j + 1
    else
      if not c:match("%s") then out[#out + 1] = c end
      i = i + 1
    end
  end
  return table.concat(out)
end

describe("json_encode indent", function()
  local compact = assert(core.json_encode(doc, Doc))

  it("lays out records, lists, byte strings and enums like serde_json's pretty printer", function()
    local expected = table.concat({
      '{',
      '  "items": [',
      '    {',
      '      "name": "a b:\\n",',
      '      "tags": [',
      '        "x",',
      '        "y"',
      '      ],',
      '      "blob": [',
      '        1,',
      '        2',
      '      ],',
      '      "note": 18446744073709551615',
      '    },',
      '    {',
      '      "name": "",',
      '      "tags": [],',
      '      "blob": [],',
      '      "note": null',
      '    }',
      '  ],',
      '  "policy": {',
      '    "Repeat": {',
      '      "count": 3,',
      '      "interval_secs": 60',
      '    }',
      '  },',
      '  "empty": []',
      '}' }, "\n")
    assert.equal(expected, core.json_encode(doc, Doc, { indent = 2 }))
    assert.equal(expected, core.json_encode(doc, Doc, { indent = true }))
    assert.equal(expected, core.json_encode(doc, Doc, { indent = "  " }))
  end)

  it("adds only whitespace: squeezed, the pretty text is the compact one", function()
    for _, indent in ipairs { 1, 4, "\t", true } do
      local pretty = assert(core.json_encode(doc, Doc, { indent = indent }))
      assert.not_equal(compact, pretty)
      assert.equal(compact, squeeze(pretty))
    end
  end)

  it("is compact for nil, false, 0 and an empty string, and rejects other values", function()
    for _, indent in ipairs { false, 0, "" } do
      assert.equal(compact, core.json_encode(doc, Doc, { indent = indent }))
    end
    assert.equal(compact, core.json_encode(doc, Doc, {}))
    assert.has_error(function() core.json_encode(doc, Doc, { indent = 17 }) end)
    assert.has_error(function() core.json_encode(doc, Doc, { indent = {} }) end)
  end)

  it("streams the same text through opts.sink in chunks", function()
    local parts = {}
    local ok = core.json_encode(doc, Doc, { indent = 2, chunk_size = 8,
                                            sink = function(c) parts[#parts + 1] = c return true end })
    assert.is_true(ok)
    assert.is_true(#parts > 1)
    assert.equal(core.json_encode(doc, Doc, { indent = 2 }), table.concat(parts))
  end)

  it("still reports type errors with their path", function()
    local bad = { items = { { name = "n", tags = { 5 }, blob = "" } }, policy = "Once", empty = {} }
    local v, msg = core.json_encode(bad, Doc, { indent = 2 })
    assert.is_nil(v)
    assert.equal("items[1].tags[1]: expected string, got 5", msg)
  end)

  local snap_dir = fixtures.path("snapshot")
  local pending_or_it = fixtures.available() and it or pending

  pending_or_it("reproduces the reference's pretty payload byte for byte (compat_05)", function()
    local data = assert(fixtures.read(snap_dir .. "/compat_05_pretty_whitespace.snap"))
    local payload = data:sub(13)
    local value = assert(core.json_decode(payload, S.root))
    assert.equal(payload, core.json_encode(value, S.root, { indent = 2 }))
  end)

  pending_or_it("pretty snapshots re-parse to the same value and canonical bytes", function()
    for _, name in ipairs { "valid_02_runs_all_states", "valid_08_strings", "valid_09_big_numbers" } do
      local payload = assert(fixtures.read(snap_dir .. "/" .. name .. ".snap")):sub(13)
      local value = assert(core.json_decode(payload, S.root))
      local pretty = assert(core.json_encode(value, S.root, { indent = 2 }))
      local back = assert(core.json_decode(pretty, S.root))
      assert.same(value, back)
      assert.equal(payload, core.json_encode(back, S.root))
      assert.equal(payload, squeeze(pretty))
    end
  end)
end)

describe("json_encode skip_if_none", function()
  local R = dsl.record { "R",
    { "a", dsl.option(dsl.u32), skip_if_none = true },
    { "b", dsl.u32 },
    { "c", dsl.option(dsl.u32), skip_if_none = true },
    { "d", dsl.option(dsl.u32) },
  }

  it("leaves a nil field out (no dangling commas), writes a present one, others stay null", function()
    assert.equal('{"b":1,"d":null}', core.json_encode({ b = 1 }, R))
    assert.equal('{"a":0,"b":1,"c":2,"d":3}', core.json_encode({ a = 0, b = 1, c = 2, d = 3 }, R))
    assert.equal('{\n  "b": 1,\n  "c": 2,\n  "d": null\n}', core.json_encode({ b = 1, c = 2 }, R, { indent = 2 }))
    local Only = dsl.record { "Only", { "x", dsl.option(dsl.u8), skip_if_none = true } }
    assert.equal("{}", core.json_encode({}, Only))
    assert.equal("{}", core.json_encode({}, Only, { indent = 2 }))
  end)

  it("is only accepted on optional fields", function()
    assert.has_error(function() dsl.record { "Bad", { "x", dsl.u32, skip_if_none = true } } end)
  end)

  it("is set on CronPolicy.max_occurrences only", function()
    assert.is_true(T.CronPolicy.by_name.max_occurrences.skip_if_none)
    assert.is_nil(T.CronPolicy.by_name.expression.skip_if_none)
  end)
end)

describe("json_encode features", function()
  local WF = { features = { workflow = true } }
  local cron = { Cron = { expression = "0 * * * * *" } }

  it("writes the gated Cron variant only when the feature is enabled", function()
    local v, msg = core.json_encode(cron, T.RunPolicy)
    assert.is_nil(v)
    assert.matches("unknown variant", msg)
    assert.is_nil(core.json_encode(cron, T.RunPolicy, { features = { other = true } }))
    assert.equal('{"Cron":{"expression":"0 * * * * *"}}', core.json_encode(cron, T.RunPolicy, WF))
    assert.equal('{"Cron":{"expression":"0 * * * * *","max_occurrences":5}}',
      core.json_encode({ Cron = { expression = "0 * * * * *", max_occurrences = 5 } }, T.RunPolicy, WF))
    assert.equal('"Once"', core.json_encode("Once", T.RunPolicy, WF))
  end)

  it("leaves the decoder's default build unchanged (Cron stays an unknown variant)", function()
    local v, msg = core.json_decode('{"Cron":{"expression":"0 * * * * *"}}', T.RunPolicy)
    assert.is_nil(v)
    assert.matches("unknown variant `Cron`, expected `Once` or `Repeat`", msg, 1, true)
  end)

  it("does not change postcard: the Option tag of max_occurrences is always written", function()
    local ev = { sequence = 1, event = { TaskCreated = { timestamp = 0, task_spec = {
      id = "00000000-0000-0000-0000-000000000001", payload = { bytes = "" }, run_policy = cron,
      constraints = { max_attempts = 1 }, metadata = { tags = {}, priority = 0 } } } } }
    local bytes = assert(core.postcard_encode(ev, W.WalEvent, WF))
    local expr = "0 * * * * *"
    local at = assert(bytes:find("\2" .. string.char(#expr) .. expr, 1, true))
    assert.equal("\0", bytes:sub(at + 2 + #expr, at + 2 + #expr))
    local back = assert(core.postcard_decode(bytes, W.WalEvent, WF))
    assert.same(cron, back.event.TaskCreated.task_spec.run_policy)
  end)
end)

describe("wal.to_json (C encoder)", function()
  local wal = require "actionqueue.storage.wal"
  -- a decoded record, as `aqstore wal dump --workflow` renders it
  local function ev(cron)
    local WF = { features = { workflow = true } }
    local e = { sequence = 3, event = { TaskCreated = { timestamp = 0, task_spec = {
      id = "00000000-0000-0000-0000-000000000001", payload = { bytes = "" }, run_policy = { Cron = cron },
      constraints = { max_attempts = 1 }, metadata = { tags = {}, priority = 0 } } } } }
    return assert(core.postcard_decode(assert(core.postcard_encode(e, W.WalEvent, WF)), W.WalEvent, WF))
  end

  it("renders a Cron policy like the reference's serde JSON: absent max_occurrences left out", function()
    local j = assert(wal.to_json(ev { expression = "0 * * * * * *" }))
    assert.matches('"run_policy":{"Cron":{"expression":"0 * * * * * *"}},"constraints":', j, 1, true)
    j = assert(wal.to_json(ev { expression = "0 * * * * * *", max_occurrences = 2 }))
    assert.matches('"run_policy":{"Cron":{"expression":"0 * * * * * *","max_occurrences":2}}', j, 1, true)
  end)

  it("returns nil and the path for a value that does not fit the schema", function()
    local j, msg = wal.to_json { sequence = 1, event = { EnginePaused = { timestamp = "x" } } }
    assert.is_nil(j)
    assert.equal('event.EnginePaused.timestamp: expected u64, got string "x"', msg)
  end)
end)
