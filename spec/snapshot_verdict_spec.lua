-- The streamed verdict (snapshot.verdict, csrc/verdict.c) against the table path
-- (snapshot.load) and against snapshot.validate of the decoded table (the rules run on
-- the table's encoding): one implementation of the rules, reached three ways (skimming,
-- building, encoding a Lua table), must give the same outcome, kind, text and violation
-- path on every golden fixture, on truncations and bit flips (with the CRC left stale and recomputed, so that
-- the flips reach the decoder and the rules), and on documents larger than the read
-- window (errors after many slides keep their line and column).
-- Also: the collector is never left stopped by a raising decode (issue 17.6).
local core = require "actionqueue.storage.core"
local dsl = require "actionqueue.storage.schema.dsl"
local snapshot = require "actionqueue.storage.snapshot"
local load = require "actionqueue.storage.snapshot.load"
local codec = require "actionqueue.storage.snapshot.codec"
local fixtures = require "spec.support.fixtures"
local files = require "support.files"

local full = os.getenv("AQS_RELIABILITY") == "full"

local tmpdir = files.tmpdir()

local function put(name, data)
  local p = tmpdir .. "/" .. name
  files.write(p, data)
  return p
end

local function describe_err(err)
  return ("ERR %s %s %s"):format(err.kind, err.message, tostring(err.violation and err.violation.path))
end

