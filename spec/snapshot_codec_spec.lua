-- Snapshot payload codec: the JSON rules of snapshot-format.md §4 (decoder emulating the
-- reference's serde_json layer, canonical encoder), Appendix A vectors, and the §7
-- examples taken from the spec itself.
local core = require "actionqueue.storage.core"
local snapshot = require "actionqueue.storage.snapshot"
local S = require "actionqueue.storage.schema.snapshot"
local fixtures = require "spec.support.fixtures"

local PREFIX = "Decode error: Failed to decode snapshot: "

-- The compact payloads of §7.1 / §7.2 / §7.3, read from the spec document.
local function spec_payloads()
  local doc = fixtures.read(fixtures.root .. "/../spec/snapshot-format.md")
  if not doc then return nil end
  local out = {}
  for sec, body in doc:gmatch("\n### (7%.%d)[^\n]*\n(.-)\nFrame header") do
    out[sec] = body:match("```\n(%b{})\n```")
  end
  return out
end

local P = spec_payloads() or {}
local EMPTY, MINIMAL, RICH = P["7.1"], P["7.2"], P["7.3"]

-- Replaces `old` (plain text) by `new`, exactly `times` times (default 1).
local function sub(s, old, new, times)
  local n = 0
  local pattern = old:gsub("%p", "%%%0")
  local out = s:gsub(pattern, function()
    n = n + 1
    return new
  end)
  assert(n == (times or 1), ("expected %d occurrence(s) of %s, found %d"):format(times or 1, old, n))
  return out
end

local function decode_err(payload)
  local snap, err = snapshot.decode(payload)
  assert.is_nil(snap)
  assert.equal("DecodeError", err.kind)
  return err.message
end

describe("snapshot codec: spec examples (§7)", function()
  it("finds the three example payloads in the spec", function()
    assert.is_string(EMPTY)
    assert.is_string(MINIMAL)
    assert.is_string(RICH)
    assert.equal(338, #EMPTY)
    assert.equal(1187, #MINIMAL)
    assert.equal(6660, #RICH)
  end)

  it("decodes and re-encodes each example byte for byte", function()
    for _, p in ipairs { EMPTY, MINIMAL, RICH } do
      local snap = assert(snapshot.decode(p))
      assert.equal(p, assert(snapshot.encode(snap)))
    end
  end)

  it("examples carry the documented CRCs", function()
    assert.equal(0xd1f972b6, core.crc32(EMPTY))
    assert.equal(0x6a23fda4, core.crc32(MINIMAL))
    assert.equal(0xb7143ffb, core.crc32(RICH))
  end)

  it("builds the Lua representation of ARCHITECTURE.md", function()
    local snap = assert(snapshot.decode(RICH))
    assert.equal(4, snap.version)
    assert.equal("hi", assert(snapshot.decode(MINIMAL)).tasks[1].task_spec.payload.bytes)
    assert.is_nil(assert(snapshot.decode(MINIMAL)).tasks[1].updated_at)
    local policies = {}
    for _, t in ipairs(snap.tasks) do policies[#policies + 1] = t.task_spec.run_policy end
    local found_repeat = false
    for _, p in ipairs(policies) do
      if type(p) == "table" then
        assert.is_number(p.Repeat.count)
        found_repeat = true
      else
        assert.equal("Once", p)
      end
    end
    assert.is_true(found_repeat)
    assert.same({ Custom = "release-manager" }, snap.role_assignments[2].role)
    assert.equal("\0\255\10", snap.ledger_entries[1].payload)
  end)
end)

describe("snapshot codec: Appendix A decode vectors", function()
  local function vectors()
    local E, M = EMPTY, MINIMAL
    local TASK = "6f2b0c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
    local RUN = "0e9d8c7b-6a59-4837-a261-5f4e3d2c1b0a"
    local NIL = "00000000-0000-0000-0000-000000000000"
    return {
      { E .. "x", "trailing characters at line 1 column 339" },
      { sub(E, '"timestamp":0', '"timestamp":-1'), "invalid value: integer `-1`, expected u64 at line 1 column 27" },
      { sub(E, '"timestamp":0', '"timestamp":1.0'),
        "invalid type: floating point `1.0`, expected u64 at line 1 column 28" },
      { sub(E, '"timestamp":0', '"timestamp":01'), "invalid number at line 1 column 27" },
      { sub(E, '"timestamp":0', '"timestamp":+1'), "expected value at line 1 column 26" },
      { sub(E, '"version":4', '"version":4294967296'),
        "invalid value: integer `4294967296`, expected u32 at line 1 column 21" },
      { sub(E, '{"version":4,', '{"version":4,"version":4,'), "duplicate field `version` at line 1 column 22" },
      { "\239\187\191" .. E, "expected value at line 1 column 1" },
      { "", "EOF while parsing a value at line 1 column 0" },
      { sub(M, '"run_policy":"Once"', '"run_policy":"Twice"'),
        "unknown variant `Twice`, expected `Once` or `Repeat` at line 1 column 251" },
      { sub(M, '"run_policy":"Once"', '"run_policy":"Repeat"'),
        "invalid type: unit variant, expected struct variant at line 1 column 252" },
      { sub(M, '"run_policy":"Once"', '"run_policy":{"Repeat":{"count":0,"interval_secs":60}}'),
        "invalid repeat count: 0 (must be >= 1) at line 1 column 285" },
      { sub(M, '"max_attempts":1', '"max_attempts":0'),
        "invalid max_attempts value: 0 (must be >= 1) at line 1 column 425" },
      { sub(M, TASK, NIL, 2),
        "invalid task identifier for task admission: " .. NIL .. " at line 1 column 520" },
      { sub(M, RUN, NIL), "run_id must not be nil at line 1 column 873" },
      { sub(sub(M, '"state":"Scheduled"', '"state":"Ready"'),
          '"scheduled_at":1700000000', '"scheduled_at":1700000001'),
        "Ready state requires scheduled_at (1700000001) <= created_at (1700000000) at line 1 column 869" },
      { sub(M, '"current_attempt_id":null,"attempt_count":0',
          '"current_attempt_id":"a77e0000-0000-4000-8000-000000000001","attempt_count":1'),
        "active attempt_id is only valid in Running state at line 1 column 907" },
      { sub(M, '"state":"Scheduled"', '"state":"scheduled"'),
        "unknown variant `scheduled`, expected one of `Scheduled`, `Ready`, `Leased`, `Running`, "
          .. "`RetryWait`, `Suspended`, `Completed`, `Failed`, `Canceled` at line 1 column 721" },
      { sub(M, TASK, TASK:sub(1, 35) .. "g", 2),
        "UUID parsing failed: invalid character: expected an optional prefix of `urn:uuid:` followed by "
          .. "[0-9a-fA-F-], found `g` at 36 at line 1 column 180" },
      { sub(M, '"id":"' .. TASK .. '"', '"id":5'),
        "invalid type: integer `5`, expected a formatted UUID string at line 1 column 143" },
      { sub(M, '"bytes":[104,105]', '"bytes":[256]'),
        "invalid value: integer `256`, expected u8 at line 1 column 204" },
      { sub(M, '"bytes":[104,105]', '"bytes":"hi"'),
        'invalid type: string "hi", expected a sequence at line 1 column 204' },
      { sub(M, '"concurrency_key_hold_policy":"HoldDuringRetry"', '"concurrency_key_hold_policy":null'),
        "expected value at line 1 column 357" },
      { sub(M, '"priority":0', '"priority":-0'),
        "invalid type: floating point `-0.0`, expected i32 at line 1 column 461" },
      { sub(M, '"description":null', '"description":"a\tb"'),
        "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 478" },
      { sub(M, '"engine":{"paused":false,"paused_at":null,"resumed_at":null}', '"engine":[false]'),
        "invalid length 1, expected struct SnapshotEngineControl with 3 elements at line 1 column 991" },
      { sub(M, '"engine":{"paused":false,"paused_at":null,"resumed_at":null}', '"engine":null'),
        "invalid type: null, expected struct SnapshotEngineControl at line 1 column 988" },
      { sub(M, '"budgets":[]', '"budgets":null'), "invalid type: null, expected a sequence at line 1 column 1079" },
    }
  end

  it("gives each vector's exact message and position", function()
    for i, v in ipairs(vectors()) do
      assert.equal(PREFIX .. v[2], decode_err(v[1]), "vector " .. i)
    end
  end)

  it("accepts the documented lenient variants and re-serializes canonically", function()
    local M = MINIMAL
    local TASK = "6f2b0c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
    local accepted = {
      sub(M, '"run_policy":"Once"', '"run_policy":{"Once":null}'),
      sub(M, '"run_policy":"Once"', '"run_policy": { "Once" : null } '),
      sub(M, TASK, TASK:upper(), 2),
      sub(M, TASK, (TASK:gsub("-", "")), 2),
      sub(M, TASK, "{" .. TASK .. "}", 2),
      sub(M, TASK, "urn:uuid:" .. TASK, 2),
      sub(M, '"version":4', '"ver\\u0073ion":4'),
      sub(M, '"engine":{"paused":false,"paused_at":null,"resumed_at":null}', '"engine":[false,null,null]'),
      sub(M, '"metadata":{"schema_version":8,"wal_sequence":2,"task_count":1,"run_count":1}', '"metadata":[8,2,1,1]'),
      sub(M, '"updated_at":null,', ''),
      sub(M, ',"canceled_at":null', ''),
      sub(M, ',"lease":null', ''),
      sub(M, '"version":4,', '"zzz":{"a":[1,2,{"b":null}],"c":"\255\\ud800"},"version":4,'),
      (M:gsub(",", " ,\n\t")),
    }
    for i, p in ipairs(accepted) do
      local snap, err = snapshot.decode(p)
      assert.is_table(snap, "variant " .. i .. ": " .. tostring(err))
      assert.equal(M, snapshot.encode(snap), "variant " .. i)
    end
  end)

  it("fills missing defaulted fields, last_state_change_at becoming 0", function()
    local p = sub(MINIMAL, ',"last_state_change_at":1700000000', '')
    local snap = assert(snapshot.decode(p))
    assert.equal(0, snap.runs[1].run_instance.last_state_change_at)
    local bare = '{"version":4,"timestamp":0,"metadata":{"schema_version":8,"wal_sequence":0,'
      .. '"task_count":0,"run_count":0},"tasks":[],"runs":[]}'
    assert.equal(EMPTY, snapshot.encode(assert(snapshot.decode(bare))))
    assert.equal(EMPTY, snapshot.encode(assert(snapshot.decode("[4,0,[8,0,0,0],[],[]]"))))
  end)
end)

describe("snapshot codec: decoder rules (§4.2)", function()
  local E = EMPTY
  local function msg(p)
    return (decode_err(p):sub(#PREFIX + 1):gsub(" at line %d+ column %d+$", ""))
  end

  it("reports missing required keys in declaration order", function()
    assert.equal("missing field `timestamp`", msg('{"version":4}'))
    assert.equal("missing field `version`", msg('{}'))
    assert.equal("missing field `schema_version`", msg(sub(E, '"schema_version":8,', '')))
  end)

  it("rejects null for non-optional fields, including defaulted ones", function()
    assert.equal("invalid type: null, expected a sequence", msg(sub(E, '"tasks":[]', '"tasks":null')))
    assert.equal("invalid type: null, expected u64", msg(sub(E, '"timestamp":0', '"timestamp":null')))
  end)

  it("integers: ranges, u64 extremes, floats, huge values, strings", function()
    local max = sub(E, '"wal_sequence":0', '"wal_sequence":18446744073709551615')
    local snap = assert(snapshot.decode(max))
    assert.equal(-1, snap.metadata.wal_sequence) -- the same 64-bit pattern
    assert.equal(max, snapshot.encode(snap))
    assert.equal("invalid type: floating point `1.8446744073709552e+19`, expected u64",
      msg(sub(E, '"wal_sequence":0', '"wal_sequence":18446744073709551616')))
    assert.equal("invalid type: floating point `1000.0`, expected u64", msg(sub(E, '"timestamp":0', '"timestamp":1e3')))
    assert.equal("invalid type: floating point `1e+16`, expected u64", msg(sub(E, '"timestamp":0', '"timestamp":1e16')))
    assert.equal("invalid type: floating point `0.0`, expected u64", msg(sub(E, '"timestamp":0', '"timestamp":0.0')))
    assert.equal('invalid type: string "4", expected u32', msg(sub(E, '"version":4', '"version":"4"')))
    assert.equal("invalid type: boolean `true`, expected u32", msg(sub(E, '"version":4', '"version":true')))
    assert.equal("invalid value: integer `-1`, expected u32", msg(sub(E, '"version":4', '"version":-1')))
    assert.equal("expected value", msg(sub(E, '"version":4', '"version":NaN')))
    assert.equal("invalid number", msg(sub(E, '"version":4', '"version":4.')))
    assert.equal("invalid number", msg(sub(E, '"version":4', '"version":-x')))
  end)

  it("syntax errors", function()
    assert.equal("trailing comma", msg(sub(E, '"ledger_entries":[]}', '"ledger_entries":[],}')))
    assert.equal("trailing comma", msg(sub(MINIMAL, '[104,105]', '[104,105,]')))
    -- inside an ignored value serde_json reports a trailing comma as a missing value
    assert.equal("expected value", msg(sub(E, '"schema_version":8,', '"schema_version":8,"x":[1,],')))
    assert.equal("key must be a string", msg(sub(E, '"timestamp":0', "'timestamp':0")))
    assert.equal("expected `:`", msg(sub(E, '"timestamp":0', '"timestamp" 0')))
    assert.equal("expected `,` or `}`", msg(sub(E, '"timestamp":0,', '"timestamp":0 ')))
    assert.equal("EOF while parsing an object", msg(E:sub(1, -2)))
    assert.equal("EOF while parsing a string", msg('{"version'))
    assert.equal("expected ident", msg(sub(E, '"paused":false', '"paused":fals ')))
    assert.equal("invalid escape", msg(sub(E, '"tasks"', '"ta\\qsks"')))
    assert.equal("unexpected end of hex escape", msg(sub(E, '"tasks"', '"tasks\\ud800"')))
    assert.equal("lone leading surrogate in hex escape", msg(sub(E, '"tasks"', '"tasks\\udc00"')))
    assert.equal("invalid unicode code point", msg(sub(E, '"tasks"', '"tasks\255"')))
    assert.equal("trailing characters", msg("[4,0,[8,0,0,0],[],[],{\"paused\":false},[],[],[],[],[],[],[],[],9]"))
  end)

  it("tolerates anything well-formed in ignored values, at any depth", function()
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    local p = sub(E, '"version":4,', '"ignored":' .. deep .. ',"version":4,')
    assert.is_table(snapshot.decode(p))
    local bad = sub(E, '"version":4,', '"ignored":' .. string.rep("[", 1000) .. ',"version":4,')
    assert.truthy(msg(bad):find("expected value", 1, true))
  end)

  it("enums: shapes and texts", function()
    local M = MINIMAL
    assert.equal("invalid type: map, expected unit",
      msg(sub(M, '"run_policy":"Once"', '"run_policy":{"Once":{}}')))
    assert.equal("expected value", msg(sub(M, '"run_policy":"Once"', '"run_policy":{}')))
    assert.equal("expected value", msg(sub(M, '"run_policy":"Once"', '"run_policy":{"Once":null,"Repeat":null}')))
    assert.equal("expected value", msg(sub(M, '"run_policy":"Once"', '"run_policy":5')))
    assert.equal("unknown variant `Cron`, expected `Once` or `Repeat`",
      msg(sub(M, '"run_policy":"Once"', '"run_policy":{"Cron":{"expression":"* * * * *"}}')))
    local rep = assert(snapshot.decode(sub(M, '"run_policy":"Once"', '"run_policy":{"Repeat":[2,3600]}')))
    assert.same({ Repeat = { count = 2, interval_secs = 3600 } }, rep.tasks[1].task_spec.run_policy)
    assert.equal("invalid length 1, expected struct variant RunPolicyWire::Repeat with 2 elements",
      msg(sub(M, '"run_policy":"Once"', '"run_policy":{"Repeat":[2]}')))
  end)

  it("never crashes on mutated payloads", function()
    local seed = 12345
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local alphabet = '{}[]:,"\\0123456789-.eEtrufalsn \n\255u'
    for _ = 1, 3000 do
      local p = RICH
      for _ = 1, rnd(4) do
        local pos = rnd(#p)
        local c = rnd(#alphabet)
        p = p:sub(1, pos - 1) .. alphabet:sub(c, c) .. p:sub(pos + 1 + (rnd(3) - 1))
      end
      local snap, err = snapshot.decode(p)
      if snap then
        assert.is_string(snapshot.encode(snap))
      else
        assert.equal(PREFIX, err.message:sub(1, #PREFIX))
        assert.truthy(err.message:match(" at line %d+ column %d+$"))
      end
    end
  end)
end)

describe("snapshot codec: encoder (§4.1)", function()
  local base = function() return assert(snapshot.decode(MINIMAL)) end

  it("escapes exactly the reference's set", function()
    local cases = {
      { '"', '\\"' }, { "\\", "\\\\" }, { "\b", "\\b" }, { "\t", "\\t" }, { "\n", "\\n" }, { "\f", "\\f" },
      { "\r", "\\r" }, { "\0", "\\u0000" }, { "\1", "\\u0001" }, { "\11", "\\u000b" }, { "\27", "\\u001b" },
      { "\31", "\\u001f" }, { "/", "/" }, { "\127", "\127" }, { "é", "é" }, { "\226\128\168", "\226\128\168" },
      { "😀", "😀" },
    }
    for _, c in ipairs(cases) do
      local snap = base()
      snap.tasks[1].task_spec.metadata.description = "a" .. c[1] .. "b"
      local out = assert(snapshot.encode(snap))
      assert.truthy(out:find('"description":"a' .. c[2] .. 'b"', 1, true), c[2])
      assert.equal(snap.tasks[1].task_spec.metadata.description,
        assert(snapshot.decode(out)).tasks[1].task_spec.metadata.description)
    end
  end)

  it("writes u64 extremes unsigned, i32 signed, nulls and empty lists", function()
    local snap = base()
    snap.metadata.wal_sequence = math.mininteger -- 2^63
    snap.timestamp = 9007199254740993
    snap.tasks[1].task_spec.metadata.priority = -2147483648
    snap.tasks[1].task_spec.payload.bytes = ""
    snap.runs[1].attempts = {}
    local out = assert(snapshot.encode(snap))
    assert.truthy(out:find('"wal_sequence":9223372036854775808', 1, true))
    assert.truthy(out:find('"timestamp":9007199254740993', 1, true))
    assert.truthy(out:find('"priority":-2147483648', 1, true))
    assert.truthy(out:find('"bytes":[]', 1, true))
    assert.truthy(out:find('"attempts":[]', 1, true))
    assert.truthy(out:find('"content_type":null', 1, true))
  end)

  it("normalises ids to lower-case hyphenated", function()
    local snap = base()
    snap.tasks[1].task_spec.id = "{6F2B0C1E-3D4A-4B5C-8D9E-0A1B2C3D4E5F}"
    assert.equal(MINIMAL, snapshot.encode(snap))
  end)

  it("names the path of a bad value", function()
    local snap = base()
    snap.tasks[1].task_spec.constraints.max_attempts = -1
    local r, err = snapshot.encode(snap)
    assert.is_nil(r)
    assert.equal("EncodeError", err.kind)
    assert.equal("Encode error: tasks[1].task_spec.constraints.max_attempts: expected u32, got -1", err.message)
    snap = base()
    snap.runs[1].state_history[1].to = "Sleeping"
    assert.truthy(select(2, snapshot.encode(snap)).message:find("runs[1].state_history[1].to", 1, true))
    snap = base()
    snap.tasks[1].task_spec.id = "nope"
    assert.truthy(select(2, snapshot.encode(snap)).message:find("tasks[1].task_spec.id: invalid TaskId", 1, true))
    snap = base()
    snap.tasks[1].task_spec.metadata.tags = { "ok", "\255" }
    assert.truthy(select(2, snapshot.encode(snap)).message:find("tags[2]: invalid UTF-8", 1, true))
    snap = base()
    snap.version = 2 ^ 40
    assert.truthy(select(2, snapshot.encode(snap)).message:find("version: expected u32", 1, true))
  end)

  it("streams chunks to a sink", function()
    local snap = assert(snapshot.decode(RICH))
    local chunks = {}
    assert.is_true(snapshot.encode(snap, function(c)
      chunks[#chunks + 1] = c
      return true
    end, 100))
    assert.is_true(#chunks > 10)
    assert.equal(RICH, table.concat(chunks))
    local obj = { parts = {} }
    function obj:write(c) self.parts[#self.parts + 1] = c return true end
    assert.is_true(snapshot.encode(snap, obj))
    assert.equal(RICH, table.concat(obj.parts))
    local r, err = snapshot.encode(snap, function() return nil, "disk full" end, 100)
    assert.is_nil(r)
    assert.truthy(err.message:find("disk full", 1, true))
  end)

  it("compiles the schema once per root", function()
    assert.equal(core.schema(S.root), core.schema(S.root))
  end)
end)

describe("core.uuid_parse", function()
  it("normalises the four spellings and gives the reference's texts", function()
    local c = "6f2b0c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
    assert.equal(c, core.uuid_parse("URN:uuid:" .. c:upper():sub(10) == "" and c or "urn:uuid:" .. c:upper()))
    assert.equal(c, core.uuid_parse(c:gsub("-", "")))
    local r, err = core.uuid_parse("")
    assert.is_nil(r)
    assert.equal("UUID parsing failed: invalid length: expected length 32 for simple format, found 0", err)
  end)
end)
