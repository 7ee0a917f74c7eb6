-- The one compiled schema (csrc/schema.c, issue 15.1): one compilation and one cache per
-- root type table that the JSON decoder (and its skim verdict), the JSON encoder and the
-- postcard codec all walk; a field or variant added to the schema tables reaches every
-- codec with no other change; the integer kinds' ranges are enforced alike by all codecs.
local core = require "actionqueue.storage.core"
local dsl = require "actionqueue.storage.schema.dsl"
local compile = require "actionqueue.storage.schema.compile"
local S = require "actionqueue.storage.schema.snapshot"
local W = require "actionqueue.storage.schema.wal"
local sm = require "actionqueue.storage.statemachine"
local snapshot = require "actionqueue.storage.snapshot"
local fixtures = require "support.fixtures"
local files = require "support.files"

-- Copies a schema type graph (shared and recursive types stay shared; dsl.NONE and the
-- check functions are kept as they are), so a test can change its copy.
local function copy_schema(root)
  local memo = {}
  local function copy(v)
    if type(v) ~= "table" or v == dsl.NONE then return v end
    if memo[v] then return memo[v] end
    local c = {}
    memo[v] = c
    for k, x in pairs(v) do c[copy(k)] = copy(x) end
    return setmetatable(c, getmetatable(v))
  end
  return copy(root)
end

-- The record or enum named `name` in the graph of root.
local function find(root, name)
  local seen = {}
  local function walk(t)
    if type(t) ~= "table" or seen[t] then return nil end
    seen[t] = true
    if (t.kind == "record" or t.kind == "enum") and t.name == name then return t end
    for _, x in pairs(t) do
      local r = walk(x)
      if r then return r end
    end
  end
  return assert(walk(root), "no type named " .. name)
end

