-- UUIDs: v4 generation, the four accepted spellings with the reference's error texts,
-- and byte ordering.
local uuid = require "actionqueue.storage.uuid"

local CANON = "6f2b0c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
local CHAR = "UUID parsing failed: invalid character: expected an optional prefix of `urn:uuid:` "
  .. "followed by [0-9a-fA-F-], found `%s` at %d"

-- uuid.normalize (the C core's parser, the one the codecs use) and core.uuid_parse itself.
local core = require "actionqueue.storage.core"
local parsers = { { "uuid.normalize", uuid.normalize }, { "core.uuid_parse", core.uuid_parse } }

for _, p in ipairs(parsers) do
  local name, parse = p[1], p[2]
  describe(name, function()
    it("accepts the four spellings, hex in either case", function()
      for _, s in ipairs {
        CANON, CANON:upper(), "6F2B0C1E-3d4a-4b5c-8d9e-0a1b2c3d4e5f",
        (CANON:gsub("-", "")), (CANON:gsub("-", "")):upper(),
        "{" .. CANON .. "}", "{" .. CANON:upper() .. "}",
        "urn:uuid:" .. CANON, "urn:uuid:" .. CANON:upper(),
      } do
        assert.equal(CANON, (parse(s)))
      end
    end)

    local rejects = {
      { "", "UUID parsing failed: invalid length: expected length 32 for simple format, found 0" },
      { CANON:sub(1, 35) .. "g", CHAR:format("g", 36) },
      { " " .. CANON, CHAR:format(" ", 1) },
      { "URN:UUID:" .. CANON, CHAR:format("U", 1) },
      { "urn:uuid:" .. CANON:sub(1, 35) .. "x", CHAR:format("x", 45) },
      { "{" .. CANON:sub(1, 35) .. "z}", CHAR:format("z", 37) },
      { CANON:sub(1, 35), "UUID parsing failed: invalid group length in group 4: expected 12, found 11" },
      { CANON .. "0", "UUID parsing failed: invalid group length in group 4: expected 12, found 13" },
      { "6f2b0c1-e3d4a-4b5c-8d9e-0a1b2c3d4e5f",
        "UUID parsing failed: invalid group length in group 0: expected 8, found 7" },
      { "6f2b0c1e-3d4a4-b5c-8d9e-0a1b2c3d4e5f",
        "UUID parsing failed: invalid group length in group 1: expected 4, found 5" },
      { "6f2b0c1e-3d4a-4b5c8d9e-0a1b2c3d4e5f-", "UUID parsing failed: invalid group length in group 2: "
        .. "expected 4, found 8" },
      { "6f2b0c1e-3d4a-4b5c-8d9e0a1b2c3d4e5f", "UUID parsing failed: invalid group count: expected 5, found 4" },
      { "6f2b0c1e3d4a4b5c8d9e0a1b2c3d4e5", "UUID parsing failed: invalid length: expected length 32 "
        .. "for simple format, found 31" },
      { "{" .. (CANON:gsub("-", "")) .. "}", "UUID parsing failed: invalid group count: expected 5, found 1" },
      { "6f2b0c1e-3d4a-4b5c-8d9e-0a1b2c3d4e5\xc3\xa9", CHAR:format("\xc3\xa9", 36) },
    }
    for _, r in ipairs(rejects) do
      it("rejects " .. string.format("%q", r[1]), function()
        local ok, err = parse(r[1])
        assert.is_nil(ok)
        assert.equal(r[2], err)
      end)
    end
  end)
end

describe("uuid", function()
  it("v4 gives distinct lower-case hyphenated ids with version 4 and the RFC variant", function()
    local seen = {}
    for _ = 1, 200 do
      local id = uuid.v4()
      assert.truthy(id:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"), id)
      assert.is_nil(id:match("%u"))
      assert.is_nil(seen[id])
      seen[id] = true
      assert.equal(id, uuid.normalize(id))
    end
  end)

  it("is_nil recognises every spelling of the nil UUID", function()
    assert.is_true(uuid.is_nil(uuid.NIL))
    assert.is_true(uuid.is_nil(string.rep("0", 32)))
    assert.is_true(uuid.is_nil("{" .. uuid.NIL .. "}"))
    assert.is_false(uuid.is_nil(CANON))
    assert.is_false(uuid.is_nil("nope"))
  end)

  it("bytes round trip", function()
    local b = assert(uuid.to_bytes(CANON:upper()))
    assert.equal(16, #b)
    assert.equal(0x6f, b:byte(1))
    assert.equal(0x5f, b:byte(16))
    assert.equal(CANON, uuid.from_bytes(b))
  end)

  it("orders by the 16 bytes, whatever the spelling", function()
    local a, b = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-0000000000a0"
    assert.equal(-1, uuid.compare(a, b))
    assert.equal(1, uuid.compare(b:upper(), a))
    assert.equal(0, uuid.compare(a, a:upper():gsub("-", "")))
    -- order by bytes equals order by the canonical strings
    local ids = {}
    for i = 1, 50 do ids[i] = uuid.v4() end
    local by_bytes = {}
    for i, id in ipairs(ids) do by_bytes[i] = uuid.to_bytes(id) end
    table.sort(by_bytes)
    uuid.sort(ids)
    for i = 1, 50 do assert.equal(uuid.from_bytes(by_bytes[i]), ids[i]) end
  end)
end)
