-- The snapshot writer: validation first, canonical bytes, atomic replacement, and the
-- old target kept intact (no temp file left) on every failure.
local core = require "actionqueue.storage.core"
local snapshot = require "actionqueue.storage.snapshot"
local fixtures = require "spec.support.fixtures"
local fault = require "spec.support.fault"

local files = require "support.files"

local tmpdir = files.tmpdir()

local read = files.read

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local EMPTY = '{"version":4,"timestamp":0,"metadata":{"schema_version":8,"wal_sequence":0,"task_count":0,'
  .. '"run_count":0},"tasks":[],"runs":[],"engine":{"paused":false,"paused_at":null,"resumed_at":null},'
  .. '"dependency_declarations":[],"budgets":[],"subscriptions":[],"actors":[],"tenants":[],'
  .. '"role_assignments":[],"capability_grants":[],"ledger_entries":[]}'

describe("snapshot.write", function()
  teardown(function() files.rmtree(tmpdir) end)

  it("rewrites every valid fixture byte-identically and every compat file to its canonical twin", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local out = tmpdir .. "/rt.snap"
    local n = 0
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      local want = (c.kind == "valid" or c.kind == "canonical") and c.file or (c.kind == "compat" and c.canonical)
      local snap = want and snapshot.load(fixtures.path("snapshot", c.file))
      if snap then
        local expected = read(fixtures.path("snapshot", want))
        if snap.version ~= 4 then
          -- the reference writes the JSON version into the frame; we refuse (unloadable file)
          local ok, err = snapshot.write(out, snap)
          assert.is_nil(ok)
          assert.equal("UnsupportedVersion", err.kind)
          assert.equal(expected, core.frame_encode(snap.version, assert(snapshot.encode(snap))), c.file)
        else
          assert(snapshot.write(out, snap))
          assert.equal(expected, read(out), c.file)
        end
        assert.is_false(exists(out .. ".tmp"))
        n = n + 1
      end
    end
    assert.is_true(n > 30)
  end)

  it("refuses an invalid snapshot with the mapping text and writes nothing", function()
    local snap = assert(snapshot.decode(EMPTY))
    snap.metadata.task_count = 1
    local ok, err = snapshot.write(tmpdir .. "/inv.snap", snap)
    assert.is_nil(ok)
    assert.equal("MappingError", err.kind)
    assert.equal("Mapping error: snapshot task_count mismatch: declared 1, actual 0", err.message)
    assert.is_false(exists(tmpdir .. "/inv.snap"))
    assert.is_false(exists(tmpdir .. "/inv.snap.tmp"))
  end)

  it("refuses a version the loader would reject", function()
    local snap = assert(snapshot.decode(EMPTY))
    snap.version = 7
    local ok, err = snapshot.write(tmpdir .. "/v7.snap", snap)
    assert.is_nil(ok)
    assert.truthy(err.message:find("version 7", 1, true))
    assert.is_false(exists(tmpdir .. "/v7.snap"))
  end)

  it("reports an encode error with the path and keeps the old target", function()
    local target = tmpdir .. "/keep.snap"
    assert(snapshot.write(target, assert(snapshot.decode(EMPTY))))
    local before = read(target)
    local snap = assert(snapshot.decode(EMPTY))
    snap.actors = { { actor_id = "not-a-uuid" } }
    local ok, err = snapshot.write(target, snap)
    assert.is_nil(ok)
    assert.equal("EncodeError", err.kind)
    assert.truthy(err.message:find("actors[1]", 1, true))
    assert.equal(before, read(target))
    assert.is_false(exists(target .. ".tmp"))
  end)

  it("reports open failures with the reference's prefix", function()
    local ok, err = snapshot.write(tmpdir .. "/no/such/dir/s.snap", assert(snapshot.decode(EMPTY)))
    assert.is_nil(ok)
    assert.equal("IoError", err.kind)
    assert.equal("I/O error when opening snapshot file: No such file or directory (os error 2)", err.message)
    assert.equal(2, err.os_errno)
    assert.truthy(err.detail:find("s.snap.tmp", 1, true))   -- the C message still names the file
    ok, err = snapshot.write("/", assert(snapshot.decode(EMPTY)))
    assert.is_nil(ok)
    assert.equal("I/O error when opening snapshot file: snapshot path has no filename component: /", err.message)
  end)

  it("a rename failure (target is a directory) leaves no temp file", function()
    local target = tmpdir .. "/isdir"
    assert(os.execute("mkdir -p " .. target))
    local ok, err = snapshot.write(target, assert(snapshot.decode(EMPTY)))
    assert.is_nil(ok)
    assert.equal("IoError", err.kind)
    assert.equal("I/O error: Is a directory (os error 21)", err.message)   -- §2.4 step 2
    assert.equal("rename", err.op)
    assert.is_false(err.replaced)
    assert.is_false(exists(target .. ".tmp"))
  end)

  it("writes a bare relative file name (the reference fails its parent directory fsync)", function()
    local lfs = require "lfs"
    local cwd = lfs.currentdir()
    assert(lfs.chdir(tmpdir))
    local ok, err = snapshot.write("bare.snap", assert(snapshot.decode(EMPTY)))
    lfs.chdir(cwd)
    assert.is_true(ok, err and err.message)
    assert.truthy(snapshot.load(tmpdir .. "/bare.snap"))
  end)

  it("streams large snapshots in chunks and loads them back", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local src
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      if c.kind == "valid" and c.file:find("medium") then src = fixtures.path("snapshot", c.file) end
    end
    if not src then pending("no medium fixture") return end
    local snap = assert(snapshot.load(src))
    local out = tmpdir .. "/medium.snap"
    assert(snapshot.write(out, snap, { chunk_size = 4096 }))
    assert.equal(read(src), read(out))
  end)

  describe("under injected I/O faults", function()
    local target = tmpdir .. "/fault.snap"
    local code = [[
      local snapshot = require "actionqueue.storage.snapshot"
      local snap = assert(snapshot.load(%q))
      local ok, err = snapshot.write(%q, snap, { chunk_size = 256 })
      print(ok and "OK" or ("ERR " .. err.kind .. " " .. err.message))
    ]]
    local src

    before_each(function()
      if not fault.available() then os.execute("make -s build/faultshim.so >/dev/null 2>&1") end
      src = tmpdir .. "/src.snap"
      local f = assert(io.open(src, "wb"))
      local snap = assert(snapshot.decode(EMPTY))
      f:write(core.frame_encode(4, assert(snapshot.encode(snap))))
      f:close()
      local g = assert(io.open(target, "wb"))
      g:write("OLD CONTENT")
      g:close()
    end)

    -- the atomic writer writes with pwrite (payload chunks, then the header at offset 0)
    for _, rule in ipairs { "pwrite:1:ENOSPC", "pwrite:2:EIO", "pwrite:3+:EDQUOT", "pwrite:1:short",
                            "fsync:1:EIO", "rename:1:EACCES", "close:1:EIO", "open:1:EROFS" } do
      it(rule, function()
        if not fault.available() then pending("fault shim not built") return end
        local out = fault.run(code:format(src, target), { AQS_FAULT = rule, AQS_FAULT_PATH = "fault.snap" })
        out = out:gsub("%s+$", "")
        if rule:find("short", 1, true) and out == "OK" then
          -- a short write is completed by the retry loop
          assert.equal(read(src), read(target))
        else
          assert.truthy(out:find("^ERR IoError I/O error"), out)
          assert.equal("OLD CONTENT", read(target))
        end
        assert.is_false(exists(target .. ".tmp"))
      end)
    end

    -- The reference's texts (snapshot-format.md §2.6), "<strerror> (os error N)".
    local texts = {
      ["open:1:EROFS"] = "ERR IoError I/O error when opening snapshot file: Read-only file system (os error 30)",
      ["pwrite:2:EIO"] = "ERR IoError I/O error: Input/output error (os error 5)",
      ["fsync:1:EIO"] = "ERR IoError I/O error: Input/output error (os error 5)",
      ["rename:1:EACCES"] = "ERR IoError I/O error: Permission denied (os error 13)",
    }
    for rule, want in pairs(texts) do
      it("text of " .. rule, function()
        if not fault.available() then pending("fault shim not built") return end
        local out = fault.run(code:format(src, target), { AQS_FAULT = rule, AQS_FAULT_PATH = "fault.snap" })
        assert.equal(want, (out:gsub("%s+$", "")))
      end)
    end

    -- The second open / fsync is the parent directory's, after the rename.
    for rule, want in pairs {
      ["open:2:EACCES"] = "failed to open snapshot parent directory for fsync: Permission denied (os error 13)",
      ["fsync:2:EIO"] = "failed to fsync snapshot parent directory: Input/output error (os error 5)",
    } do
      it("directory failure after the rename: " .. rule, function()
        if not fault.available() then pending("fault shim not built") return end
        local d = tmpdir .. "/dirfault"
        assert(os.execute("mkdir -p " .. d))
        local t = d .. "/x.snap"
        os.remove(t)
        local out = fault.run(code:format(src, t), { AQS_FAULT = rule, AQS_FAULT_PATH = "dirfault" })
        assert.equal("ERR IoError I/O error: " .. want .. " (snapshot replaced, durability unknown)",
          (out:gsub("%s+$", "")))
        assert.equal(read(src), read(t))         -- the new content is in place
        assert.is_false(exists(t .. ".tmp"))
      end)
    end
  end)
end)
