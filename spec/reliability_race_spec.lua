-- Racing writers (issue 13 defect 1, docs/safety.md): two processes replace one target
-- with different snapshots while one of them is slowed at a different point of its write
-- in every race (strace's syscall delay injection: the k-th pwrite of the frame, the
-- fsync of the temp, the rename, the directory fsync). After every race the target must
-- be exactly one writer's complete output (the one that reported OK; either when both
-- did; the previous file when neither did), and no temp file may be left behind.
-- `make crash` (AQS_RELIABILITY=full) runs 1,000 races; `make test` a small slice.
-- Before the fix (one shared TARGET.tmp) the slice tore the target in most races.
local core = require "actionqueue.storage.core"
local files = require "support.files"
local fixtures = require "support.fixtures"
local lfs = require "lfs"

local full = os.getenv("AQS_RELIABILITY") == "full"
local q = files.q

local have_strace = require("support.proc").have_strace

-- The writer: load a snapshot and write it to the target (snapshot.write, the protocol
-- every command uses). Prints OK or ERR <text>.
local WRITER = [[
local snapshot = require "actionqueue.storage.snapshot"
local snap = assert(snapshot.load(arg[1]))
local ok, err = snapshot.write(arg[2], snap, { validated = true })
io.write(ok and "OK" or ("ERR " .. tostring(err)), "\n")
]]

