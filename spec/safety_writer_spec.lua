-- Issue 13, the writer's part: every file the package writes goes through one protocol
-- (docs/safety.md). Defects covered here, each by a spec that failed before its fix:
--   1  two writers of one target shared TARGET.tmp and tore the target;
--   2  a symlink planted at TARGET.tmp (or REPORT.tmp, or a proc_open path) was followed;
--   8  replacing a file reset its mode and owner;
--  10  check on a FIFO hung (non-regular inputs are refused at once);
--  Errors: every I/O error names the file and the step (err.path, err.op), the CLI shows
--  them after the engine's text.
local core = require "actionqueue.storage.core"
local fsutil = require "actionqueue.storage.fsutil"
local snapshot = require "actionqueue.storage.snapshot"
local files = require "support.files"
local fixtures = require "support.fixtures"
local run = require "support.aqstore_run"
local lfs = require "lfs"

local q = files.q
local SMALL = files.abs(fixtures.path("snapshot", "valid_01_tasks.snap"))

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok
end

local function mode_of(path)
  return lfs.attributes(path, "permissions")
end

-- Every name in `dir` that looks like a temp file of ours or the engine's.
local function temps(dir)
  local out = {}
  for _, name in ipairs(fsutil.list_dir(dir)) do
    if name:find("%.tmp") then out[#out + 1] = name end
  end
  return out
end

local function whole(path)
  local r = core.frame_read(path)
  return r.status == "ok" and r.payload or nil, r.status
end

describe("safety: the atomic writer", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  it("defect 1: a writer interleaved with another one never tears the target", function()
    -- a new target (nothing to lock yet): both complete, the later rename wins
    local target = dir .. "/snapshot.bin"
    local a_payload, b_payload = string.rep("A", 300000), string.rep("b", 200000)
    local wa = assert(core.atomic_writer(target))
    assert(wa:begin_frame(4))
    assert(wa:write(a_payload:sub(1, 100000)))
    -- B runs start to finish while A is slowed half way
    local wb = assert(core.atomic_writer(target))
    assert(wb:write_frame(4, b_payload))
    assert(wb:close())
    assert.equal(b_payload, (whole(target)))
    local ok_w = wa:write(a_payload:sub(100001))
    local ok_f = ok_w and wa:finish_frame()
    local ok_c = ok_f and wa:close()
    -- A either completes (its output replaces B's) or reports a failure; the target is one
    -- writer's complete output either way
    local got = whole(target)
    if ok_c then assert.equal(a_payload, got) else assert.equal(b_payload, got) end
    assert.same({}, temps(dir))
  end)

  it("closing-note gap 5: a second writer of an existing target is refused while the first writes", function()
    local target = dir .. "/snapshot.bin"
    files.copy(SMALL, target)
    local a_payload = string.rep("A", 300000)
    local wa = assert(core.atomic_writer(target))
    assert(wa:begin_frame(4))
    assert(wa:write(a_payload:sub(1, 100000)))
    local wb, msg, ename, info = core.atomic_writer(target)
    assert.is_nil(wb)
    assert.equal("lock " .. target .. ": another process is writing it", msg)
    assert.equal("EWOULDBLOCK", ename)
    assert.same({ "lock", target }, { info.op, info.path })
    assert.matches("another process is writing", info.os_message, 1, true)
    assert(wa:write(a_payload:sub(100001)))
    assert(wa:finish_frame())
    assert(wa:close())
    assert.equal(a_payload, (whole(target)))
    -- released with the replace; and a writer dropped without close() is collected first
    local wc = assert(core.atomic_writer(target))
    assert(wc:write_frame(4, "c"))
    wc = nil -- luacheck: ignore
    local wd = assert(core.atomic_writer(target))
    assert(wd:write_frame(4, "d"))
    assert(wd:close())
    assert.equal("d", (whole(target)))
    assert.same({}, temps(dir))
  end)

  it("defect 1: a writer whose temp file was removed or replaced reports failure", function()
    local target = dir .. "/t.snap"
    files.write(target, core.frame_encode(4, "old"))
    -- removed
    local w = assert(core.atomic_writer(target))
    assert(w:write_frame(4, "new"))
    assert(os.remove(w:temp_path()))
    local ok, msg = w:close()
    assert.is_nil(ok)
    assert.truthy(msg:find(w:temp_path(), 1, true), msg)
    assert.equal("old", (whole(target)))
    -- replaced by somebody else's file: neither renamed into place nor removed by us
    w = assert(core.atomic_writer(target))
    assert(w:write_frame(4, "new"))
    local tmp = w:temp_path()
    assert(os.remove(tmp))
    files.write(tmp, core.frame_encode(4, "intruder"))
    ok = w:close()
    assert.is_nil(ok)
    assert.equal("verify temp", w:last_error().op)
    assert.equal("old", (whole(target)))
    assert.equal("intruder", (whole(tmp)))
    os.remove(tmp)
  end)

  it("defect 1: two temp files of one target never share a name; a fresh writer creates its own", function()
    local target = dir .. "/x"
    local w1 = assert(core.atomic_writer(target))
    local w2 = assert(core.atomic_writer(target))
    assert.not_equal(w1:temp_path(), w2:temp_path())
    assert.equal(dir, w1:temp_path():match("^(.*)/"))
    w1:abort(); w2:abort()
    assert.same({}, temps(dir))
  end)

  it("defect 1: temps left by killed writers are swept, and never block the next writer", function()
    local target = dir .. "/s.snap"
    -- a dead writer's temp (pid 2^22 + 1 is above pid_max on Linux defaults), an old one
    local dead = target .. ".tmp.4194305.0123456789abcdef"
    local old = target .. ".tmp.1.fedcba9876543210"
    files.write(dead, "partial")
    files.write(old, "partial")
    assert(lfs.touch(dead, os.time() - 3600, os.time() - 3600))
    assert(lfs.touch(old, os.time() - 3 * 86400, os.time() - 3 * 86400))
    -- a live writer's temp (ours, fresh) and an unrelated file stay
    local live = assert(core.atomic_writer(target))
    files.write(dir .. "/s.snap.tmp.notours", "keep")
    -- the engine's own fixed temp is never touched either
    files.write(target .. ".tmp", "engine")
    local w = assert(core.atomic_writer(target))
    assert(w:write_frame(4, "fresh"))
    assert(w:close())
    assert.equal("fresh", (whole(target)))
    assert.is_nil(lfs.attributes(dead))
    assert.is_nil(lfs.attributes(old))
    assert.is_not_nil(lfs.attributes(live:temp_path()))
    assert.equal("keep", files.read(dir .. "/s.snap.tmp.notours"))
    assert.equal("engine", files.read(target .. ".tmp"))
    live:abort()
  end)

  it("defect 1: the temp of a really killed writer is swept once it is stale", function()
    local target = dir .. "/k.snap"
    -- the child starts a writer, writes half a frame and dies without any cleanup
    local script = dir .. "/die.lua"
    files.write(script, [[
      local w = assert(require("actionqueue.storage.core").atomic_writer(arg[1]))
      w:begin_frame(4); w:write("half")
      io.write(w:temp_path()); io.stdout:flush()
      os.exit(9, false)
    ]])
    local p = io.popen(("lua5.4 %s %s"):format(q(script), q(target)))
    local tmp = p:read("a")
    p:close()
    assert.matches("^" .. target:gsub("%p", "%%%0") .. "%.tmp%.%d+%.%x+$", tmp)
    assert.equal("file", lfs.attributes(tmp, "mode"))
    -- a fresh temp of a dead writer is kept a minute (another pid namespace may own it) ...
    local script2 = dir .. "/write.lua"
    files.write(script2, [[
      local w = assert(require("actionqueue.storage.core").atomic_writer(arg[1]))
      assert(w:write_frame(4, "whole")); assert(w:close())
    ]])
    assert(sh(("lua5.4 %s %s"):format(q(script2), q(target))))
    assert.equal("file", lfs.attributes(tmp, "mode"))
    assert.equal("whole", (whole(target)))
    -- ... and removed by the next writer once it has been idle longer
    assert(lfs.touch(tmp, os.time() - 120, os.time() - 120))
    assert(sh(("lua5.4 %s %s"):format(q(script2), q(target))))
    assert.is_nil(lfs.attributes(tmp))
    assert.same({}, temps(dir))
  end)

  it("defect 2: a symlink planted at TARGET.tmp is not followed", function()
    local victim = dir .. "/victim"
    files.write(victim, "precious")
    local out = dir .. "/out"
    assert(lfs.mkdir(out))
    local target = out .. "/snapshot.bin"
    assert(lfs.link(victim, target .. ".tmp", true))
    local snap = assert(snapshot.load(SMALL))
    assert(snapshot.write(target, snap))
    assert.equal("precious", files.read(victim))
    assert.equal("file", lfs.symlinkattributes(target, "mode"))
    assert.equal(files.read(SMALL), files.read(target))
  end)

  it("defect 2: a target that is a symlink is replaced by the new file; the link's file is untouched", function()
    local victim = dir .. "/victim"
    files.write(victim, "precious")
    local target = dir .. "/snapshot.bin"
    assert(lfs.link(victim, target, true))
    local snap = assert(snapshot.load(SMALL))
    assert(snapshot.write(target, snap))
    assert.equal("precious", files.read(victim))
    assert.equal("file", lfs.symlinkattributes(target, "mode"))
    assert.equal(files.read(SMALL), files.read(target))
  end)

  it("defect 2: fsutil.write_file_atomic never follows a planted REPORT.tmp", function()
    local victim = dir .. "/victim"
    files.write(victim, "precious")
    local report = dir .. "/report.json"
    assert(lfs.link(victim, report .. ".tmp", true))
    assert(fsutil.write_file_atomic(report, "{}\n"))
    assert.equal("precious", files.read(victim))
    assert.equal("{}\n", files.read(report))
    assert.equal("link", lfs.symlinkattributes(report .. ".tmp", "mode"))
  end)

  it("defect 2: core.proc_open refuses a symlink in every writing mode", function()
    local victim = dir .. "/victim"
    files.write(victim, "precious")
    local link = dir .. "/report.json.journal"
    assert(lfs.link(victim, link, true))
    for _, mode in ipairs({ "append", "truncate", "create" }) do
      local fd, msg, ename = core.proc_open(link, mode)
      assert.is_nil(fd, mode)
      assert.truthy(msg:find(link, 1, true), msg)
      assert.truthy(ename == "ELOOP" or ename == "EEXIST", mode .. " " .. tostring(ename))
    end
    assert.equal("precious", files.read(victim))
  end)

  it("proc_open 'create' is exclusive", function()
    local p = dir .. "/j"
    local fd = assert(core.proc_open(p, "create"))
    core.proc_close(fd)
    local none, _, ename = core.proc_open(p, "create")
    assert.is_nil(none)
    assert.equal("EEXIST", ename)
  end)

  it("fsutil.create_exclusive writes a new file whole or not at all, never over an existing one", function()
    local p = dir .. "/wal.cut-12"
    assert(fsutil.create_exclusive(p, "cut bytes"))
    assert.equal("cut bytes", files.read(p))
    local ok, err = fsutil.create_exclusive(p, "other")
    assert.is_nil(ok)
    assert.truthy(tostring(err):find(p, 1, true), tostring(err))
    assert.equal("cut bytes", files.read(p))
    local victim = dir .. "/victim"
    files.write(victim, "precious")
    assert(lfs.link(victim, dir .. "/linked", true))
    assert.is_nil((fsutil.create_exclusive(dir .. "/linked", "x")))
    assert.equal("precious", files.read(victim))
    assert.same({}, temps(dir))
  end)

  it("defect 8: replacing a file keeps its mode", function()
    local target = dir .. "/snapshot.bin"
    files.copy(SMALL, target)
    assert(sh("chmod 600 " .. q(target)))
    local snap = assert(snapshot.load(SMALL))
    assert(snapshot.write(target, snap))
    assert.equal("rw-------", mode_of(target))
    assert(sh("chmod 640 " .. q(target)))
    assert(fsutil.write_file_atomic(target, "x"))
    assert.equal("rw-r-----", mode_of(target))
  end)

  it("defect 8: replacing a file keeps its owner where permitted (root)", function()
    if lfs.attributes(".", "uid") ~= 0 and os.getenv("USER") ~= "root" then
      local p = io.popen("id -u")
      local uid = p:read("l")
      p:close()
      if uid ~= "0" then return pending("needs root to chown") end
    end
    local target = dir .. "/snapshot.bin"
    files.copy(SMALL, target)
    assert(sh("chown 4242:4343 " .. q(target)))
    local snap = assert(snapshot.load(SMALL))
    assert(snapshot.write(target, snap))
    assert.equal(4242, lfs.attributes(target, "uid"))
    assert.equal(4343, lfs.attributes(target, "gid"))
  end)

  it("defect 8: a new file follows the umask, as the engine's", function()
    local script = dir .. "/w.lua"
    files.write(script, ([[
      local snapshot = require "actionqueue.storage.snapshot"
      assert(snapshot.write(arg[1], assert(snapshot.load(%q))))
    ]]):format(SMALL))
    assert(sh(("umask 077 && lua5.4 %s %s"):format(q(script), q(dir .. "/a"))))
    assert(sh(("umask 022 && lua5.4 %s %s"):format(q(script), q(dir .. "/b"))))
    assert.equal("rw-------", mode_of(dir .. "/a"))
    assert.equal("rw-r--r--", mode_of(dir .. "/b"))
  end)

  it("a temp file is private while it is written over a 0600 file", function()
    local target = dir .. "/snapshot.bin"
    files.copy(SMALL, target)
    assert(sh("chmod 600 " .. q(target)))
    local w = assert(core.atomic_writer(target))
    assert.equal("rw-------", mode_of(w:temp_path()))
    w:abort()
  end)
end)

describe("safety: errors name the file and the step", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  it("snapshot.write keeps the engine's text and adds err.path / err.op", function()
    local snap = assert(snapshot.load(SMALL))
    local ok, err = snapshot.write(dir .. "/missing/x", snap)
    assert.is_nil(ok)
    assert.equal("I/O error when opening snapshot file: No such file or directory (os error 2)", err.message)
    assert.equal("open temp", err.op)
    assert.truthy(err.path:find(dir .. "/missing/x.tmp", 1, true), err.path)
    assert.equal(dir .. "/missing/x", err.target)
  end)

  it("aqstore rewrite to a missing directory says it is the OUTPUT directory", function()
    local r = run.cli({ "rewrite", SMALL, "/nonexistent-aqs-dir/x" })
    assert.equal(1, r.code)
    -- stdout keeps the engine's line; stderr says where
    assert.equal("ERR I/O error when opening snapshot file: No such file or directory (os error 2)\n", r.out)
    assert.truthy(r.err:find("output /nonexistent-aqs-dir/x", 1, true), r.err)
    assert.truthy(r.err:find("the output directory /nonexistent-aqs-dir does not exist", 1, true), r.err)
    assert.truthy(r.err:find("step: open temp, file: /nonexistent-aqs-dir/x.tmp.", 1, true), r.err)
  end)
end)

describe("safety: the CLI shows the step and the file of a write error", function()
  it("aqstore build: text on stderr and the JSON error document", function()
    local queue = files.abs(fixtures.repo .. "/examples/queue.lua")
    local r = run.cli({ "build", queue, "/nonexistent-aqs-dir/x.snap" })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("; step: open temp, file: /nonexistent-aqs-dir/x.snap.tmp.", 1, true), r.err)
    assert.truthy(r.err:find("the output directory /nonexistent-aqs-dir does not exist", 1, true), r.err)
    r = run.cli({ "build", "--json", queue, "/nonexistent-aqs-dir/x.snap" })
    local doc = require("cjson").decode(r.out)
    assert.equal("open temp", doc.error.op)
    assert.matches("^/nonexistent%-aqs%-dir/x%.snap%.tmp%.%d+%.%x+$", doc.error.path)
  end)
end)

describe("safety: non-regular inputs are refused at once (defect 10)", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  -- `timeout` turns a hang into exit 124 instead of a stuck suite
  local function check(path)
    return run.cli({ "check", path }, { env = "timeout 20 " })
  end

  it("a FIFO", function()
    local fifo = dir .. "/snapshot.bin"
    assert(sh("mkfifo " .. q(fifo)))
    local r = check(fifo)
    assert.equal(1, r.code)
    assert.truthy(r.out:match("^ERR I/O error: .*FIFO"), r.out)
  end)

  it("a FIFO reached through a symlink (a symlinked input is followed, but never blocks)", function()
    local fifo = dir .. "/fifo"
    assert(sh("mkfifo " .. q(fifo)))
    assert(lfs.link(fifo, dir .. "/snapshot.bin", true))
    local r = check(dir .. "/snapshot.bin")
    assert.equal(1, r.code)
    assert.truthy(r.out:match("^ERR I/O error: .*FIFO"), r.out)
  end)

  it("a character device", function()
    local r = check("/dev/null")
    assert.equal(1, r.code)
    assert.truthy(r.out:match("^ERR I/O error: .*device"), r.out)
  end)

  it("a directory keeps the engine's text", function()
    local r = check(dir)
    assert.equal(1, r.code)
    assert.equal("ERR I/O error: Is a directory (os error 21)\n", r.out)
  end)

  it("a socket", function()
    local sock = dir .. "/sock"
    local py = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])"
    if not sh(("env -u LD_PRELOAD python3 -c %s %s 2>/dev/null"):format(q(py), q(sock))) then
      return pending("python3 is needed to make a socket")
    end
    local r = check(sock)
    assert.equal(1, r.code)
    assert.truthy(r.out:match("^ERR I/O error: .*socket"), r.out)
  end)

  it("a symlink to a regular file is read (users pass symlinks to read)", function()
    assert(lfs.link(files.abs(SMALL), dir .. "/l.snap", true))
    local r = check(dir .. "/l.snap")
    assert.equal(0, r.code)
    assert.truthy(r.out:match("^OK "), r.out)
  end)

  -- in a child under `timeout`: before the fix these calls blocked for good
  local function child(code, ...)
    local script = dir .. "/child.lua"
    files.write(script, code)
    local args = {}
    for i, a in ipairs({ ... }) do args[i] = q(a) end
    local p = io.popen(("timeout 20 lua5.4 %s %s 2>&1"):format(q(script), table.concat(args, " ")))
    local out = p:read("a")
    local _, _, code_ = p:close()
    return out, code_
  end

  it("frame_read says which file and why in the result", function()
    local fifo = dir .. "/f"
    assert(sh("mkfifo " .. q(fifo)))
    local out, code = child([[
      local r = require("actionqueue.storage.core").frame_read(arg[1])
      print(r.status, r.op, r.path, r.message)
    ]], fifo)
    assert.equal(0, code, out)
    assert.equal("io_error\topen\t" .. fifo, out:match("^[^\t]*\t[^\t]*\t[^\t]*"))
  end)

  it("fsutil.read_file refuses a FIFO instead of blocking", function()
    local fifo = dir .. "/f"
    assert(sh("mkfifo " .. q(fifo)))
    local out, code = child([[
      local data, err = require("actionqueue.storage.fsutil").read_file(arg[1])
      print(data, err)
    ]], fifo)
    assert.equal(0, code, out)
    assert.truthy(out:find("^nil\t.*FIFO"), out)
  end)
end)
