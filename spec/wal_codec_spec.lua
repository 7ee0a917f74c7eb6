-- WAL v5 postcard codec: §9 worked examples, §9.5 vectors for all 31 variants, §7.1
-- primitive rules, §8.4 semantic checks, §8.5 feature gating and §11.1 (cron option tag).
local codec = require "actionqueue.storage.wal.codec"
local core = require "actionqueue.storage.core"
local W = require "actionqueue.storage.schema.wal"
local wal = require "actionqueue.storage.wal"

local function hex(s)
  s = s:gsub("U(%d)", function(d) return "10" .. string.rep("00", 15) .. string.format("%02x", tonumber(d)) end)
  s = s:gsub("%s", "")
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

local function tohex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function uuid(n) return string.format("00000000-0000-0000-0000-%012x", n) end

-- §9.5: payloads of every variant, sequence 5, timestamp 9.
local VECTORS = {
  { "TaskCreated", "05 00 U1 00 00 00 01 00 00 00 00 00 00 00 00 00 00 09" },
  { "RunCreated", "05 01 U2 U1 00 00 00 e8 07 e8 07 00 e8 07" },
  { "RunStateChanged", "05 02 U2 00 08 09" },
  { "AttemptStarted", "05 03 U2 U3 09" },
  { "AttemptFinished", "05 04 U2 U3 03 01 01 65 01 01 aa 09" },
  { "TaskCanceled", "05 05 U1 09" },
  { "RunCanceled", "05 06 U2 09" },
  { "LeaseAcquired", "05 07 U2 01 77 80 01 09" },
  { "LeaseHeartbeat", "05 08 U2 01 77 80 01 09" },
  { "LeaseExpired", "05 09 U2 01 77 80 01 09" },
  { "LeaseReleased", "05 0a U2 01 77 80 01 09" },
  { "EnginePaused", "05 0b 09" },
  { "EngineResumed", "05 0c 09" },
  { "DependencyDeclared", "05 0d U1 01 U1 09" },
  { "RunSuspended", "05 0e U2 00 09" },
  { "RunResumed", "05 0f U2 09" },
  { "BudgetAllocated", "05 10 U1 02 01 09" },
  { "BudgetConsumed", "05 11 U1 00 01 09" },
  { "BudgetExhausted", "05 12 U1 01 09" },
  { "BudgetReplenished", "05 13 U1 00 01 09" },
  { "SubscriptionCreated", "05 14 U4 U1 02 U1 02 c8 09" },
  { "SubscriptionTriggered", "05 15 U4 09" },
  { "SubscriptionCanceled", "05 16 U4 09" },
  { "ActorRegistered", "05 17 U5 01 69 01 01 63 01 01 64 1e 01 U6 09" },
  { "ActorDeregistered", "05 18 U5 09" },
  { "ActorHeartbeat", "05 19 U5 09" },
  { "TenantCreated", "05 1a U6 01 6e 09" },
  { "RoleAssigned", "05 1b U5 03 01 72 U6 09" },
  { "CapabilityGranted", "05 1c U5 04 U6 09" },
  { "CapabilityRevoked", "05 1d U5 05 01 78 U6 09" },
  { "LedgerEntryAppended", "05 1e U7 U6 01 6b 00 02 01 02 09" },
}

