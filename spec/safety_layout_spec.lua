-- The data dir's own components in shared use (the gaps issue 13's closing note left,
-- gaps 1 and 2; docs/wal.md "Locking" and "The data dir's own folders"):
-- * a symlink planted at `DIR/wal` or `DIR/snapshots` (folders the package itself creates
--   and uses) is never followed by a mutation: appends, repair (cut files), compaction in
--   place, `recover --bootstrap` and `datadir.init` are refused with a structured error
--   naming the link and the step, and nothing outside is created or changed. The data dir
--   path the user passes may itself be a link (their choice);
-- * a symlink (or FIFO) planted at `DIR/store.lock` no longer blocks mutations: it is
--   replaced by a regular lock file, what it pointed to is never touched, and two mutators
--   still exclude each other (the data dir's own descriptor is locked too), even when the
--   lock file is swapped for a link while one of them holds it.
-- Before the fix: the appender created `actionqueue.wal` in the link's target, repair
-- wrote its cut file there, compaction wrote `snapshot.bin` there, and every mutation of a
-- dir with a planted `store.lock` link was refused.
local files = require "support.files"
local proc = require "support.proc"
local aqstore = require "support.aqstore_run"
local codec = require "actionqueue.storage.wal.codec"
local appender = require "actionqueue.storage.wal.appender"
local datadir = require "actionqueue.storage.datadir"
local recovery = require "actionqueue.storage.recovery"
local lfs = require "lfs"

local q, write, read = files.q, files.write, files.read

local function rec(seq)
  return assert(codec.encode_record({ sequence = seq, event = { EnginePaused = { timestamp = seq } } }))
end

-- Every name under `dir` with its content (files) or kind, for "nothing changed" checks.
local function tree(dir)
  local out = {}
  local function walk(d, prefix)
    for name in lfs.dir(d) do
      if name ~= "." and name ~= ".." then
        local p = d .. "/" .. name
        local mode = lfs.symlinkattributes(p, "mode")
        if mode == "directory" then walk(p, prefix .. name .. "/")
        else out[prefix .. name] = mode == "file" and read(p) or mode end
      end
    end
  end
  walk(dir, "")
  return out
end

-- Starts `lua5.4 -e CODE` in the background; returns its pid.
local function spawn(code, out)
  local cmd = string.format("LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s >%s 2>&1 & echo $!",
    q(package.path), q(package.cpath), q(code), q(out))
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

describe("data dir layout links", function()
  local tmp, dir, elsewhere
  before_each(function()
    tmp = files.tmpdir()
    dir, elsewhere = tmp .. "/data", tmp .. "/elsewhere"
    assert(lfs.mkdir(dir))
    assert(lfs.mkdir(elsewhere))
    write(elsewhere .. "/keep.txt", "outside\n")
  end)
  after_each(function() files.rmtree(tmp) end)

  local function plant(sub)
    assert(lfs.link(elsewhere, dir .. "/" .. sub, true))
  end

  local function refused(err, sub)
    assert.is_table(err)
    assert.equal("UnsafePath", err.kind, tostring(err))
    assert.equal(dir .. "/" .. sub, err.path)
    assert.is_string(err.op)
    assert.matches(dir .. "/" .. sub .. " is a symbolic link", err.message, 1, true)
  end

  it("an appender never creates or appends to a WAL through a planted wal/ link", function()
    plant("wal")
    local a, err = appender.open(dir .. "/wal/actionqueue.wal", { sync = "none" })
    assert.is_nil(a)
    refused(err, "wal")
    assert.is_nil(lfs.attributes(elsewhere .. "/actionqueue.wal"), "no WAL created outside")
    write(elsewhere .. "/actionqueue.wal", rec(1))
    local before = tree(elsewhere)
    a, err = appender.open(dir .. "/wal/actionqueue.wal", { sync = "none" })
    assert.is_nil(a)
    refused(err, "wal")
    assert.same(before, tree(elsewhere))
    -- and the CLI says it on one line, naming the link
    local r = aqstore.cli({ "wal", "open", dir .. "/wal/actionqueue.wal" })
    assert.equal(1, r.code, r.out .. r.err)
    assert.matches(dir .. "/wal is a symbolic link", r.out .. r.err, 1, true)
    assert.same(before, tree(elsewhere))
  end)

  it("wal repair never cuts or writes a cut file through a planted wal/ link", function()
    plant("wal")
    write(elsewhere .. "/actionqueue.wal", rec(1) .. rec(2) .. "\5\0\0\0\200")
    local before = tree(elsewhere)
    local r = aqstore.cli({ "wal", "repair", dir .. "/wal/actionqueue.wal" })
    assert.equal(1, r.code, r.out .. r.err)
    assert.matches(dir .. "/wal is a symbolic link", r.out .. r.err, 1, true)
    assert.same(before, tree(elsewhere))
  end)

  it("compaction in place never writes a snapshot through a planted snapshots/ link", function()
    assert(lfs.mkdir(dir .. "/wal"))
    write(dir .. "/wal/actionqueue.wal", rec(1))
    plant("snapshots")
    local before = tree(elsewhere)
    local ok, err = recovery.compact(dir, { timestamp = 5 })
    assert.is_nil(ok)
    refused(err, "snapshots")
    assert.same(before, tree(elsewhere))
    local r = aqstore.cli({ "compact", dir, "--timestamp", "5" })
    assert.equal(1, r.code, r.out .. r.err)
    assert.matches(dir .. "/snapshots is a symbolic link", r.out .. r.err, 1, true)
    assert.same(before, tree(elsewhere))
  end)

  it("recover --bootstrap and datadir.init create nothing through a planted link", function()
    plant("wal")
    local before = tree(elsewhere)
    local p, err = datadir.init(dir)
    assert.is_nil(p)
    refused(err, "wal")
    assert.is_nil(lfs.attributes(dir .. "/snapshots"), "init refused before creating anything")
    local r = aqstore.cli({ "recover", "--bootstrap", dir })
    assert.equal(1, r.code, r.out .. r.err)
    assert.matches(dir .. "/wal is a symbolic link", r.out .. r.err, 1, true)
    assert.same(before, tree(elsewhere))
  end)

  it("a wal/ link swapped in after the layout check is caught before anything is written", function()
    -- the attacker wins the race between the check and the open: simulated by a check
    -- that passes although the link is there
    plant("wal")
    write(elsewhere .. "/actionqueue.wal", rec(1) .. "\5\0\0")   -- a torn tail, too
    local before = tree(elsewhere)
    local real = datadir.check_layout
    datadir.check_layout = function() return true end
    local a, err = appender.open(dir .. "/wal/actionqueue.wal", { sync = "none", repair = "truncate_partial" })
    local repair = require "actionqueue.storage.wal.repair"
    local r, rerr = repair.run(dir .. "/wal/actionqueue.wal")
    datadir.check_layout = real
    assert.is_nil(a)
    refused(err, "wal")
    assert.is_nil(r)
    refused(rerr, "wal")
    assert.same(before, tree(elsewhere))
  end)

  it("a data dir that is itself a link (the user's choice) works", function()
    assert(lfs.mkdir(elsewhere .. "/real"))
    assert(lfs.link(elsewhere .. "/real", tmp .. "/alias", true))
    assert(datadir.init(tmp .. "/alias"))
    local a = assert(appender.open(tmp .. "/alias/wal/actionqueue.wal", { sync = "none" }))
    assert(a:append({ sequence = 1, event = { EnginePaused = { timestamp = 1 } } }))
    assert(a:close())
    assert(recovery.compact(tmp .. "/alias", { timestamp = 5 }))
    assert.equal("file", lfs.attributes(elsewhere .. "/real/snapshots/snapshot.bin", "mode"))
  end)
end)

describe("a planted store.lock", function()
  local tmp, dir
  before_each(function()
    tmp = files.tmpdir()
    dir = tmp .. "/data"
    assert(datadir.init(dir))
    write(dir .. "/wal/actionqueue.wal", rec(1))
  end)
  after_each(function() files.rmtree(tmp) end)

  it("a symlink is replaced by a lock file of ours; what it pointed to is never touched", function()
    write(tmp .. "/victim", "precious\n")
    assert(lfs.link(tmp .. "/victim", dir .. "/store.lock", true))
    assert(recovery.compact(dir, { timestamp = 5 }))
    assert.equal("file", lfs.symlinkattributes(dir .. "/store.lock", "mode"))
    assert.equal("precious\n", read(tmp .. "/victim"))
    -- a dangling link, and a FIFO, the same
    os.remove(dir .. "/store.lock")
    assert(lfs.link(tmp .. "/nothing", dir .. "/store.lock", true))
    local a = assert(appender.open(dir .. "/wal/actionqueue.wal", { sync = "none" }))
    assert(a:close())
    assert.is_nil(lfs.attributes(tmp .. "/nothing"))
    os.remove(dir .. "/store.lock")
    assert(os.execute("env -u LD_PRELOAD mkfifo " .. q(dir .. "/store.lock")))
    local r = aqstore.cli({ "wal", "repair", dir .. "/wal/actionqueue.wal" })
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal("file", lfs.symlinkattributes(dir .. "/store.lock", "mode"))
  end)

  it("two mutators still exclude each other when the lock file is swapped for a link", function()
    local ready, stop, out = tmp .. "/ready", tmp .. "/stop", tmp .. "/holder.out"
    local pid = spawn(string.format([[
      local appender = require "actionqueue.storage.wal.appender"
      local lfs = require "lfs"
      local a = assert(appender.open(%q, { sync = "none" }))
      io.open(%q, "w"):close()
      for _ = 1, 3000 do
        if lfs.attributes(%q) then break end
        os.execute("sleep 0.01")
      end
      assert(a:close())
    ]], dir .. "/wal/actionqueue.wal", ready, stop), out)
    assert.is_true(proc.wait_for_file(ready, 10), read(out))
    -- someone swaps store.lock for a link while the holder is inside
    os.remove(dir .. "/store.lock")
    assert(lfs.link(tmp .. "/nothing", dir .. "/store.lock", true))
    local ok, err = recovery.compact(dir, { timestamp = 5 })
    assert.is_nil(ok)
    assert.equal("Locked", err.kind, tostring(err))
    assert.matches("another process holds it", err.message, 1, true)
    local a, aerr = appender.open(dir .. "/wal/actionqueue.wal", { sync = "none" })
    assert.is_nil(a)
    assert.equal("Locked", aerr.kind)
    write(stop, "")
    assert.is_true(proc.wait_pid(pid, 10))
    assert(recovery.compact(dir, { timestamp = 5 }))
  end)
end)
