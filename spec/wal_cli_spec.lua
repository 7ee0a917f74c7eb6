-- aqstore wal dump (readable) | verify | stats | repair on generated logs.
local files = require "support.files"
local aqstore = require "support.aqstore_run"
local codec = require "actionqueue.storage.wal.codec"

-- Runs aqstore; returns output (stdout+stderr) and exit code.
local function run(...)
  local r = aqstore.cli({ ... }, { merge = true })
  return r.out, r.code
end
local write, read = files.write, files.read

local function rec(seq, variant, fields)
  return assert(codec.encode_record({ sequence = seq, event = { [variant] = fields } }))
end

describe("aqstore wal", function()
  local tmp
  local r1 = rec(1, "EnginePaused", { timestamp = 1700000000 })
  local r2 = rec(2, "TenantCreated", { tenant_id = "7e4a0000-0000-4000-8000-000000000001", name = "acme",
                                       timestamp = 1700000001 })
  local r3 = rec(4, "EngineResumed", { timestamp = 1700000002 })
  before_each(function() tmp = os.tmpname() end)
  after_each(function()
    os.remove(tmp)
    for _, o in ipairs { #r1, #r1 + #r2 } do os.remove(tmp .. ".cut-" .. o) end
  end)

  it("dump lists one readable line per record and the status", function()
    write(tmp, r1 .. r2 .. r3)
    local out, code = run("wal", "dump", tmp)
    assert.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(4, #lines)
    assert.matches("^@0 +#1 +EnginePaused", lines[1])
    assert.matches('"name":"acme"', lines[2])
    assert.equal(string.format("END records=3 valid_bytes=%d", #r1 + #r2 + #r3), lines[4])
  end)

  it("verify reports integrity and the first corruption", function()
    write(tmp, r1 .. r2)
    local out, code = run("wal", "verify", tmp)
    assert.equal(0, code)
    assert.matches("^OK records=2 bytes=" .. (#r1 + #r2) .. " last_sequence=2", out)
    write(tmp, r1 .. r2:sub(1, 20))
    out, code = run("wal", "verify", tmp)
    assert.equal(1, code)
    assert.matches("^CORRUPT offset=" .. #r1 .. " kind=incomplete_payload", out)
  end)

  it("stats counts variants and the sequence range", function()
    write(tmp, r1 .. r2 .. r3)
    local out, code = run("wal", "stats", tmp)
    assert.equal(0, code)
    assert.matches("records 3", out)
    assert.matches("sequence first=1 last=4 min=1 max=4 gaps=1 non_increasing=0", out, 1, true)
    assert.matches("26 TenantCreated +1 records", out)
  end)

  it("repair cuts a torn tail into FILE.cut-OFFSET and refuses mid-file damage without --force", function()
    write(tmp, r1 .. r2 .. r3:sub(1, 5))
    local out, code = run("wal", "repair", tmp)
    assert.equal(0, code, out)
    assert.equal(r1 .. r2, read(tmp))
    assert.equal(r3:sub(1, 5), read(tmp .. ".cut-" .. (#r1 + #r2)))
    local broken = r1 .. r2:sub(1, 14) .. "\255" .. r2:sub(16) .. r3
    write(tmp, broken)
    out, code = run("wal", "repair", tmp)
    assert.equal(1, code)
    assert.matches("1 valid record", out)
    assert.equal(broken, read(tmp))
    out, code = run("wal", "repair", "--force", tmp)
    assert.equal(0, code, out)
    assert.equal(r1, read(tmp))
    assert.equal(broken:sub(#r1 + 1), read(tmp .. ".cut-" .. #r1))
  end)
end)