-- Appends a field to a record the way dsl.record declares one.
local function add_field(rec, spec)
  local field = dsl.record { "Tmp", spec }.fields[1]
  field.index = #rec.fields + 1
  rec.fields[#rec.fields + 1] = field
  rec.by_name[field.name] = field
end

-- Appends a variant to an enum the way dsl.enum declares one.
local function add_variant(enum, name, t)
  local v = { name = name, type = t, index = #enum.variants }
  enum.variants[#enum.variants + 1] = v
  enum.by_name[name] = v
end

-- The weak cache tables of the registry that hold `root` as a key.
local function caches_holding(root)
  local found = {}
  for _, v in pairs(debug.getregistry()) do
    if type(v) == "table" and rawget(v, root) ~= nil then found[#found + 1] = v end
  end
  return found
end

local function verdict_plan(root)
  local allowed, lease = {}, {}
  for _, from in ipairs(sm.states) do
    for _, to in ipairs(sm.targets(from)) do allowed[#allowed + 1] = { from, to } end
    if sm.may_hold_lease(from) then lease[#lease + 1] = from end
  end
  return core.verdict_plan(root, { schema_version = S.SCHEMA_VERSION, allowed = allowed,
                                   lease_states = lease })
end

describe("the compiled schema (core.schema)", function()
  it("is one object per root, shared by the JSON and the postcard codecs", function()
    local R = dsl.record { "SharedProbe", { "n", dsl.u32 }, { "id", dsl.id("ProbeId") },
      { "e", dsl.enum { "ProbeEnum", { "A" }, { "B", dsl.u8 } } } }
    local value = { n = 7, id = "67e55044-10b1-426f-9247-bb680e5fe0c8", e = { B = 9 } }
    -- every codec compiles R through the one cache
    local json = assert(core.json_encode(value, R))
    assert.same(value, core.json_decode(json, R))
    local pc = assert(core.postcard_encode(value, R))
    assert.same(value, (core.postcard_decode(pc, R)))
    local held = caches_holding(R)
    assert.equal(1, #held)
    local compiled = core.schema(R)
    assert.equal(compiled, held[1][R])
    assert.equal(compiled, compile.schema(R))
    assert.matches("^Schema%(SharedProbe, %d+ types%)$", tostring(compiled))
    -- and every codec takes the compiled object in place of the table
    assert.equal(json, core.json_encode(value, compiled))
    assert.equal(pc, core.postcard_encode(value, compiled))
    assert.same(value, (core.postcard_decode(pc, compiled)))
    assert.same(value, core.json_decode(json, compiled))
  end)

  it("gives the snapshot and WAL roots one compiled object each", function()
    assert.equal(core.schema(S.root), compile.schema(S.root))
    assert.equal(core.schema(W.WalEvent), compile.schema(W.WalEvent))
    assert.are_not.equal(core.schema(S.root), core.schema(W.WalEvent))
  end)

  it("rejects what is not a schema type", function()
    assert.has_error(function() core.schema({ kind = "u7" }) end, "schema: unknown kind 'u7'")
    assert.has_error(function() core.schema(42) end)
    -- a gated variant without a name: the compile error frees what it built (no leak
    -- under make sanitize)
    local bad = { kind = "enum", name = "Bad", variants = { { name = "A" }, { feature = "workflow" } } }
    assert.has_error(function() core.schema(bad) end, "schema: enum Bad: variant without a name")
    collectgarbage()
  end)
end)

describe("a field and a variant added to a copy of the schema", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  it("reach the JSON codecs and the skim verdict with no other change", function()
    local root = copy_schema(S.root)
    add_field(find(root, "SnapshotTask"), { "label", dsl.option(dsl.string), default = dsl.NONE })
    local weekly = dsl.record { "WeeklyPolicy", { "day", dsl.u8 } }
    add_variant(find(root, "RunPolicyWire"), "Weekly", weekly)

    local doc = assert(snapshot.load(fixtures.root .. "/snapshot/valid_12_medium_1000.snap"))
    doc.tasks[1].label = "nightly"
    doc.tasks[2].task_spec.run_policy = { Weekly = { day = 3 } }
    local payload = assert(core.json_encode(doc, root))
    assert.truthy(payload:find('"label":"nightly"', 1, true))
    assert.truthy(payload:find('"run_policy":{"Weekly":{"day":3}}', 1, true))
    assert.same(doc, core.json_decode(payload, root))
    -- the original schema does not know the variant
    local v, msg = core.json_decode(payload, S.root)
    assert.is_nil(v)
    assert.matches("unknown variant `Weekly`", msg, 1, true)

    local path = dir .. "/copy.snap"
    files.write(path, core.frame_encode(S.FRAME_VERSION, payload))
    local r = core.snapshot_verdict(path, verdict_plan(root))
    assert.equal("ok", r.status, r.message)
    assert.equal(#doc.tasks, r.tasks)
    -- the verdict still judges the record that grew a field
    doc.tasks[1].canceled_at = 1
    doc.tasks[1].created_at = 2
    files.write(path, core.frame_encode(S.FRAME_VERSION, assert(core.json_encode(doc, root))))
    r = core.snapshot_verdict(path, verdict_plan(root))
    assert.equal("mapping_error", r.status)
  end)

  it("reach the postcard codec and its skim with no other change", function()
    local root = copy_schema(W.WalEvent)
    local labeled = dsl.record { "WalEventType::TaskLabeled",
      { "task_id", find(root, "TaskSpecWire").by_name.id.type }, { "label", dsl.string },
      { "timestamp", dsl.u64 } }
    add_variant(find(root, "WalEventType"), "TaskLabeled", labeled)
    add_field(find(root, "WalEventType::EnginePaused"), { "reason", dsl.option(dsl.string) })
    local events = {
      { sequence = 1, event = { EnginePaused = { timestamp = 5, reason = "maintenance" } } },
      { sequence = 2, event = { TaskLabeled = { task_id = "67e55044-10b1-426f-9247-bb680e5fe0c8",
                                                label = "nightly", timestamp = 6 } } },
    }
    for _, ev in ipairs(events) do
      local bytes = assert(core.postcard_encode(ev, root))
      local back, used = core.postcard_decode(bytes, root)
      assert.same(ev, back)
      assert.equal(#bytes, used)
      local consumed, seq, variant = core.postcard_decode(bytes, root, { skim = true })
      assert.equal(#bytes, consumed)
      assert.equal(ev.sequence, seq)
      assert.equal(next(ev.event), variant)
      -- and the JSON encoder/decoder see the same graph
      assert.same(ev, core.json_decode(assert(core.json_encode(ev, root)), root))
    end
    -- the new variant's wire index is its declared position: one past the original ones
    local bytes = assert(core.postcard_encode(events[2], root))
    assert.equal(#W.WalEventType.variants, bytes:byte(2))
  end)
end)

describe("the integer kinds' ranges", function()
  -- postcard wire bytes of an unsigned varint / a zigzag i32
  local function varint(v)
    local out = {}
    repeat
      local b = v & 0x7F
      v = v >> 7
      out[#out + 1] = string.char(v ~= 0 and (b | 0x80) or b)
    until v == 0
    return table.concat(out)
  end
  local function zigzag(v) return (v << 1) ~ (v >> 63 ~= 0 and -1 or 0) end

  local KINDS = {
    { "u8", dsl.u8, 0, 255 },
    { "u16", dsl.u16, 0, 65535 },
    { "u32", dsl.u32, 0, 4294967295 },
    { "i32", dsl.i32, -2147483648, 2147483647 },
  }

  for _, k in ipairs(KINDS) do
    local name, t, min, max = k[1], k[2], k[3], k[4]
    it(name .. ": min and max pass every codec, min-1 and max+1 none", function()
      assert.equal(min, t.min)
      assert.equal(max, t.max)
      local R = dsl.record { "Range_" .. name, { "v", t } }
      for _, v in ipairs { min, max } do
        local json = assert(core.json_encode({ v = v }, R))
        assert.equal(('{"v":%d}'):format(v), json)
        assert.same({ v = v }, core.json_decode(json, R))
        local pc = assert(core.postcard_encode({ v = v }, R))
        assert.same({ v = v }, (core.postcard_decode(pc, R)))
      end
      for _, v in ipairs { min - 1, max + 1 } do
        local json = ('{"v":%d}'):format(v)
        local got, msg = core.json_decode(json, R)
        assert.is_nil(got, name .. " " .. v)
        assert.equal(("invalid value: integer `%d`, expected %s at line 1 column %d"):format(v, name, #json - 1), msg)
        got, msg = core.json_encode({ v = v }, R)
        assert.is_nil(got)
        assert.matches("expected " .. name, msg, 1, true)
        got, msg = core.postcard_encode({ v = v }, R)
        assert.is_nil(got)
        assert.equal(name .. " out of range", msg)
      end
      -- postcard's wire cannot carry max+1 (or min-1 of i32) in the kind's width
      if name == "u8" then
        assert.is_nil((core.postcard_decode("", R)))
      else
        local wide = name == "i32" and { zigzag(min - 1), zigzag(max + 1) } or { max + 1 }
        for _, w in ipairs(wide) do
          local got, msg = core.postcard_decode(varint(w), R)
          assert.is_nil(got)
          assert.equal("Found a varint that didn't terminate. Is the usize too big?", msg)
        end
      end
    end)
  end

  it("come from the one table of kinds: dsl's scalars carry the core's ranges", function()
    local kinds, scalars = core.schema_kinds(), {}
    for name, k in pairs(kinds) do
      if k.scalar then
        scalars[#scalars + 1] = name
        assert.equal(name, dsl[name].kind)
        assert.equal(k.min, dsl[name].min)
        assert.equal(k.max, dsl[name].max)
      end
    end
    table.sort(scalars)
    assert.same({ "bool", "bytes", "i32", "string", "u16", "u32", "u64", "u8" }, scalars)
    for _, name in ipairs { "id", "option", "list", "record", "enum" } do
      assert.truthy(kinds[name])
      assert.is_nil(kinds[name].scalar)
    end
    assert.is_nil(kinds.u64.min)
  end)

  it("bytes: JSON elements are u8 with the u8 range", function()
    local R = dsl.record { "Range_bytes", { "b", dsl.bytes } }
    assert.same({ b = "\0\255" }, core.json_decode('{"b":[0,255]}', R))
    for _, v in ipairs { -1, 256 } do
      local json = ('{"b":[%d]}'):format(v)
      local got, msg = core.json_decode(json, R)
      assert.is_nil(got)
      assert.equal(("invalid value: integer `%d`, expected u8 at line 1 column %d"):format(v, #json - 2), msg)
    end
  end)

  it("u64: 0 and 2^64-1 pass every codec, -1 and 2^64 no decoder", function()
    local R = dsl.record { "Range_u64", { "v", dsl.u64 } }
    for _, v in ipairs { 0, -1 } do   -- -1: the pattern of 2^64-1
      local json = assert(core.json_encode({ v = v }, R))
      assert.equal(v == 0 and '{"v":0}' or '{"v":18446744073709551615}', json)
      assert.same({ v = v }, core.json_decode(json, R))
      local pc = assert(core.postcard_encode({ v = v }, R))
      assert.same({ v = v }, (core.postcard_decode(pc, R)))
    end
    local got, msg = core.json_decode('{"v":18446744073709551616}', R)
    assert.is_nil(got)
    assert.matches("expected u64", msg, 1, true)
    got, msg = core.json_decode('{"v":-1}', R)
    assert.is_nil(got)
    assert.matches("invalid value: integer `-1`, expected u64", msg, 1, true)
    got, msg = core.postcard_decode(("\xFF"):rep(9) .. "\x02", R)
    assert.is_nil(got)
    assert.equal("Found a varint that didn't terminate. Is the usize too big?", msg)
  end)
end)

describe("ids and strings in every codec", function()
  local R = dsl.record { "TextProbe", { "id", dsl.id("ProbeId") }, { "s", dsl.string } }
  local CANON = "67e55044-10b1-426f-9247-bb680e5fe0c8"

  it("take the reference's four UUID spellings alike (one parser)", function()
    local want_json = assert(core.json_encode({ id = CANON, s = "" }, R))
    local want_pc = assert(core.postcard_encode({ id = CANON, s = "" }, R))
    for _, spelling in ipairs { CANON, CANON:upper(), CANON:gsub("-", ""), "{" .. CANON .. "}",
                                "urn:uuid:" .. CANON } do
      assert.equal(want_json, core.json_encode({ id = spelling, s = "" }, R), spelling)
      assert.equal(want_pc, core.postcard_encode({ id = spelling, s = "" }, R), spelling)
      assert.equal(CANON, core.uuid_parse(spelling))
      assert.same({ id = CANON, s = "" },
        core.json_decode(('{"id":"%s","s":""}'):format(spelling), R))
    end
    for _, bad in ipairs { CANON:sub(2), "{" .. CANON, CANON .. "0", CANON:gsub("-", "_") } do
      assert.is_nil(core.uuid_parse(bad), bad)
      assert.is_nil(core.json_encode({ id = bad, s = "" }, R), bad)
      assert.is_nil(core.postcard_encode({ id = bad, s = "" }, R), bad)
    end
  end)

  it("reject the same invalid UTF-8 (one check)", function()
    local bad = { "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE0\x80\x80", "\xFF", "a\xC3" }
    local good = { "", "ascii", "\xC3\xA9", "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF", "\xEF\xBF\xBD" }
    for _, s in ipairs(good) do
      local v = { id = CANON, s = s }
      local pc = assert(core.postcard_encode(v, R))
      assert.same(v, (core.postcard_decode(pc, R)))
      assert.same(v, core.json_decode(assert(core.json_encode(v, R)), R))
    end
    for _, s in ipairs(bad) do
      local v = { id = CANON, s = s }
      assert.is_nil(core.postcard_encode(v, R), s)
      assert.is_nil(core.json_encode(v, R), s)
      -- postcard wire: the 16-byte id, then the string's length and bytes
      local wire = "\16" .. ("\0"):rep(16) .. string.char(#s) .. s
      local got, msg = core.postcard_decode(wire, R)
      assert.is_nil(got)
      assert.equal("Tried to decode invalid utf8", msg)
      got = core.json_decode('{"id":"' .. CANON .. '","s":"' .. s .. '"}', R)
      assert.is_nil(got)
    end
  end)
end)
