-- C core: AtomicWriter (snapshot-format.md section 2) without fault injection.
local core = require "actionqueue.storage.core"
local fault = require "support.fault"

local files = require "support.files"
local slurp, put = files.read, files.write

describe("core.atomic_writer", function()
  local dir
  before_each(function() dir = fault.tmpdir("aw") end)
  after_each(function() fault.rmdir(dir) end)

  it("creates PATH.tmp.<pid>.<16 hex> (appended), leaves the target alone until close", function()
    put(dir .. "/x.tmp", "old")
    local w = assert(core.atomic_writer(dir .. "/x.tmp"))
    local pid = tostring(core.proc_info().pid)
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/x%.tmp%.tmp%." .. pid .. "%.%x+$", w:temp_path())
    assert.equal(16, #w:temp_path():match("%.(%x+)$"))
    assert.equal(dir .. "/x.tmp", w:path())
    assert.equal("", slurp(w:temp_path()))
    assert.equal("old", slurp(dir .. "/x.tmp"))
    assert.matches("^AtomicWriter%(.*x%.tmp, open%)$", tostring(w))
    w:abort()
    assert.matches("aborted%)$", tostring(w))
  end)

  it("streams a frame, writes the header last and replaces the target", function()
    local target = dir .. "/snap.bin"
    put(target, "old contents")
    put(target .. ".tmp", string.rep("stale", 100))   -- the engine's fixed temp: not ours, untouched
    local w = assert(core.atomic_writer(target))
    assert.equal(w, w:begin_frame(4))
    assert.equal(w, w:write("{\"a\":"))
    assert.equal(w, w:write(""))
    assert.equal(w, w:write("1}"))
    local len, crc = w:finish_frame()
    assert.equal(7, len)
    assert.equal(core.crc32('{"a":1}'), crc)
    assert.is_true(w:close())
    assert.equal(core.frame_encode(4, '{"a":1}'), slurp(target))
    assert.is_nil(slurp(w:temp_path()))
    assert.equal(string.rep("stale", 100), slurp(target .. ".tmp"))
    assert.matches("closed%)$", tostring(w))
  end)

  it("write_frame is begin/write/finish in one call", function()
    local w = assert(core.atomic_writer(dir .. "/t"))
    local len, crc = w:write_frame(7, "payload")
    assert.equal(7, len)
    assert.equal(core.crc32("payload"), crc)
    assert.is_true(w:flush() == w)
    assert.is_true(w:close())
    assert.equal(core.frame_encode(7, "payload"), slurp(dir .. "/t"))
  end)

  it("writes an empty payload", function()
    local w = assert(core.atomic_writer(dir .. "/e"))
    w:begin_frame(4)
    assert.same({ 0, 0 }, { w:finish_frame() })
    assert.is_true(w:close())
    assert.equal(core.frame_header(4, 0, 0), slurp(dir .. "/e"))
  end)

  it("works with a bare relative file name (parent '.')", function()
    local old = assert(io.popen("pwd")):read("l")
    local script = ("local c = require 'actionqueue.storage.core'; local w = assert(c.atomic_writer('rel.bin'));"
      .. "w:write_frame(4, 'r'); print(w:close())")
    local out = fault.run("assert(require'lfs'.chdir(" .. string.format("%q", dir) .. ")); " .. script, nil, true)
    assert.equal("true\n", out)
    assert.equal(core.frame_encode(4, "r"), slurp(dir .. "/rel.bin"))
    assert.equal(old, assert(io.popen("pwd")):read("l"))
  end)

  it("works for a file directly under / (parent '/') path computation", function()
    -- no write access needed to check the error: a missing top-level dir
    local w, msg, name = core.atomic_writer("/aqs-no-such-dir-xyz/f")
    assert.is_nil(w)
    assert.matches("^open temp /aqs%-no%-such%-dir%-xyz/f%.tmp%.%d+%.%x+: No such file or directory$", msg)
    assert.equal("ENOENT", name)
  end)

  it("rejects paths without a file name", function()
    for _, p in ipairs({ "", "/", dir .. "/", ".", "..", dir .. "/.." }) do
      local w, msg, name = core.atomic_writer(p)
      assert.is_nil(w)
      assert.matches("has no filename component", msg)
      assert.equal("EINVAL", name)
    end
    assert.has_error(function() core.atomic_writer("a\0b") end)
    assert.has_error(function() core.atomic_writer() end)
  end)

  it("reports an unwritable directory with the io.open convention", function()
    put(dir .. "/file", "")
    local w, msg, name = core.atomic_writer(dir .. "/file/x")
    assert.is_nil(w)
    assert.equal("open temp " .. dir .. "/file/x.tmp.", msg:sub(1, #dir + 22))
    assert.matches("%.tmp%.%d+%.%x+: Not a directory$", msg)
    assert.equal("ENOTDIR", name)
  end)

  it("gives the errno details for the reference's texts (constructor info, last_error)", function()
    put(dir .. "/file", "")
    local w, _, _, info = core.atomic_writer(dir .. "/file/x")
    assert.is_nil(w)
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/file/x%.tmp%.%d+%.%x+$", info.path)
    info.path = nil
    assert.same({ op = "open temp", errno = 20, ename = "ENOTDIR", replaced = false,
                  os_message = "Not a directory (os error 20)" }, info)
    info = select(4, core.atomic_writer("/"))
    assert.equal("path", info.op)
    w = assert(core.atomic_writer(dir .. "/t"))
    assert.is_nil(w:last_error())
    assert(w:write_frame(4, "x"))
    assert(os.execute("mkdir " .. dir .. "/t"))   -- the rename target is a directory
    local ok, msg, name = w:close()
    assert.is_nil(ok)
    assert.equal("EISDIR", name)
    assert.truthy(msg:find("^rename "))
    assert.same({ op = "rename", errno = 21, ename = "EISDIR", replaced = false, path = dir .. "/t",
                  os_message = "Is a directory (os error 21)" }, w:last_error())
    w:abort()
  end)

  it("abort removes the temp file and keeps the old target", function()
    put(dir .. "/t", "old")
    local w = assert(core.atomic_writer(dir .. "/t"))
    w:write_frame(4, "new")
    assert.is_true(w:abort())
    assert.is_true(w:abort())   -- idempotent
    assert.same({ "t" }, fault.ls(dir))
    assert.equal("old", slurp(dir .. "/t"))
  end)

  it("__close and __gc remove the temp file when not closed", function()
    put(dir .. "/t", "old")
    do
      local w <close> = assert(core.atomic_writer(dir .. "/t"))
      w:write_frame(4, "new")
    end
    assert.same({ "t" }, fault.ls(dir))
    local w = assert(core.atomic_writer(dir .. "/t"))
    w:write_frame(4, "new")
    w = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.same({ "t" }, fault.ls(dir))
    assert.equal("old", slurp(dir .. "/t"))
    -- __close after a successful close does nothing
    do
      local w2 <close> = assert(core.atomic_writer(dir .. "/t"))
      w2:write_frame(4, "new")
      assert.is_true(w2:close())
    end
    assert.equal(core.frame_encode(4, "new"), slurp(dir .. "/t"))
  end)

  it("writes plain bytes with frame = false, and never replaces with replace = false", function()
    local w = assert(core.atomic_writer(dir .. "/p", { frame = false }))
    assert.has_error(function() w:begin_frame(4) end)
    assert(w:write("ab"))
    assert(w:write("cd"))
    assert.is_true(w:close())
    assert.equal("abcd", slurp(dir .. "/p"))
    w = assert(core.atomic_writer(dir .. "/p", { frame = false, replace = false }))
    assert(w:write("new"))
    local ok, msg, name = w:close()
    assert.is_nil(ok)
    assert.equal("EEXIST", name)
    assert.equal("rename " .. dir .. "/p: File exists", msg)
    assert.equal("abcd", slurp(dir .. "/p"))
    assert.same({ "p" }, fault.ls(dir))
    w = assert(core.atomic_writer(dir .. "/q", { frame = false, replace = false }))
    assert(w:write("q"))
    assert.is_true(w:close())
    assert.equal("q", slurp(dir .. "/q"))
  end)

  it("raises on misuse", function()
    local w = assert(core.atomic_writer(dir .. "/m"))
    assert.has_error(function() w:write("x") end)            -- outside a frame
    assert.has_error(function() w:finish_frame() end)
    assert.has_error(function() w:begin_frame(-1) end)
    w:begin_frame(4)
    assert.has_error(function() w:begin_frame(4) end)
    assert.has_error(function() w:close() end)                -- unfinished frame
    assert.has_error(function() w:write(nil) end)
    w:finish_frame()
    assert.has_error(function() w:begin_frame(4) end)         -- one frame per file
    assert.is_true(w:close())
    assert.has_error(function() w:write_frame(4, "x") end)    -- closed
    assert.has_error(function() w:flush() end)
    assert.has_error(function() w:close() end)
    assert.has_error(function() w.close(io.stdout) end)       -- wrong self
  end)

  it("streams a large payload without holding it twice", function()
    local chunk = string.rep("0123456789abcdef", 65536)     -- 1 MiB
    local w = assert(core.atomic_writer(dir .. "/big"))
    w:begin_frame(4)
    local crc = 0
    for _ = 1, 16 do w:write(chunk); crc = core.crc32(chunk, crc) end
    local len, c = w:finish_frame()
    assert.equal(16 * #chunk, len)
    assert.equal(crc, c)
    assert.is_true(w:close())
    local r = core.frame_read(dir .. "/big")
    assert.equal("ok", r.status)
    assert.equal(16 * #chunk, r.length)
  end)
end)
