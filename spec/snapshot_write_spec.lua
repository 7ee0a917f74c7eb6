-- The snapshot writer: validation first, canonical bytes, atomic replacement, and the
-- old target kept intact (no temp file left) on every failure.
local core = require "actionqueue.storage.core"
local snapshot = require "actionqueue.storage.snapshot"
local fixtures = require "spec.support.fixtures"
local fault = require "spec.support.fault"

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))

local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

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
  teardown(function() os.execute("rm -rf " .. tmpdir) end)

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
    assert.equal("I/O error when opening snapshot file: ", err.message:sub(1, 38))
  end)

  it("a rename failure (target is a directory) leaves no temp file", function()
    local target = tmpdir .. "/isdir"
    assert(os.execute("mkdir -p " .. target))
    local ok, err = snapshot.write(target, assert(snapshot.decode(EMPTY)))
    assert.is_nil(ok)
    assert.equal("IoError", err.kind)
    assert.is_false(exists(target .. ".tmp"))
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
  end)
end)
