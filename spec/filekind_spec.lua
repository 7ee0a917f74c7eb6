-- What a file looks like (issue 14 item 7): `check`, `inspect` and `verify` given a
-- non-snapshot say so on stderr and name the command that fits; `check`'s stdout keeps the
-- engine's exact ERR line.
local filekind = require "actionqueue.storage.filekind"
local fixtures = require "support.fixtures"
local files = require "support.files"
local run = require "support.aqstore_run"

local SNAP = files.abs(fixtures.root .. "/snapshot/valid_01_tasks.snap")
local WAL = files.abs(fixtures.root .. "/wal/events/all_events.wal")

describe("filekind.sniff", function()
  local tmp
  before_each(function() tmp = files.tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  local function sniff(data, name)
    local p = tmp .. "/" .. (name or "f")
    files.write(p, data)
    return filekind.sniff(p)
  end

  it("recognises a snapshot frame, a WAL and an empty file", function()
    assert.equal("snapshot", filekind.sniff(SNAP).kind)
    assert.equal("wal", filekind.sniff(WAL).kind)
    assert.equal("empty", sniff("").kind)
  end)

  it("recognises JSON text, with or without leading white space or a BOM", function()
    assert.equal("json", sniff('{"version": 4}').kind)
    assert.equal("json", sniff('\n  [1, 2]').kind)
    assert.equal("json", sniff('\239\187\191{"a":1}').kind)
  end)

  it("recognises JSON Lines (wal dump --json output)", function()
    assert.equal("jsonl", sniff('{"sequence":1}\n{"sequence":2}\n').kind)
  end)

  it("recognises Lua source and bytecode", function()
    assert.equal("lua", sniff("-- a queue\nreturn { tasks = {} }\n").kind)
    assert.equal("lua", sniff("local t = {}\nreturn t\n").kind)
    assert.equal("lua", sniff("return {}").kind)
    assert.equal("lua", sniff("#!/usr/bin/env lua5.4\nprint(1)\n").kind)
    assert.equal("lua", sniff(string.dump(function() end)).kind)
  end)

  it("leaves other bytes unknown and a missing file nil", function()
    assert.equal("unknown", sniff("\0\1\2\3garbage").kind)
    assert.is_nil(filekind.sniff(tmp .. "/missing"))
  end)

  it("a WAL needs its record header to fit the file (version 5 alone is not enough)", function()
    assert.equal("unknown", sniff("\5\0\0\0\255\255\0\0\0\0\0\0").kind)
  end)

  it("a snapshot frame with version 5 (JSON payload) is a snapshot, not a WAL", function()
    assert.equal("snapshot", filekind.sniff(fixtures.root .. "/snapshot/frame_04_version_5.snap").kind)
  end)

  it("every recognised non-snapshot kind has a description and a hint naming a command", function()
    for _, data in ipairs { "", '{"a":1}', '{"a":1}\n{"b":2}\n', "return {}" } do
      local k = sniff(data)
      assert.is_string(k.description)
      assert.matches("aqstore ", filekind.hint(tmp .. "/f"))
    end
    assert.is_nil(filekind.hint(SNAP))
  end)
end)

describe("check, inspect and verify on a non-snapshot", function()
  local tmp
  lazy_setup(function()
    tmp = files.tmpdir()
    files.copy(fixtures.repo .. "/examples/queue.json", tmp .. "/queue.json")
    files.copy(fixtures.repo .. "/examples/queue.lua", tmp .. "/queue.lua")
    files.copy(WAL, tmp .. "/events.wal")
    files.write(tmp .. "/empty.snap", "")
  end)
  lazy_teardown(function() files.rmtree(tmp) end)

  local cases = {
    { "queue.json", "JSON text", "aqstore validate", "aqstore build" },
    { "queue.lua", "Lua source", "aqstore validate", "aqstore build" },
    { "events.wal", "write-ahead log", "aqstore wal verify", "aqstore wal dump" },
  }
  for _, c in ipairs(cases) do
    local file, looks, cmd1, cmd2 = c[1], c[2], c[3], c[4]
    it("check " .. file .. ": the engine's ERR line on stdout, the hint on stderr", function()
      local r = run.cli({ "check", file }, { cwd = tmp })
      assert.equal(1, r.code)
      assert.matches("^ERR Incompatible snapshot version: expected 4, found %d+\n$", r.out)
      assert.matches(looks, r.err, 1, true)
      assert.matches(cmd1, r.err, 1, true)
      assert.matches(cmd2, r.err, 1, true)
    end)

    it("inspect " .. file .. " says what it looks like", function()
      local r = run.cli({ "inspect", file }, { cwd = tmp })
      assert.equal(1, r.code)
      assert.matches(looks, r.err, 1, true)
      assert.matches(cmd1, r.err, 1, true)
    end)

    it("verify " .. file .. " says what it looks like (and --json carries it)", function()
      local r = run.cli({ "verify", file }, { cwd = tmp })
      assert.equal(1, r.code)
      assert.matches("^BAD " .. file:gsub("%.", "%%."), r.out)
      assert.matches(looks, r.err, 1, true)
      local j = run.cli({ "verify", "--json", file }, { cwd = tmp })
      assert.matches('"looks_like": "' .. filekind.sniff(tmp .. "/" .. file).kind .. '"', j.out, 1, true)
    end)
  end

  it("check of an empty file prints NONE on stdout (the contract) and says why on stderr", function()
    local r = run.cli({ "check", "empty.snap" }, { cwd = tmp })
    assert.equal(0, r.code)
    assert.equal("NONE\n", r.out)
    assert.matches("empty", r.err, 1, true)
  end)

  it("a real snapshot gets no hint", function()
    local r = run.cli({ "check", SNAP })
    assert.equal("", r.err)
    assert.equal(0, r.code)
  end)
end)
