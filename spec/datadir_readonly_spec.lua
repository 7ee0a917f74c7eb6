-- Reading never needs write access and never creates files (issue 13 defect 9):
-- `recover`, `compact --out ELSEWHERE`, `check`, `wal dump|verify|stats` and the REPL
-- work on a read-only mount, and recovery of a data dir without a WAL leaves it as it
-- was unless the engine's bootstrap side effects are asked for (`--bootstrap`).
local fixtures = require "support.fixtures"
local files = require "support.files"
local aqstore = require "support.aqstore_run"
local lfs = require "lfs"

local q = files.q

local function sh(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

-- Every path under `dir` (relative, sorted), so a spec can see what a command created.
local function tree(dir)
  local out = {}
  local function walk(rel)
    for name in lfs.dir(dir .. rel) do
      if name ~= "." and name ~= ".." then
        local p = rel .. "/" .. name
        out[#out + 1] = p
        if lfs.attributes(dir .. p, "mode") == "directory" then walk(p) end
      end
    end
  end
  walk("")
  table.sort(out)
  return out
end

local FIXTURE = "recovery/snapshot_plus_tail"

describe("reading a data dir creates nothing", function()
  if not fixtures.available() then
    pending("shared fixtures not found")
    return
  end
  local tmp
  before_each(function() tmp = files.tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  it("recover on a data dir without a WAL leaves it untouched; --bootstrap creates the layout", function()
    local data = tmp .. "/data"
    assert(lfs.mkdir(data))
    local r = aqstore.cli { "recover", data }
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("^RECOVERED snapshot_loaded=false", r.out)
    assert.same({}, tree(data))
    r = aqstore.cli { "compact", data, "--timestamp", "1800000000", "--out", tmp .. "/out.snap" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({}, tree(data))
    r = aqstore.cli { "recover", "--bootstrap", data }
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({ "/snapshots", "/wal", "/wal/actionqueue.wal" }, tree(data))
  end)

  it("the library's recover creates nothing unless opts.bootstrap", function()
    local recovery = require "actionqueue.storage.recovery"
    local data = tmp .. "/data"
    assert(lfs.mkdir(data))
    assert(recovery.recover(data))
    assert.same({}, tree(data))
    -- a component that is not a directory fails as the engine's mkdir would
    files.write(data .. "/wal", "x")
    local r, err = recovery.recover(data)
    assert.is_nil(r)
    assert.equal("WAL init error: I/O error: File exists (os error 17)", err.message)
    os.remove(data .. "/wal")
    assert(recovery.recover(data, { bootstrap = true }))
    assert.same({ "/snapshots", "/wal", "/wal/actionqueue.wal" }, tree(data))
  end)
end)

describe("reading a data dir on a read-only mount", function()
  local mnt, out, data
  local reason
  if not fixtures.available() then
    reason = "shared fixtures not found"
  end

  setup(function()
    if reason then return end
    mnt = files.tmpdir()
    out = files.tmpdir()
    data = mnt .. "/data"
    local src = fixtures.path("wal", FIXTURE)
    if sh("mount -t tmpfs -o size=16m aqs-ro " .. q(mnt)) then
      assert(sh("cp -r " .. q(src) .. " " .. q(data)))
      assert(sh("mount -o remount,ro " .. q(mnt)))
    else
      -- unprivileged: a directory without write permission (root would bypass it)
      assert(sh("cp -r " .. q(src) .. " " .. q(data)))
      assert(sh("chmod -R a-w " .. q(data)))
      if io.open(data .. "/probe", "w") then
        os.remove(data .. "/probe")
        reason = "cannot mount and permissions do not bind this user (root without CAP_SYS_ADMIN)"
      end
    end
  end)

  teardown(function()
    if mnt then
      sh("umount " .. q(mnt))
      sh("chmod -R u+w " .. q(mnt))
      files.rmtree(mnt)
    end
    if out then files.rmtree(out) end
  end)

  local function ro_it(name, fn)
    it(name, function()
      if reason then
        pending(reason)
        return
      end
      fn()
    end)
  end

  local wal = function() return data .. "/wal/actionqueue.wal" end
  local snap = function() return data .. "/snapshots/snapshot.bin" end

  ro_it("is really read-only", function()
    assert.is_nil(io.open(data .. "/probe", "w"))
  end)

  ro_it("recover", function()
    local r = aqstore.cli { "recover", data }
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("^RECOVERED snapshot_loaded=true snapshot_sequence=449", r.out)
  end)

  ro_it("compact --out elsewhere writes the expected snapshot", function()
    local target = out .. "/compacted.snap"
    local r = aqstore.cli { "compact", data, "--timestamp", "1800000000", "--out", target }
    assert.equal(0, r.code, r.out .. r.err)
    local expected = fixtures.read(fixtures.path("wal", FIXTURE .. ".expected.snap"))
    assert.is_true(expected == files.read(target), "compacted bytes differ")
  end)

  ro_it("check, wal dump/verify/stats and the REPL", function()
    local r = aqstore.cli { "check", snap() }
    assert.equal(0, r.code, r.out .. r.err)
    for _, args in ipairs { { "wal", "dump", wal() }, { "wal", "dump", "--json", wal() },
                            { "wal", "verify", wal() }, { "wal", "stats", wal() } } do
      r = aqstore.cli(args)
      assert.equal(0, r.code, table.concat(args, " ") .. ": " .. r.out .. r.err)
    end
    r = aqstore.cli({ "repl", "-q", snap() }, { stdin = "print(#s.tasks)\n" })
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("54", r.out)
  end)

  ro_it("mutations fail cleanly, naming the file", function()
    local r = aqstore.cli { "compact", data, "--timestamp", "1800000000" }
    assert.equal(1, r.code, r.out .. r.err)
    assert.matches(data .. "/store.lock", r.out .. r.err, 1, true)
    assert.matches("Read-only file system", r.out .. r.err, 1, true)
    r = aqstore.cli { "wal", "open", "--strict", wal() }
    assert.equal(1, r.code, r.out .. r.err)
    assert.matches("Read-only file system", r.out .. r.err, 1, true)
  end)
end)
