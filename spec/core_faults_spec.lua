-- Fault injection (spec/support/faultshim.c via LD_PRELOAD, one child per case):
-- every syscall site of the AtomicWriter and FramedLog fails in turn and must give a
-- clear error, keep the old target byte-identical and leave no temp file behind.
-- Plus a kill -9 loop during large atomic replaces.
local core = require "actionqueue.storage.core"
local fault = require "support.fault"

local slow = os.getenv("AQS_UNDER_VALGRIND") == nil

local files = require "support.files"
local slurp, put = files.read, files.write

local OLD = core.frame_encode(4, "old snapshot")
local NEW_PAYLOAD = string.rep("new-", 5000)
local NEW = core.frame_encode(4, NEW_PAYLOAD)

-- The child replaces DIR/target and prints one line: OK | ERR <msg> <ENAME> [replaced].
-- It exits without closing the Lua state, so no __gc can tidy up behind the writer.
local function replace_script(dir, extra)
  return ([[
local c = require "actionqueue.storage.core"
local function out(ok, msg, name, rep)
  local err = "ERR " .. tostring(msg) .. " " .. tostring(name) .. (rep and (" " .. rep) or "")
  io.write(ok and "OK" or err, "\n")
  io.stdout:flush()
  os.exit(0, false)
end
local w, m, n = c.atomic_writer(%q)
if not w then out(nil, m, n) end
%s
local ok
ok, m, n = w:begin_frame(4)
if not ok then out(nil, m, n) end
for i = 1, 4 do
  ok, m, n = w:write(string.rep("new-", 1250))
  if not ok then out(nil, m, n) end
end
ok, m, n = w:finish_frame()
if not ok then out(nil, m, n) end
out(w:close())
]]):format(dir .. "/target", extra or "")
end