local function by_load(path)
  local snap, err = snapshot.load(path)
  if snap == false then return "NONE" end
  if snap then return ("OK tasks=%d runs=%d"):format(#snap.tasks, #snap.runs) end
  return describe_err(err)
end

local function by_verdict(path)
  local v, err = load.verdict(path)
  if v == false then return "NONE" end
  if v then return ("OK tasks=%d runs=%d"):format(v.tasks, v.runs) end
  return describe_err(err)
end

-- A payload that decodes (codec.decode: no rules, the schema's Lua checks) judged by
-- snapshot.validate (the table's encoding through the rules); nil when the frame or
-- the decode fails (those outcomes are load's and the verdict's alone).
local function by_table(path)
  local r = core.frame_read(path, { version = 4 })
  if r.status ~= "ok" then return nil end
  local t = codec.decode(r.payload)
  if not t then return nil end
  local ok, v = snapshot.validate(t)
  if ok then return ("OK tasks=%d runs=%d"):format(#t.tasks, #t.runs) end
  return ("ERR MappingError Mapping error: %s %s"):format(v.message, v.path)
end

local function agree(path, what)
  local a, b, c = by_load(path), by_verdict(path), by_table(path)
  assert(a == b, ("%s: load says %q, verdict says %q"):format(what, a, b))
  assert(c == nil or c == a, ("%s: load says %q, validate of the decoded table says %q"):format(what, a, c))
  return a
end

local function flip(d, i, bit)
  return d:sub(1, i - 1) .. string.char(d:byte(i) ~ (1 << bit)) .. d:sub(i + 1)
end

describe("snapshot verdict", function()

  it("agrees with the loader on every golden fixture", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local n, outcomes = 0, {}
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      local got = agree(fixtures.path("snapshot", c.file), c.file)
      outcomes[got:match("^ERR %S+") or got:match("^%S+")] = true
      n = n + 1
    end
    assert.is_true(n > 50)
    -- the fixtures reach every kind of outcome
    for _, k in ipairs { "ERR DecodeError", "ERR MappingError", "ERR CrcMismatch", "ERR IoError", "NONE" } do
      assert.is_true(outcomes[k] ~= nil, k)
    end
  end)

  it("agrees on truncations and bit flips (stale and recomputed CRC)", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local stride = full and 1 or 17
    local n = 0
    for _, name in ipairs { "valid_01_tasks.snap", "valid_04_engine_resumed.snap", "valid_10_direct_fields.snap",
                            "valid_02_runs_all_states.snap" } do
      local good = files.read(fixtures.path("snapshot", name))
      if good then
        local payload = good:sub(13)
        for k = 0, #good - 1, stride do
          agree(put("t.snap", good:sub(1, k)), name .. " truncated to " .. k)
          n = n + 1
        end
        for i = 1, #payload, stride do
          for bit = 0, 7 do
            local bad = flip(payload, i, bit)
            agree(put("f.snap", core.frame_encode(4, bad)), ("%s flip %d.%d, CRC recomputed"):format(name, i, bit))
            if bit == 5 then agree(put("g.snap", good:sub(1, 12) .. bad), ("%s flip %d.%d"):format(name, i, bit)) end
            n = n + 1
          end
        end
      end
    end
    assert.is_true(n > 500)
  end)

  it("keeps line and column of errors far beyond the read window", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local snap = assert(snapshot.load(fixtures.path("snapshot", "valid_12_medium_1000.snap")))
    local pretty = core.json_encode(snap, codec.schema(), { indent = 2 })
    assert.is_true(#pretty > 1000000)
    assert.equal("OK tasks=1000 runs=1000", agree(put("p.snap", core.frame_encode(4, pretty)), "pretty"))
    local seen = 0
    for _, at in ipairs { 70000, 131072, 500001, #pretty - 40 } do
      -- the first value token at or after `at` is replaced by a string: a decode error
      local s, e = pretty:find('": [%d"tfn%[{]', at)
      local bad = pretty:sub(1, s + 2) .. "@" .. pretty:sub(e + 1)
      local got = agree(put("e.snap", core.frame_encode(4, bad)), "error near " .. at)
      assert.matches("line %d+ column %d+", got)
      seen = seen + 1
      -- and a mapping error after everything was streamed: a wrong run count
      local wrong = pretty:gsub('"run_count": 1000', '"run_count": 999', 1)
      assert.equal("ERR MappingError Mapping error: snapshot run_count mismatch: declared 999, actual 1000 "
        .. "metadata.run_count", agree(put("m.snap", core.frame_encode(4, wrong)), "mapping"))
    end
    assert.equal(4, seen)
  end)

  it("reports a CRC mismatch before a decode error earlier in the stream", function()
    local p = put("c.snap", core.frame_header(4, 5, 0) .. "nope!")
    assert.equal("ERR CrcMismatch Snapshot CRC-32 mismatch: expected 0x00000000, actual 0x"
      .. ("%08x"):format(core.crc32("nope!")) .. " nil", agree(p, "crc"))
  end)

  it("check goes through the verdict (same line as before)", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local c = snapshot.check(fixtures.path("snapshot", "valid_02_runs_all_states.snap"))
    assert.equal("ok", c.status)
    assert.equal(by_load(fixtures.path("snapshot", "valid_02_runs_all_states.snap")), c.line)
  end)
end)

describe("snapshot.rewrite (transcoded while it is judged)", function()
  local write = require "actionqueue.storage.snapshot.write"

  it("writes what load + write write, for every fixture, byte for byte", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local copied, n = 0, 0
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      local input = fixtures.path("snapshot", c.file)
      local a_out, b_out = tmpdir .. "/rw_a.snap", tmpdir .. "/rw_b.snap"
      os.remove(a_out)
      os.remove(b_out)
      local r, err = snapshot.rewrite(input, a_out)
      local snap, lerr = snapshot.load(input)
      local ok, werr
      if snap then ok, werr = write.write(b_out, snap, { validated = true }) end
      if r then
        assert.is_truthy(ok, c.file)
        assert.equal(#snap.tasks, r.tasks)
        assert.equal(#snap.runs, r.runs)
        assert.equal(files.read(b_out), files.read(a_out), c.file)
        if load.verdict_result(input).canonical then copied = copied + 1 end
      elseif r == false then
        assert.equal(false, snap, c.file)
        assert.is_nil(files.read(a_out))
      else
        assert.equal((snap and werr or lerr).message, err.message, c.file)
        assert.is_nil(files.read(a_out), c.file .. ": nothing written")
      end
      n = n + 1
    end
    assert.is_true(n > 50 and copied > 10, ("%d fixtures, %d copied"):format(n, copied))
  end)

  it("tells canonical payloads from the others", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    assert.is_true(load.verdict_result(fixtures.path("snapshot", "valid_02_runs_all_states.snap")).canonical)
    for _, name in ipairs { "compat_01_serde_default_fields_omitted", "compat_03_unknown_fields_ignored",
                            "compat_05_pretty_whitespace", "compat_06_uuid_uppercase" } do
      assert.is_false(load.verdict_result(fixtures.path("snapshot", name .. ".snap")).canonical, name)
      assert.is_true(load.verdict_result(fixtures.path("snapshot", name .. ".canonical.snap")).canonical, name)
    end
  end)
end)

describe("error texts with a NUL byte (length-aware, like the engine's)", function()
  teardown(function() files.rmtree(tmpdir) end)

  it("keeps the NUL of an unknown variant, on both paths", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local good = files.read(fixtures.path("snapshot", "valid_09_big_numbers.snap"))
    local payload = good:sub(13):gsub('"role":"Operator"', '"role":"Oper\\u0000ator"', 1)
    local got = agree(put("nul.snap", core.frame_encode(4, payload)), "NUL variant")
    assert.truthy(got:find("unknown variant `Oper\0ator`, expected one of `Operator`", 1, true), got)
  end)

  it("keeps a NUL found in a UUID", function()
    local _, err = core.uuid_parse("a1a1a1a1-0000-4000-8000-00000000000\0")
    assert.equal("UUID parsing failed: invalid character: expected an optional prefix of `urn:uuid:` "
      .. "followed by [0-9a-fA-F-], found `\0` at 36", err)
    if not fixtures.available() then return end
    local good = files.read(fixtures.path("snapshot", "valid_01_tasks.snap"))
    local payload = good:sub(13):gsub('("id":"[^"]-)%x"', '%1\\u0000"', 1)
    local got = agree(put("nulid.snap", core.frame_encode(4, payload)), "NUL id")
    assert.truthy(got:find("found `\0` at 36 at line 1", 1, true), got)
  end)
end)

describe("the collector after a raising decode (issue 17.6)", function()
  -- An allocation failure inside the decoder unwinds it like any raised error: a
  -- default function that fails to allocate stands for it.
  local R = dsl.record { "R", { "a", dsl.u32 },
    { "b", dsl.u32, default = function() error("not enough memory", 0) end } }

  after_each(function() collectgarbage("restart") end)

  it("json_decode restarts the collector when a raise unwinds it", function()
    collectgarbage("restart")
    local ok, err = pcall(core.json_decode, '{"a":1}', R)
    assert.is_false(ok)
    assert.equal("not enough memory", err)
    assert.is_true(collectgarbage("isrunning"))
  end)

  it("json_decode restarts the collector after a real allocation failure (MemBudget)", function()
    local L = dsl.record { "L", { "xs", dsl.list(dsl.string) } }
    local parts = {}
    for i = 1, 20000 do parts[i] = string.format('"%08d-some-text"', i) end
    local payload = '{"xs":[' .. table.concat(parts, ",") .. ']}'
    core.schema(L)   -- compiled outside the budget
    collectgarbage("collect")
    collectgarbage("restart")
    local budget = core.mem_budget(256 * 1024)
    local ok, err = pcall(core.json_decode, payload, L)
    local exceeded = budget:exceeded()
    local running = collectgarbage("isrunning")
    budget:release()
    assert.is_false(ok)
    assert.is_true(exceeded)
    assert.matches("not enough memory", tostring(err), 1, true)
    assert.is_true(running)
  end)

  it("json_decode leaves a stopped collector stopped", function()
    collectgarbage("stop")
    assert.is_nil((core.json_decode('{"a":"x"}', R)))
    assert.is_false(collectgarbage("isrunning"))
  end)

  it("snapshot.load restarts the collector when decoding raises", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local real = core.snapshot_read
    core.snapshot_read = function() error("not enough memory", 0) end
    collectgarbage("restart")
    local ok, err = pcall(snapshot.load, fixtures.path("snapshot", "valid_01_tasks.snap"))
    core.snapshot_read = real
    assert.is_false(ok)
    assert.equal("not enough memory", err)
    assert.is_true(collectgarbage("isrunning"))
  end)
end)
