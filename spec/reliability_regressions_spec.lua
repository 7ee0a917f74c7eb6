-- Replays every input kept in spec/regressions/<target>/ (crashes found by `make fuzz`
-- and hand-made adversarial cases) through the fuzz target's own Lua driver
-- (fuzz/<target>.lua): the decoders must not crash and the properties must hold.
local root = (debug.getinfo(1, "S").source:sub(2):match("^(.*)/spec/[^/]*$")) or "."

local function files(dir)
  local list = {}
  local p = io.popen("ls -A '" .. dir .. "' 2>/dev/null")
  for l in p:lines() do list[#list + 1] = l end
  p:close()
  table.sort(list)
  return list
end

local spec_files = require "support.files"
local function slurp(p) return assert(spec_files.read(p)) end   -- raises on a missing file

describe("fuzz regressions", function()
  local total = 0
  for _, target in ipairs({ "frame", "snapshot_json", "wal_postcard", "wal_stream" }) do
    local driver = dofile(root .. "/fuzz/" .. target .. ".lua")
    local dir = root .. "/spec/regressions/" .. target
    local list = files(dir)
    total = total + #list
    it(target .. ": " .. #list .. " kept inputs replay cleanly", function()
      for _, name in ipairs(list) do
        local ok, err = pcall(driver, slurp(dir .. "/" .. name))
        assert(ok, target .. "/" .. name .. ": " .. tostring(err))
      end
    end)
  end

  it("the drivers check their properties (a broken property raises)", function()
    local frame = dofile(root .. "/fuzz/frame.lua")
    local core = require "actionqueue.storage.core"
    local real = core.crc32
    core.crc32 = function() return -1 end   -- a CRC that disagrees with every ok frame
    local ok = pcall(frame, core.frame_encode(4, "abc"))
    core.crc32 = real
    assert.is_false(ok)
    assert.is_true(total >= 6)
  end)
end)