describe("fault injection", function()
  if not fault.available() then
    pending("build/faultshim.so not built (make test-support)")
    return
  end
  local dir
  before_each(function()
    dir = fault.tmpdir("fault")
    put(dir .. "/target", OLD)
  end)
  after_each(function() fault.rmdir(dir) end)

  it("the baseline replace succeeds and the shim counts its calls", function()
    local counts = fault.counts(replace_script(dir), { AQS_FAULT_PATH = dir })
    assert.equal(NEW, slurp(dir .. "/target"))
    assert.equal(3, counts.open)        -- the target (its lock), temp file, the directory
    assert.equal(2, counts.fsync)       -- temp file, then the directory
    assert.equal(1, counts.rename)
    assert.equal(3, counts.close)       -- temp file, the directory, the target's lock
    assert.equal(6, counts.pwrite)      -- placeholder, 4 chunks, header
  end)

  -- Builds every (function, call index, action) case from the baseline counts.
  local function cases()
    local counts = fault.counts(replace_script(dir), { AQS_FAULT_PATH = dir })
    local list = {}
    for _, fn in ipairs({ "open", "pwrite", "fsync", "close", "rename" }) do
      for i = 1, counts[fn] do
        list[#list + 1] = { fn, i, "EIO", "Input/output error" }
        list[#list + 1] = { fn, i, "ENOSPC", "No space left on device" }
        list[#list + 1] = { fn, i .. "+", "EIO", "Input/output error" }
      end
    end
    return list, counts
  end

  it("every call site reports a clear error; old target intact or replaced, never a temp left", function()
    local list, counts = cases()
    assert.is_true(#list >= 30)
    for _, c in ipairs(list) do
      put(dir .. "/target", OLD)
      local spec = ("%s:%s:%s"):format(c[1], c[2], c[3])
      local out = fault.run(replace_script(dir), { AQS_FAULT = spec, AQS_FAULT_PATH = dir })
      local line = out:match("^[^\n]*")
      local idx = tonumber((tostring(c[2]):gsub("%+", "")))
      -- The last open/fsync is the directory's, and every close but the temp file's comes
      -- after the rename (the directory's, the target lock's): the rename already happened.
      local after_rename = (c[1] == "open" or c[1] == "fsync") and idx == counts[c[1]]
        or c[1] == "close" and idx >= 2
      assert.matches("^ERR ", line, spec)
      assert.is_truthy(line:find(c[4], 1, true), spec .. ": " .. line)
      assert.is_truthy(line:find(" " .. c[3], 1, true), spec .. ": " .. line)
      if after_rename then
        assert.matches(" replaced$", line, spec)
        assert.equal(NEW, slurp(dir .. "/target"), spec)
      else
        assert.is_nil(line:find("replaced", 1, true), spec)
        assert.equal(OLD, slurp(dir .. "/target"), spec)
      end
      assert.same({ "target" }, fault.ls(dir), spec)
    end
  end)

  it("short writes are completed by the write loop", function()
    local out = fault.run(replace_script(dir), { AQS_FAULT = "pwrite:1+:short", AQS_FAULT_PATH = dir })
    assert.equal("OK\n", out)
    assert.equal(NEW, slurp(dir .. "/target"))
    assert.same({ "target" }, fault.ls(dir))
  end)

  it("a failed fsync is final: flush fails, close repeats the error and never retries", function()
    local tmp = os.tmpname()
    local extra = [[
local r1, e1, n1 = w:flush()
io.write("flush ", tostring(r1), " ", tostring(e1), " ", tostring(n1), "\n")
out(w:close())]]
    local out = fault.run(replace_script(dir, extra),
      { AQS_FAULT = "fsync:1:EIO", AQS_FAULT_PATH = dir, AQS_FAULT_COUNTS = tmp })
    assert.matches("^flush nil fsync [^\n]*: Input/output error EIO\n"
      .. "ERR fsync [^\n]*Input/output error EIO\n$", out)
    assert.matches("fsync 1\n", slurp(tmp))   -- exactly one fsync attempted
    os.remove(tmp)
    assert.equal(OLD, slurp(dir .. "/target"))
    assert.same({ "target" }, fault.ls(dir))
  end)

  it("unlink failures while cleaning up do not mask the original error", function()
    local out = fault.run(replace_script(dir),
      { AQS_FAULT = "fsync:1:EIO,unlink:1+:EIO", AQS_FAULT_PATH = dir })
    assert.matches("^ERR fsync .*Input/output error EIO\n$", out)
    assert.equal(OLD, slurp(dir .. "/target"))
  end)

  local function log_script(extra)
    return ([[
local c = require "actionqueue.storage.core"
local log = assert(c.log_open(%q))
local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  print(table.concat(t, " "))
end
%s
]]):format(dir .. "/wal", extra)
  end

  it("a failed append is rolled back; the log stays usable", function()
    local rec = core.frame_encode(5, "abc")
    put(dir .. "/wal", rec)
    local out = fault.run(log_script([[
show(log:append(c.frame_encode(5, "defg")))
show(log:size())
show(log:append(c.frame_encode(5, "hij")))
show(log:sync())]]), { AQS_FAULT = "pwrite:1:short,pwrite:2:ENOSPC", AQS_FAULT_PATH = dir })
    assert.equal(table.concat({
      "nil append " .. dir .. "/wal: No space left on device ENOSPC",
      "15", "15", "true", "" }, "\n"), out)
    assert.equal(rec .. core.frame_encode(5, "hij"), slurp(dir .. "/wal"))
  end)

  it("a failed rollback poisons the log for good", function()
    local rec = core.frame_encode(5, "abc")
    put(dir .. "/wal", rec)
    local out = fault.run(log_script([[
show(log:append(c.frame_encode(5, "defg")))
show(log:append(c.frame_encode(5, "hij")))
show(log:sync())
print(log)]]), { AQS_FAULT = "pwrite:1:short,pwrite:2:EIO,ftruncate:1:EIO", AQS_FAULT_PATH = dir })
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(4, #lines, out)
    for i = 1, 3 do
      assert.matches("^nil log .*/wal is poisoned after a failed rollback: append .*Input/output error EIO$", lines[i])
    end
    assert.matches("poisoned", lines[4])
  end)

  it("a failed fdatasync is reported and never retried into a success", function()
    local out = fault.run(log_script([[
show(log:append(c.frame_encode(5, "abc")))
show(log:sync())
show(log:sync())
show(log:truncate(0))]]), { AQS_FAULT = "fdatasync:1:EIO", AQS_FAULT_PATH = dir })
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("0", lines[1])
    assert.equal("nil fdatasync " .. dir .. "/wal: Input/output error EIO", lines[2])
    assert.matches("^nil log .* poisoned", lines[3])
    assert.matches("^nil log .* poisoned", lines[4])
  end)

  it("truncate reports ftruncate and fsync failures", function()
    put(dir .. "/wal", core.frame_encode(5, "abc"))
    for _, c in ipairs({ { "ftruncate:1:EIO", "ftruncate" }, { "fsync:1:EROFS", "fsync" } }) do
      local out = fault.run(log_script("show(log:truncate(0))"), { AQS_FAULT = c[1], AQS_FAULT_PATH = dir })
      assert.matches("^nil " .. c[2] .. " " .. dir:gsub("%p", "%%%0") .. "/wal: ", out)
    end
  end)

  it("open, close and read failures surface with errno names", function()
    local out = fault.run(log_script("show(log:close())"), { AQS_FAULT = "close:1:EIO", AQS_FAULT_PATH = dir })
    assert.equal("nil close " .. dir .. "/wal: Input/output error EIO\n", out)
    out = fault.run([[local c = require "actionqueue.storage.core"
      print(c.log_open(]] .. ("%q"):format(dir .. "/wal") .. [[))]],
      { AQS_FAULT = "open:1:EACCES", AQS_FAULT_PATH = dir })
    assert.matches("^nil\topen .*/wal: Permission denied\tEACCES\n$", out)
    put(dir .. "/snap", OLD)
    out = fault.run([[local c = require "actionqueue.storage.core"
      local r = c.frame_read(]] .. ("%q"):format(dir .. "/snap") .. [[)
      print(r.status, r.offset, r.message, r.errno)
      for o in c.frames(]] .. ("%q"):format(dir .. "/snap") .. [[) do print(o.status, o.message) end]],
      { AQS_FAULT = "read:1:EIO,pread:1:EIO", AQS_FAULT_PATH = dir })
    assert.equal("io_error\t0\tInput/output error (os error 5)\tEIO\nio_error\tInput/output error (os error 5)\n", out)
  end)
end)

describe("kill -9 during atomic replaces", function()
  if not fault.available() then
    it("needs the fault shim", function() pending("build/faultshim.so not built (make test-support)") end)
    return
  end
  local dir
  before_each(function() dir = fault.tmpdir("kill") end)
  after_each(function() fault.rmdir(dir) end)

  it("leaves the target exactly the old or the new file", function()
    local size = 4 * 1024 * 1024
    local A = core.frame_encode(4, string.rep("A", size))
    local B = core.frame_encode(4, string.rep("B", size))
    put(dir .. "/target", A)
    -- The child flips the target between A and B as fast as it can.
    local child = ([[
package.cpath = %q
local c = require "actionqueue.storage.core"
local a, b = string.rep("A", %d), string.rep("B", %d)
local i = math.random(0, 1)   -- Lua 5.4 seeds randomly: either version may come first
while true do
  i = i + 1
  local w = assert(c.atomic_writer(%q))
  w:begin_frame(4)
  local p = (i %% 2 == 0) and a or b
  for k = 1, #p, 1048576 do assert(w:write(p:sub(k, k + 1048575))) end
  w:finish_frame()
  assert(w:close())
  local f = io.open("progress", "a")   -- tells the parent a replace has completed
  f:write("x\n")
  f:close()
end]]):format(fault.cpath(), size, size, dir .. "/target")
    put(dir .. "/child.lua", child)
    local iterations = slow and 30 or 3
    local seen = { [A] = 0, [B] = 0 }
    for i = 1, iterations do
      -- Kill at a varying moment after the first completed replace, so the kill
      -- lands in the middle of the writes, fsyncs and renames that follow.
      local delay = (i % 8) * 0.01
      local cmd = ("cd %s && rm -f progress && { %s child.lua & pid=$!; n=0; "
        .. "while [ ! -s progress ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; "
        .. "sleep %.2f; kill -9 $pid; wait $pid; } 2>/dev/null"):format(fault.shq(dir), fault.lua, delay)
      os.execute(cmd)
      local got = slurp(dir .. "/target")
      assert.is_truthy(got == A or got == B, "iteration " .. i .. ": target is neither old nor new")
      seen[got] = seen[got] + 1
      assert.equal("ok", core.frame_read(dir .. "/target").status)
    end
    -- A temp file may survive a kill -9 (no cleanup can run): one per killed writer, each
    -- under a name of its own, which a later writer sweeps once it is stale (docs/safety.md).
    local left = 0
    for _, name in ipairs(fault.ls(dir)) do
      local temp = name:match("^target%.tmp%.%d+%.%x+$")
      assert.is_truthy(temp or name == "target" or name == "child.lua" or name == "progress", name)
      if temp then left = left + 1 end
    end
    assert.is_true(left <= iterations)
    if slow then assert.is_true(seen[A] > 0 and seen[B] > 0, "both versions observed") end
  end)
end)
