-- The small-object allocator of csrc/lua_alloc.c: its own consistency (a private instance,
-- so it runs under ASan too, where the state keeps the system allocator), a whole process
-- on it from start to lua_close, the AQS_LUA_ALLOC opt-out, and mem_budget on top of it.
local core = require "actionqueue.storage.core"
local fixtures = require "support.fixtures"

-- Runs `code` in a fresh lua5.4 (same LUA_PATH/LUA_CPATH) with AQS_LUA_ALLOC=`mode`
-- (nil: unset); returns its stdout and whether it exited 0.
local function run_lua(mode, code)
  local env = mode and ("AQS_LUA_ALLOC=" .. mode .. " ") or "env -u AQS_LUA_ALLOC "
  local p = assert(io.popen(env .. "lua5.4 -e '" .. code:gsub("'", "'\\''") .. "' 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

describe("core lua allocator", function()
  it("keeps every block intact through random alloc/realloc/free with refusals", function()
    for seed = 1, 3 do
      local r = core._alloc_selftest(20000, seed)
      assert.is_true(r.ops > 15000)
      -- growth was refused (the previous allocator and new chunks), shrinks never were
      assert.is_true(r.refused > 0)
      -- blocks of the allocator that was there before were reallocated through it
      assert.is_true(r.adopted > 0)
      assert.is_true(r.chunks_peak > 1)
    end
  end)

  it("runs a whole process on the slabs, through lua_close", function()
    -- lua_close unloads the C module before it frees the last objects through the
    -- allocator: the module pins itself (this exited on SIGSEGV before it did).
    local snap = fixtures.root .. "/snapshot/valid_12_medium_1000.snap"
    local out, ok = run_lua("slab", ("local snap = %q\n"):format(snap) .. [[
      local core = require "actionqueue.storage.core"
      local s = assert(require("actionqueue.storage.snapshot").load(snap))
      local keep = {}
      for i = 1, 20000 do keep[i] = { i, tostring(i) .. "-id" } end
      keep = nil
      collectgarbage()
      local st = core._alloc_stats()
      io.write(st.mode, " ", #s.tasks, " ", st.chunks > 0 and "chunks" or "none", "\n")
    ]])
    assert.is_true(ok, out)
    assert.equal("slab 1000 chunks\n", out)
  end)

  it("leaves the state's allocator alone under AQS_LUA_ALLOC=system", function()
    local out, ok = run_lua("system", [[
      local st = require("actionqueue.storage.core")._alloc_stats()
      io.write(st.mode, " ", st.chunks, "\n")
    ]])
    assert.is_true(ok, out)
    assert.equal("system 0\n", out)
  end)

  it("is installed once per state, also when the module is opened again", function()
    local out, ok = run_lua("slab", [[
      local c1 = require "actionqueue.storage.core"
      package.loaded["actionqueue.storage.core"] = nil
      local c2 = require "actionqueue.storage.core"
      local t = {}
      for i = 1, 1000 do t[i] = { tostring(i) } end
      io.write(c1._alloc_stats().mode, " ", c2._alloc_stats().mode, "\n")
    ]])
    assert.is_true(ok, out)
    assert.equal("slab slab\n", out)
  end)

  it("lets mem_budget wrap it and restores it afterwards", function()
    local out, ok = run_lua("slab", [[
      local core = require "actionqueue.storage.core"
      local kept = {}
      do
        local b <close> = core.mem_budget(64 * 1024)
        for i = 1, 200 do kept[i] = { "small", i } end
        local fine = pcall(string.rep, "x", 1024 * 1024)
        io.write(tostring(fine), " ", tostring(b:exceeded()), " ", b:used() > 0 and "+" or "-", " ")
      end
      for i = 1, #kept do kept[i] = nil end
      collectgarbage()
      io.write(core._alloc_stats().mode, "\n")
    ]])
    assert.is_true(ok, out)
    assert.equal("false true + slab\n", out)
  end)
end)
