-- C core: frame_read(path, {buffer = true}) hands a regular file's payload over in a
-- C buffer (read straight into it) that json_decode accepts and free() releases; every
-- other outcome is the same as without the option.
local core = require "actionqueue.storage.core"
local fixtures = require "support.fixtures"
local S = require "actionqueue.storage.schema.snapshot"

local function read(path, buffer)
  return core.frame_read(path, { version = 4, max_length = 268435456, buffer = buffer })
end

local function tmpfile(bytes)
  local p = os.tmpname()
  local f = assert(io.open(p, "wb"))
  f:write(bytes)
  f:close()
  return p
end

describe("frame_read {buffer = true}", function()
  it("gives the same bytes and decode result as the string payload for every snapshot fixture", function()
    local n = 0
    local dir = fixtures.path("snapshot")
    for path in io.popen("ls " .. dir .. "/*.snap " .. dir .. "/*.bin 2>/dev/null"):lines() do
      local name = path
      local a, b = read(path, false), read(path, true)
      assert.are.equal(a.status, b.status, name)
      if a.status == "ok" then
        n = n + 1
        assert.are.equal("userdata", type(b.payload))
        assert.are.equal(#a.payload, #b.payload)
        assert.are.equal(a.payload, tostring(b.payload))
        assert.are.same({ core.json_decode(a.payload, S.root) }, { core.json_decode(b.payload, S.root) })
        b.payload:free()
        assert.has_error(function() core.json_decode(b.payload, S.root) end)
        b.payload:free() -- idempotent
      else
        assert.are.same(a, b, name)
      end
    end
    assert.is_true(n > 0)
  end)

  it("reports crc_mismatch and short_payload like the string path", function()
    local payload = '{"x":1}'
    local bad = tmpfile(string.pack("<I4I4I4", 4, #payload, 12345) .. payload)
    local short = tmpfile(string.pack("<I4I4I4", 4, 100, 0) .. payload)
    for _, p in ipairs { bad, short } do
      assert.are.same(read(p, false), read(p, true))
      os.remove(p)
    end
  end)
end)
