-- The sandbox for data chunks (batch job files, .lua build sources): nothing of the runner
-- reachable, safe functions only, CPU and memory budgets (issue 13 item 7).
local sandbox = require "actionqueue.storage.sandbox"
local jobfile = require "actionqueue.storage.batch.jobfile"
local files = require "support.files"
local fixtures = require "support.fixtures"
local run = require "support.aqstore_run"

local SMALL = { instructions = 2000000, memory = 16 * 1024 * 1024 }

local function fails(src, kind, pattern, opts)
  local v, err = sandbox.run(src, "data.lua", opts or SMALL)
  assert.is_nil(v)
  assert.equal(kind, err.kind, err.message)
  assert.equal("data.lua", err.file)
  assert.matches("^data%.lua", err.message)
  if pattern then assert.matches(pattern, err.message) end
  return err
end

describe("sandbox", function()
  local real_format, real_rep, real_index = string.format, string.rep, getmetatable("").__index

  after_each(function()
    -- whatever a spec did, the runner's tables are the ones it started with
    assert.equal(real_format, string.format)
    assert.equal(real_rep, string.rep)
    assert.equal(real_index, getmetatable("").__index)
    assert.equal(string, getmetatable("").__index)
  end)

  it("returns the chunk's value", function()
    assert.same({ a = 1, b = { "x" } }, sandbox.run("return { a = 1, b = { ('x'):lower() } }", "d.lua"))
  end)

  it("gives copies of the library tables: patching them changes nothing outside", function()
    local v = assert(sandbox.run([[
      string.format = function() return "pwned" end
      string.rep = function() return "pwned" end
      table.concat = function() return "pwned" end
      math.floor = function() return "pwned" end
      os.time = function() return "pwned" end
      return string.format("%d", 1)
    ]], "d.lua"))
    assert.equal("pwned", v)
    assert.equal("1", string.format("%d", 1))
    assert.equal("ab", table.concat { "a", "b" })
    assert.equal(1, math.floor(1.5))
    assert.equal("number", type(os.time()))
    -- a second run gets fresh copies
    assert.equal("7", sandbox.run("return string.format('%d', 7)", "d.lua"))
  end)

  it("keeps method calls on strings away from the runner's string table", function()
    -- the chunk cannot reach the metatable's __index, and its own patches do not leak into it
    local v = assert(sandbox.run([[
      string.rep = function() return "patched" end
      return { ("x"):rep(3), ("%d"):format(5), type(getmetatable) }
    ]], "d.lua"))
    assert.same({ "xxx", "5", "nil" }, v)
  end)

  it("offers only the safe functions", function()
    local v = assert(sandbox.run([[
      local names = {}
      for _, n in ipairs { "load", "loadstring", "require", "dofile", "loadfile", "io", "print", "pcall", "xpcall",
                           "setmetatable", "getmetatable", "collectgarbage", "debug", "coroutine", "package", "_G" } do
        if _ENV[n] ~= nil then names[#names + 1] = n end
      end
      for _, n in ipairs { "execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale" } do
        if os[n] ~= nil then names[#names + 1] = "os." .. n end
      end
      if string.dump then names[#names + 1] = "string.dump" end
      if math.randomseed then names[#names + 1] = "math.randomseed" end
      return { leaked = names, time = type(os.time()), date = os.date("!%Y", 0), clock = type(os.clock()) }
    ]], "d.lua"))
    assert.same({}, v.leaked)
    assert.same({ "number", "1970", "number" }, { v.time, v.date, v.clock })
  end)

  it("refuses binary chunks", function()
    local bin = string.dump(function() return 1 end)
    fails(bin, "LoadError", "attempt to load a binary chunk")
  end)

  it("stops an endless loop at the CPU budget, naming the file", function()
    local err = fails("while true do end", "BudgetExceeded",
      "CPU budget exceeded %(more than 2000000 Lua instructions%)")
    assert.equal("cpu", err.budget)
  end)

  it("stops runaway memory at the budget, even in one instruction or one library call", function()
    local err = fails("local s = 'x' while true do s = s .. s end", "BudgetExceeded", "memory budget exceeded")
    assert.equal("memory", err.budget)
    fails("local t = {} for i = 1, 1e9 do t[i] = i end", "BudgetExceeded", "memory budget exceeded",
      { instructions = 1e12, memory = SMALL.memory })
    fails("return ('x'):rep(2^40)", "RuntimeError", "resulting string too large")
    fails("return string.rep('abc', 2^33, ',')", "RuntimeError", "resulting string too large")
    -- the allocator is the process's own again
    local t = {}
    for i = 1, 100000 do t[i] = i end
    assert.equal(100000, #t)
  end)

  it("bounds library calls that loop in C without the hook seeing them", function()
    fails("return ('a'):rep(20000):find(('.-'):rep(5) .. 'b')", "RuntimeError", "too costly")
    fails("return string.match(('a'):rep(5000), '(a*)(a*)(a*)b')", "RuntimeError", "too costly")
    fails("return table.move({}, 1, 2^50, 1)", "RuntimeError", "too many elements")
    assert.equal("", sandbox.run("return (''):rep(2^60)", "d.lua", SMALL))
    -- ordinary pattern use still works
    assert.same({ "a-b", 1 }, sandbox.run("return { ('a b'):gsub('%s+', '-') }", "d.lua", SMALL))
    assert.equal("b", sandbox.run("return ('[a]b'):match('^%[[^]]*%](.)$')", "d.lua", SMALL))
  end)

  it("reports syntax and runtime errors with the file name", function()
    fails("return {", "LoadError", "^data%.lua:1:")
    fails("error('boom')", "RuntimeError", "^data%.lua:1: boom")
    fails("local x = nil; return x.y", "RuntimeError", "^data%.lua:1:")
  end)

  it("leaves the caller's debug hook in place", function()
    local calls = 0
    local function hook() calls = calls + 1 end
    debug.sethook(hook, "", 1000)
    fails("while true do end", "BudgetExceeded")
    local h = debug.gethook()
    debug.sethook()
    assert.equal(hook, h)
  end)

  it("runs the bundled examples", function()
    for _, name in ipairs { "queue.lua", "broken.lua", "events.lua" } do
      local path = fixtures.repo .. "/examples/" .. name
      local v, err = sandbox.run_file(path)
      assert.is_nil(err, name)
      assert.equal("table", type(v), name)
    end
  end)
end)

describe("batch job files in the sandbox", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  it("cannot patch the runner's string.format into the worker start-up", function()
    -- before the fix the job file got the real `string`: its format wrote Lua into the
    -- worker boot line, which then ran os.execute as the invoking user
    local marker = dir .. "/pwned"
    local jf = dir .. "/jobs.lua"
    files.write(jf, ([[
      local real = string.format
      string.format = function(fmt, ...)
        if fmt:find("package.path", 1, true) then
          return "os.execute('touch %s') " .. real(fmt, ...)
        end
        return real(fmt, ...)
      end
      return { jobs = { { kind = "verify", input = %q } } }
    ]]):format(marker, files.abs(fixtures.path("snapshot", "valid_01_tasks.snap"))))
    local r = run.cli { "batch", jf, "-j", "1", "-q", "--report", dir .. "/r.json" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.is_nil(io.open(marker), "the job file ran a command")
  end)

  it("stops a job file that never ends", function()
    local jf = dir .. "/loop.lua"
    files.write(jf, "while true do end\n")
    local jobs, err = jobfile.load(jf)
    assert.is_nil(jobs)
    assert.matches("loop%.lua: CPU budget exceeded", err)
  end)
end)