-- Injection points of the slowed writer: its pwrites (frame header, payload chunks,
-- header again), the temp fsync, the rename and the directory fsync.
local function points(npwrite)
  local list = {}
  for k = 1, npwrite do list[#list + 1] = { "pwrite64", k } end
  list[#list + 1] = { "fsync", 1 }
  list[#list + 1] = { "rename", 1 }
  list[#list + 1] = { "fsync", 2 }
  return list
end

describe("racing writers", function()
  if not fixtures.available() then
    pending("shared fixtures not found")
    return
  end
  if not have_strace() then
    pending("strace (with ptrace permission) is needed for the racing-writer harness")
    return
  end
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  it("leave the target equal to one writer's complete output, whatever the interleaving", function()
    local big = files.abs(fixtures.path("snapshot", "valid_12_medium_1000.snap"))
    local small = files.abs(fixtures.path("snapshot", "valid_08_strings.snap"))
    local old = files.abs(fixtures.path("snapshot", "valid_01_tasks.snap"))
    local content = { [big] = files.read(big), [small] = files.read(small), [old] = files.read(old) }
    files.write(dir .. "/w.lua", WRITER)
    -- pwrites of a snapshot: header, one per 64 KiB chunk, header again
    local function npw(path) return 2 + math.ceil((#content[path] - 12) / 65536) end
    local pts = { [big] = points(npw(big)), [small] = points(npw(small)) }
    local races = full and 1000 or 12
    local target = dir .. "/snapshot.bin"
    local outcomes = { ok_ok = 0, ok_err = 0, err_ok = 0, err_err = 0 }
    local tried = {}
    for i = 1, races do
      files.copy(old, target)
      -- the slowed writer alternates between the big and the small snapshot and walks
      -- through that writer's injection points
      local slow_in, fast_in = big, small
      if i % 2 == 0 then slow_in, fast_in = small, big end
      local list = pts[slow_in]
      local slow_p = list[((i - 1) // 2) % #list + 1]
      tried[(slow_in == big and "big " or "small ") .. slow_p[1] .. "#" .. slow_p[2]] = true
      local delay_us = 40000 + (i * 7919) % 160000
      local offset = ((i * 31) % 60) / 1000
      local cmd = ("cd %s && { strace -f -qq -o /dev/null -e trace=%s -e inject=%s:delay_enter=%d:when=%d "
        .. "lua5.4 w.lua %s snapshot.bin >a.out 2>&1 & sleep %.3f; "
        .. "lua5.4 w.lua %s snapshot.bin >b.out 2>&1; wait; }")
        :format(q(dir), slow_p[1], slow_p[1], delay_us, slow_p[2], q(slow_in), offset, q(fast_in))
      os.execute(cmd)
      local a = (files.read(dir .. "/a.out") or ""):match("^(%u+)")
      local b = (files.read(dir .. "/b.out") or ""):match("^(%u+)")
      assert.truthy(a == "OK" or a == "ERR", "race " .. i .. ": slowed: " .. tostring(files.read(dir .. "/a.out")))
      assert.truthy(b == "OK" or b == "ERR", "race " .. i .. ": other: " .. tostring(files.read(dir .. "/b.out")))
      local got = files.read(target)
      local what = ("race %d (slowed at %s #%d by %d us, %s slowed): slowed %s, other %s")
        :format(i, slow_p[1], slow_p[2], delay_us, slow_in == big and "big" or "small", a, b)
      assert.equal("ok", core.frame_read(target).status, what .. ": target torn")
      if a == "OK" and b == "OK" then
        assert.truthy(got == content[slow_in] or got == content[fast_in], what .. ": target is neither output")
      elseif a == "OK" then
        assert.truthy(got == content[slow_in], what .. ": target is not the successful writer's output")
      elseif b == "OK" then
        assert.truthy(got == content[fast_in], what .. ": target is not the successful writer's output")
      else
        assert.truthy(got == content[old], what .. ": both failed but the target changed")
      end
      outcomes[(a == "OK" and "ok" or "err") .. "_" .. (b == "OK" and "ok" or "err")] =
        outcomes[(a == "OK" and "ok" or "err") .. "_" .. (b == "OK" and "ok" or "err")] + 1
      for name in lfs.dir(dir) do
        assert.is_nil(name:find(".tmp", 1, true), what .. ": " .. name .. " left behind")
      end
    end
    local npoints = 0
    for _ in pairs(tried) do npoints = npoints + 1 end
    io.write(("\nracing writers: %d races at %d injection points, target whole %d/%d "
      .. "(both OK %d, slowed only %d, other only %d, neither %d)\n")
      :format(races, npoints, races, races, outcomes.ok_ok, outcomes.ok_err, outcomes.err_ok, outcomes.err_err))
  end)
end)

-- A really full file system (a 256 KiB tmpfs, root only) next to the LD_PRELOAD shim's
-- simulated ENOSPC (spec/reliability_faults_spec.lua): the kernel's own ENOSPC, at
-- whatever write it happens, leaves the previous file and no temp file behind, and the
-- error names the step and the file.
describe("a really full file system", function()
  local mnt
  local function root_mount()
    local p = io.popen("id -u")
    local uid = p:read("l")
    p:close()
    if uid ~= "0" then return nil end
    mnt = files.tmpdir()
    if not os.execute(("mount -t tmpfs -o size=256k tmpfs %s 2>/dev/null"):format(q(mnt))) then
      files.rmtree(mnt)
      mnt = nil
    end
    return mnt
  end
  after_each(function()
    if mnt then
      os.execute("umount " .. q(mnt))
      files.rmtree(mnt)
      mnt = nil
    end
  end)

  it("ENOSPC from a 256 KiB tmpfs: previous snapshot intact, no temp, step and file named", function()
    if not fixtures.available() then return pending("shared fixtures not found") end
    if not root_mount() then return pending("needs root and permission to mount a tmpfs") end
    local snapshot = require "actionqueue.storage.snapshot"
    local fsutil = require "actionqueue.storage.fsutil"
    local small = files.abs(fixtures.path("snapshot", "valid_08_strings.snap"))
    local big = assert(snapshot.load(files.abs(fixtures.path("snapshot", "valid_12_medium_1000.snap"))))
    local target = mnt .. "/snapshot.bin"
    files.copy(small, target)
    local ok, err = snapshot.write(target, big, { validated = true })
    assert.is_nil(ok)
    assert.equal("I/O error: No space left on device (os error 28)", err.message)
    assert.equal("write", err.op)
    assert.matches("^" .. target:gsub("%p", "%%%0") .. "%.tmp%.%d+%.%x+$", err.path)
    assert.equal(files.read(small), files.read(target))
    assert.same({ "snapshot.bin" }, fsutil.list_dir(mnt))
    -- plain files (reports) and exclusive files (cut files) alike
    local okp, msg = fsutil.write_file_atomic(mnt .. "/report.json", string.rep("x", 400 * 1024))
    assert.is_nil(okp)
    assert.truthy(msg:find("report.json.tmp.", 1, true), msg)
    assert.is_nil((fsutil.create_exclusive(mnt .. "/wal.cut-0", string.rep("y", 400 * 1024))))
    assert.same({ "snapshot.bin" }, fsutil.list_dir(mnt))
    -- and the next writer, with room again, succeeds
    assert(snapshot.write(target, assert(snapshot.load(small)), { validated = true }))
    assert.equal(files.read(small), files.read(target))
  end)
end)
