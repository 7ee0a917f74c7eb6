-- Machine output of `aqstore wal` (issue 14 item 5): `wal dump --json` writes only JSON
-- Lines on stdout (`| jq -c .` succeeds on every golden WAL), the status line goes to
-- stderr with the exit code kept; `wal verify --json` and `wal stats --json` print one
-- JSON document; every wal subcommand's --help shows an example.
local fixtures = require "support.fixtures"
local files = require "support.files"
local aqstore = require "support.aqstore_run"
local codec = require "actionqueue.storage.wal.codec"
local cjson = require "cjson"

local q = files.q

-- Runs a shell pipeline; returns stdout and the pipeline's exit status (jq's).
local function pipe(cmd)
  local p = assert(io.popen(cmd .. "; echo \"rc=$?\""))
  local out = p:read("a")
  p:close()
  local body, rc = out:match("^(.*)rc=(%d+)\n$")
  return body, tonumber(rc)
end

local function golden_wals()
  local list = {}
  if not fixtures.available() then return list end
  for _, e in ipairs(fixtures.manifest("wal")) do
    if e.kind == "recovery" then
      if e.wal ~= cjson.null then list[#list + 1] = { file = e.wal.file, status = e.wal.dump_status } end
    else
      list[#list + 1] = { file = e.file, status = e.dump.status, events = e.dump.events }
    end
  end
  return list
end

describe("aqstore wal --json", function()
  local have_jq = os.execute("command -v jq >/dev/null 2>&1")

  it("dump --json | jq -c . succeeds on every golden WAL; the status is on stderr", function()
    if not have_jq then
      pending("jq is not installed (make deps installs it)")
      return
    end
    local wals = golden_wals()
    assert.is_true(#wals > 100, "golden WALs missing")
    local err = os.tmpname()
    for _, w in ipairs(wals) do
      local path = fixtures.path("wal", w.file)
      local out, rc = pipe(string.format("lua5.4 %s wal dump --json %s 2>%s | jq -c . ",
        q(aqstore.aqstore), q(path), q(err)))
      assert.equal(0, rc, w.file .. ": jq failed: " .. out)
      local n = select(2, out:gsub("\n", ""))
      if w.events then assert.equal(w.events, n, w.file) end
      assert.equal(w.status .. "\n", files.read(err), w.file)
    end
    os.remove(err)
  end)

  it("dump --json keeps the exit code and, merged, the reference's lines", function()
    local tmp = os.tmpname()
    local r1 = codec.encode_record({ sequence = 1, event = { EnginePaused = { timestamp = 7 } } })
    files.write(tmp, r1 .. "\5\0\0")
    local r = aqstore.cli { "wal", "dump", "--json", tmp }
    assert.equal(1, r.code)
    assert.equal('{"sequence":1,"event":{"EnginePaused":{"timestamp":7}}}\n', r.out)
    assert.equal("CORRUPT offset=" .. #r1 .. " kind=incomplete_header\n", r.err)
    r = aqstore.cli({ "wal", "dump", "--json", tmp }, { merge = true })
    assert.equal('{"sequence":1,"event":{"EnginePaused":{"timestamp":7}}}\n' ..
      "CORRUPT offset=" .. #r1 .. " kind=incomplete_header\n", r.out)
    os.remove(tmp)
  end)

  it("verify --json and stats --json print one JSON document with exact u64", function()
    local tmp = os.tmpname()
    local MAX = -1
    local r1 = codec.encode_record({ sequence = 1, event = { EnginePaused = { timestamp = 7 } } })
    local r2 = codec.encode_record({ sequence = MAX, event = { EngineResumed = { timestamp = 8 } } })
    files.write(tmp, r1 .. r2)
    local r = aqstore.cli { "wal", "verify", "--json", tmp }
    assert.equal(0, r.code, r.err)
    assert.matches('"last_sequence": 18446744073709551615', r.out, 1, true)
    local doc = cjson.decode(r.out)
    assert.same({ true, 2, #r1 + #r2, tmp }, { doc.ok, doc.records, doc.valid_bytes, doc.file })
    r = aqstore.cli { "wal", "stats", "--json", tmp }
    assert.equal(0, r.code, r.err)
    doc = cjson.decode(r.out)
    assert.equal(2, doc.records)
    assert.same({ "EnginePaused", "EngineResumed" }, { doc.variants[1].name, doc.variants[2].name })
    assert.equal(1, doc.sequence.first)
    assert.matches('"max": 18446744073709551615', r.out, 1, true)
    files.write(tmp, r1 .. r2:sub(1, 20))
    r = aqstore.cli { "wal", "verify", "--json", tmp }
    assert.equal(1, r.code)
    doc = cjson.decode(r.out)
    assert.same({ false, "Corruption", #r1, "incomplete_payload" },
      { doc.ok, doc.error.kind, doc.error.offset, doc.error.reason })
    r = aqstore.cli { "wal", "stats", "--json", tmp }
    assert.equal(1, r.code)
    assert.is_false(cjson.decode(r.out).status.ok)
    os.remove(tmp)
  end)

  it("every wal subcommand's --help shows an example", function()
    for _, sub in ipairs { "dump", "verify", "repair", "stats", "open" } do
      local r = aqstore.cli { "wal", sub, "--help" }
      assert.equal(0, r.code, sub)
      assert.matches("Example:\n  aqstore wal " .. sub, r.out, 1, true)
    end
  end)
end)
