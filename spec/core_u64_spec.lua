-- C core u64_tostring/u64_parse and lua/actionqueue/storage/u64.lua.
local core = require "actionqueue.storage.core"
local u64 = require "actionqueue.storage.u64"

describe("u64", function()
  it("prints Lua integers as unsigned", function()
    assert.equal("0", core.u64_tostring(0))
    assert.equal("9223372036854775807", core.u64_tostring(math.maxinteger))
    assert.equal("9223372036854775808", core.u64_tostring(math.mininteger))
    assert.equal("18446744073709551615", u64.tostring(-1))
    assert.equal("18446744073709551615", u64.tojson(u64.MAX))
    assert.has_error(function() core.u64_tostring(1.5) end)
  end)

  it("parses every decimal u64 and nothing else", function()
    assert.equal(0, u64.parse("0"))
    assert.equal(-1, u64.parse("18446744073709551615"))
    assert.equal(math.mininteger, u64.parse("9223372036854775808"))
    assert.equal(7, u64.parse("007"))
    for _, bad in ipairs({ "", "18446744073709551616", "99999999999999999999", "-1", "+1", " 1", "1 ",
                           "1e3", "0x10", "1.0", "abc", "184467440737095516150" }) do
      assert.is_nil(u64.parse(bad), bad)
    end
    assert.is_nil(u64.parse(5))
  end)

  it("round-trips", function()
    for _, n in ipairs({ 0, 1, 42, math.maxinteger, math.mininteger, -2, -1 }) do
      assert.equal(n, u64.parse(u64.tostring(n)))
    end
  end)

  it("orders unsigned", function()
    assert.is_true(u64.lt(1, -1))
    assert.is_false(u64.lt(-1, 1))
    assert.is_true(u64.le(-1, -1))
    assert.is_true(u64.le(math.maxinteger, math.mininteger))
    assert.equal(-1, u64.compare(0, -1))
    assert.equal(1, u64.compare(-1, 0))
    assert.equal(0, u64.compare(5, 5))
    assert.equal(-1, u64.max(3, -1))
    assert.equal(3, u64.max(3, 2))
    assert.equal(-1, u64.succ_sat(-1))
    assert.equal(math.mininteger, u64.succ_sat(math.maxinteger))
    assert.is_true(u64.is(1))
    assert.is_false(u64.is(1.0))
  end)
end)
