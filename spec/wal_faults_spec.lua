-- WAL appender under injected syscall failures (spec/support/faultshim.c, one child
-- per case): a failed append is rolled back and the writer stays usable; a failed
-- rollback poisons it (§4.2 step 5); a failed fdatasync under sync "always" is reported.
local fault = require "support.fault"

local function script(dir, body)
  return ([[
local appender = require "actionqueue.storage.wal.appender"
local function ev(s) return { sequence = s, event = { EnginePaused = { timestamp = 1700000000 } } } end
local function show(v, err) print(v and ("OK " .. tostring(v)) or ("ERR " .. tostring(err))) end
local w = assert(appender.open(%q, { sync = %q }))
]]):format(dir .. "/actionqueue.wal", body.sync or "none") .. body.code .. [[

io.stdout:flush()
os.exit(0, false)
]]
end

local function size(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

describe("wal appender under faults", function()
  if not fault.available() then
    pending("fault shim not built (make test-support)")
    return
  end
  local dir
  before_each(function() dir = fault.tmpdir("walfault") end)
  after_each(function() fault.rmdir(dir) end)

  it("rolls back a failed write and stays usable", function()
    local out = fault.run(script(dir, { code = [[
show(w:append(ev(1)))
show(w:append(ev(2)))
show(w:append(ev(2)))
show(w:current_sequence())
]] }), { AQS_FAULT = "pwrite:2:short,pwrite:3:ENOSPC", AQS_FAULT_PATH = dir })
    assert.equal("OK 1\nERR I/O error: No space left on device (os error 28)\nOK 2\nOK 2\n", out)
    assert.equal(38, size(dir .. "/actionqueue.wal"))
  end)

  it("is poisoned when the rollback fails", function()
    local out = fault.run(script(dir, { code = [[
show(w:append(ev(1)))
show(w:append(ev(2)))
show(w:append(ev(3)))
]] }), { AQS_FAULT = "pwrite:2:short,pwrite:3:EIO,ftruncate:1+:EIO", AQS_FAULT_PATH = dir })
    assert.equal("OK 1\nERR WAL writer is permanently poisoned after truncation failure\n" ..
      "ERR WAL writer is permanently poisoned after truncation failure\n", out)
  end)

  it("reports a failed fdatasync under sync always", function()
    local out = fault.run(script(dir, { sync = "always", code = [[
show(w:append(ev(1)))
show(w:append(ev(2)))
]] }), { AQS_FAULT = "fdatasync:2:EIO", AQS_FAULT_PATH = dir })
    assert.equal("OK 1\nERR I/O error: Input/output error (os error 5)\n", out)
  end)

  it("batch: one fdatasync per append_batch", function()
    local counts = fault.counts(script(dir, { sync = "batch", code = [[
show(w:append_batch { ev(1), ev(2), ev(3) })
show(w:append_batch { ev(4), ev(5) })
]] }), { AQS_FAULT_PATH = dir })
    assert.equal(2, counts.fdatasync)
  end)
end)