describe("wal codec", function()
  it("has 31 variants in reference order", function()
    assert.equal(31, #W.WalEventType.variants)
    for i, v in ipairs(VECTORS) do
      assert.equal(v[1], W.WalEventType.variants[i].name)
      assert.equal(i - 1, W.WalEventType.variants[i].index)
    end
  end)

  for i, v in ipairs(VECTORS) do
    it("decodes and re-encodes the §9.5 vector of " .. v[1], function()
      local bytes = hex(v[2])
      local ev, used = codec.decode_payload(bytes)
      assert.is_table(ev, used)
      assert.equal(#bytes, used)
      assert.equal(5, ev.sequence)
      assert.equal(v[1], codec.variant(ev))
      if i ~= 2 then assert.equal(9, ev.event[v[1]].timestamp) end
      assert.equal(tohex(bytes), tohex(assert(codec.encode_payload(ev))))
    end)
  end

  it("decodes field values of the vectors", function()
    local ev = codec.decode_payload(hex(VECTORS[5][2])).event.AttemptFinished
    assert.same({ run_id = uuid(2), attempt_id = uuid(3), result = "Suspended", error = "e",
                  output = "\170", timestamp = 9 }, ev)
    ev = codec.decode_payload(hex(VECTORS[21][2])).event.SubscriptionCreated
    assert.same({ BudgetThreshold = { task_id = uuid(1), dimension = "TimeSecs", threshold_pct = 200 } }, ev.filter)
    ev = codec.decode_payload(hex(VECTORS[28][2])).event.RoleAssigned
    assert.same({ Custom = "r" }, ev.role)
    ev = codec.decode_payload(hex(VECTORS[29][2])).event.CapabilityGranted
    assert.equal("CanCancel", ev.capability)
    ev = codec.decode_payload(hex(VECTORS[24][2])).event.ActorRegistered
    assert.same({ "c" }, ev.capabilities)
    assert.equal(uuid(6), ev.tenant_id)
    assert.equal(30, ev.heartbeat_interval_secs)
  end)

  it("reproduces the framed worked examples §9.1-9.4", function()
    local ev = {
      sequence = 300,
      event = { TaskCreated = { timestamp = 1700000000, task_spec = {
        id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        payload = { bytes = "\1\2\3", content_type = "text/plain" },
        run_policy = { Repeat = { count = 3, interval_secs = 60 } },
        constraints = { max_attempts = 3, timeout_secs = 30, concurrency_key = "k",
                        concurrency_key_hold_policy = "HoldDuringRetry", safety_level = "Pure" },
        metadata = { tags = { "a" }, priority = -2, description = "d" },
      } } },
    }
    local rec = assert(codec.encode_record(ev))
    assert.equal(74, #rec)
    assert.equal("050000003e000000ce67e7a5ac02", tohex(rec:sub(1, 14)))
    assert.equal(tohex(hex("01 03 3c 03 01 1e 01 01 6b 00 00 00 01 01 61 03 01 01 64 00 00 80 e2 cf aa 06")),
      tohex(rec:sub(-26)))
    rec = assert(codec.encode_record({ sequence = 7, event = { EnginePaused = { timestamp = 1700000000 } } }))
    assert.equal("05000000070000003908e4d8070b80e2cfaa06", tohex(rec))
  end)

  describe("primitives (§7.1)", function()
    local function paused(seqhex) return hex(seqhex .. " 0b 00") end
    it("accepts non-minimal varints within the maximum length", function()
      assert.equal(1, codec.decode_payload(hex("81 00 0b 80 80 00")).sequence)
    end)
    it("u64: a 10th byte of 01 is the maximum, 02 overflows, 11 bytes are rejected", function()
      local ev = codec.decode_payload(paused("ff ff ff ff ff ff ff ff ff 01"))
      assert.equal(-1, ev.sequence)   -- 18446744073709551615
      assert.is_nil(codec.decode_payload(paused("ff ff ff ff ff ff ff ff ff 02")))
      assert.is_nil(codec.decode_payload(paused("ff ff ff ff ff ff ff ff ff 81 00")))
    end)
    it("u32 (variant index): 5th byte at most 0f", function()
      -- index 11 spelled with 5 bytes: 8b 80 80 80 00 is fine
      assert.is_table(codec.decode_payload(hex("01 8b 80 80 80 00 00")))
      assert.is_nil(codec.decode_payload(hex("01 8b 80 80 80 10 00")))
    end)
    it("i32 zigzag: priority extremes round-trip", function()
      for _, p in ipairs { 0, -1, 1, -2, 2147483647, -2147483648 } do
        local ev = codec.decode_payload(hex(VECTORS[1][2]))
        ev.event.TaskCreated.task_spec.metadata.priority = p
        local back = codec.decode_payload(assert(codec.encode_payload(ev)))
        assert.equal(p, back.event.TaskCreated.task_spec.metadata.priority)
      end
    end)
    it("rejects a bad option tag, a 15-byte UUID, invalid UTF-8, unknown variant 31, early end", function()
      assert.is_nil(codec.decode_payload(hex("05 0e U2 02 09")))
      assert.is_nil(codec.decode_payload(hex("05 0f 0f" .. string.rep(" 00", 15) .. " 09")))
      assert.is_nil(codec.decode_payload(hex("05 1a U6 01 ff 09")))
      assert.is_nil(codec.decode_payload(hex("05 1a U6 02 c3 28 09")))
      assert.is_nil(codec.decode_payload(hex("05 1f 09")))
      assert.is_nil(codec.decode_payload(hex("05 0b")))
      assert.is_nil(codec.decode_payload(""))
    end)
    it("u8 is a raw byte", function()
      local ev = codec.decode_payload(hex(VECTORS[21][2]))
      assert.equal(200, ev.event.SubscriptionCreated.filter.BudgetThreshold.threshold_pct)
    end)
    it("ignores trailing bytes inside a payload (§2)", function()
      local ev, used = codec.decode_payload(hex("07 0b 09 de ad"))
      assert.equal(7, ev.sequence)
      assert.equal(3, used)
    end)
  end)

  describe("semantic checks (§8.4) are decode failures", function()
    local base = "05 00 U1 00 00 %s %s 00 00 00 00 00 00 09"
    local once, cons = "00", "01 00 00 00 00 00"
    it("accepts the base record", function()
      assert.is_table(codec.decode_payload(hex(base:format(once, cons))))
    end)
    it("nil task id", function()
      assert.is_nil(codec.decode_payload(hex(("05 00 10" .. string.rep(" 00", 16) ..
        " 00 00 00 01 00 00 00 00 00 00 00 00 00 00 09"))))
    end)
    for name, c in pairs {
      max_attempts_0 = "00 00 00 00 00 00", timeout_0 = "01 01 00 00 00 00 00",
      empty_key = "01 00 01 00 00 00 00", empty_caps = "01 00 00 00 00 01 00",
      empty_cap_string = "01 00 00 00 00 01 01 00",
    } do
      it("constraints: " .. name, function()
        assert.is_nil(codec.decode_payload(hex(base:format(once, c))))
      end)
    end
    it("repeat count 0 / interval 0", function()
      assert.is_table(codec.decode_payload(hex(base:format("01 01 01", cons))))
      assert.is_nil(codec.decode_payload(hex(base:format("01 00 01", cons))))
      assert.is_nil(codec.decode_payload(hex(base:format("01 01 00", cons))))
    end)
    it("run instance rules", function()
      local run = "05 01 U2 U1 %s %s 00 %s %s 00 00"
      assert.is_table(codec.decode_payload(hex(run:format("03", "01 U3", "01", "01"))))
      assert.is_nil(codec.decode_payload(hex(run:format("06", "01 U3", "01", "01"))))
      assert.is_nil(codec.decode_payload(hex(run:format("00", "01 U3", "01", "01"))))
      assert.is_nil(codec.decode_payload(hex(run:format("01", "00", "01", "02"))))
      assert.is_table(codec.decode_payload(hex(run:format("01", "00", "02", "01"))))
      assert.is_nil(codec.decode_payload(hex(("05 01 10" .. string.rep(" 00", 16) ..
        " U1 00 00 00 00 00 00 00"))))
    end)
  end)

  describe("Cron run policy (§8.5, §11.1)", function()
    local ref = hex("01 00 U1 00 00 02 0d 30 20 2a 20 2a 20 2a 20 2a 20 2a 20 2a 01 00 00 00 00 00 00 00 00 00 00 00")
    local ev = { sequence = 1, event = { TaskCreated = { timestamp = 0, task_spec = {
      id = uuid(1), payload = { bytes = "" }, run_policy = { Cron = { expression = "0 * * * * * *" } },
      constraints = { max_attempts = 1 }, metadata = { tags = {}, priority = 0 } } } } }
    it("is a decode failure in the default build", function()
      assert.is_nil(codec.decode_payload(ref))
      assert.is_nil(codec.encode_payload(ev))
    end)
    it("the reference's tag-less record is unreadable even with the feature", function()
      assert.is_nil(codec.decode_payload(ref, { workflow = true }))
    end)
    it("with the feature, we always write the Option tag and read it back", function()
      local bytes = assert(codec.encode_payload(ev, { workflow = true }))
      assert.equal(#ref + 1, #bytes)
      local back = assert(codec.decode_payload(bytes, { workflow = true }))
      assert.same({ Cron = { expression = "0 * * * * * *" } }, back.event.TaskCreated.task_spec.run_policy)
      ev.event.TaskCreated.task_spec.run_policy.Cron.max_occurrences = 4
      back = assert(codec.decode_payload(assert(codec.encode_payload(ev, { workflow = true })), { workflow = true }))
      assert.equal(4, back.event.TaskCreated.task_spec.run_policy.Cron.max_occurrences)
    end)
  end)

  describe("encoder", function()
    it("rejects bad values with an encode error", function()
      local function enc(e) local ok, err = codec.encode_payload(e); return ok, err end
      assert.is_nil(enc({ sequence = 1, event = { Nope = {} } }))
      assert.is_nil(enc({ sequence = 1, event = { EnginePaused = {} } }))
      assert.is_nil(enc({ sequence = 1, event = { TaskCanceled = { task_id = "zz", timestamp = 1 } } }))
      assert.is_nil(enc({ sequence = 1,
        event = { TenantCreated = { tenant_id = uuid(1), name = "\255", timestamp = 1 } } }))
      local _, err = enc({ sequence = 1, event = { EnginePaused = {} } })
      assert.matches("^WAL encode serialization error: ", err)
    end)
    it("frames records in one call, singly or many (error names the index)", function()
      local a = { sequence = 7, event = { EnginePaused = { timestamp = 1700000000 } } }
      local b = { sequence = 8, event = { EngineResumed = { timestamp = 1 } } }
      local ra, rb = assert(codec.encode_record(a)), assert(codec.encode_record(b))
      assert.equal(core.frame_encode(5, assert(codec.encode_payload(a))), ra)
      assert.equal(ra .. rb, codec.encode_records { a, b })
      assert.equal("", codec.encode_records {})
      local ok, err, index = codec.encode_records { a, { sequence = 9, event = { EngineResumed = {} } } }
      assert.is_nil(ok)
      assert.matches("timestamp", err)
      assert.equal(2, index)
    end)
    it("raises only on API misuse", function()
      assert.has_error(function() core.postcard_decode("x", {}) end)
    end)
  end)

  it("renders the reference JSON form (§8.6)", function()
    local ev = codec.decode_payload(hex("07 0b 80 e2 cf aa 06"))
    assert.equal('{"sequence":7,"event":{"EnginePaused":{"timestamp":1700000000}}}', wal.to_json(ev))
    ev = codec.decode_payload(hex("ff ff ff ff ff ff ff ff ff 01 0b 00"))
    assert.equal('{"sequence":18446744073709551615,"event":{"EnginePaused":{"timestamp":0}}}', wal.to_json(ev))
  end)
end)

describe("cron expressions (workflow build, §8.4)", function()
  local cron = require "actionqueue.storage.schema.cron"
  it("accepts seconds-first 6/7-field schedules and shorthands", function()
    for _, e in ipairs { "0 * * * * *", "0 * * * * * *", "*/5 0-30 1,2,3 ? JAN-mar MON 2030",
                         "0 0 12 1/2 * SUN", "@daily", "0 30 9 * * Mon-Fri" } do
      assert.is_nil(cron.check(e), e)
    end
  end)
  it("rejects classic 5-field, out-of-range values, bad steps and names", function()
    for _, e in ipairs { "* * * * *", "60 * * * * *", "0 0 24 * * *", "0 0 0 0 * *", "0 0 0 * 13 *",
                         "0 0 0 * * 8", "*/0 * * * * *", "x * * * * *", "5-1 * * * * *", "",
                         "0 0 0 * * * 1969", "0 0 0 * * * * *" } do
      assert.is_string(cron.check(e), e)
    end
  end)
  it("makes an invalid cron record a decode failure when the feature is on", function()
    local ev = { sequence = 1, event = { TaskCreated = { timestamp = 0, task_spec = {
      id = "00000000-0000-0000-0000-000000000001", payload = { bytes = "" },
      run_policy = { Cron = { expression = "* * * * *" } },
      constraints = { max_attempts = 1 }, metadata = { tags = {}, priority = 0 } } } } }
    local bytes = assert(codec.encode_payload(ev, { workflow = true }))
    assert.is_nil(codec.decode_payload(bytes, { workflow = true }))
    ev.event.TaskCreated.task_spec.run_policy.Cron = { expression = "0 * * * * *", max_occurrences = 0 }
    bytes = assert(codec.encode_payload(ev, { workflow = true }))
    local _, err = codec.decode_payload(bytes, { workflow = true })
    assert.matches("max_occurrences", err)
  end)
end)

describe("skim (validate without building)", function()
  local function hexs(s)
    s = s:gsub("U(%d)", function(d) return "10" .. string.rep("00", 15) .. string.format("%02x", tonumber(d)) end)
    return (s:gsub("%s", ""):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
  end
  local bases = {
    hexs("05 00 U1 00 00 00 01 00 00 00 00 00 00 00 00 00 00 09"),
    hexs("05 01 U2 U1 00 00 00 e8 07 e8 07 00 e8 07"),
    hexs("05 04 U2 U3 03 01 01 65 01 01 aa 09"),
    hexs("05 14 U4 U1 02 U1 02 c8 09"),
    hexs("05 17 U5 01 69 01 01 63 01 01 64 1e 01 U6 09"),
    hexs("05 1d U5 05 01 78 U6 09"),
    hexs("05 00 U1 00 00 01 03 3c 03 01 1e 01 01 6b 00 00 00 01 01 61 03 01 01 64 00 00 09"),
  }
  it("agrees with decode on 20000 mutated payloads", function()
    math.randomseed(42)
    local disagreements, rejected = 0, 0
    for _ = 1, 20000 do
      local b = bases[math.random(#bases)]
      local bytes = { b:byte(1, -1) }
      for _ = 1, math.random(1, 3) do
        if #bytes < 2 then break end
        local k = math.random(#bytes)
        local r = math.random(4)
        if r == 1 then bytes[k] = math.random(0, 255)
        elseif r == 2 then bytes[k] = bytes[k] ~ (1 << math.random(0, 7)) & 0xff
        elseif r == 3 then bytes[k] = ({ 0, 1, 2, 0x7f, 0x80, 0xff })[math.random(6)]
        else for j = #bytes, k, -1 do bytes[j] = nil end end
      end
      local p = string.char(table.unpack(bytes))
      local ev, used = codec.decode_payload(p)
      local sused, seq, variant = codec.skim_payload(p)
      if ev then
        if sused ~= used or seq ~= ev.sequence or variant ~= codec.variant(ev) then
          disagreements = disagreements + 1
        end
      else
        rejected = rejected + 1
        if sused then disagreements = disagreements + 1 end
      end
    end
    assert.equal(0, disagreements)
    assert.is_true(rejected > 1000)
  end)
end)
