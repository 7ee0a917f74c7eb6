-- `aqstore check` / `aqstore rewrite` as subprocesses: the acceptance contract (one line,
-- exact texts, exit codes) over every golden snapshot fixture.
local fixtures = require "spec.support.fixtures"
local files = require "support.files"
local run = require "support.aqstore_run"

-- Runs aqstore (in the repo) with the given arguments; returns stdout (the contract:
-- hints about what a file looks like go to stderr) and the exit code.
local function aqstore(...)
  local r = run.cli({ ... }, { cwd = fixtures.repo })
  return r.out, r.code
end

local read = files.read

local tmpdir = files.tmpdir()

describe("aqstore check", function()

  it("prints each fixture's expected line with its exit code", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local n = 0
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      local out, code = aqstore("check", fixtures.path("snapshot", c.file))
      local line = out:gsub("\n$", "")
      if line ~= c.expect_older_serde_stack then
        assert.equal(c.expect, line, c.file)
      end
      assert.equal(c.exit_code, code, c.file)
      assert.is_nil(line:find("\n", 1, true), "exactly one line")
      n = n + 1
    end
    assert.is_true(n > 100)
  end)

  it("NONE for a missing file, usage error without a file", function()
    local out, code = aqstore("check", tmpdir .. "/absent")
    assert.equal("NONE\n", out)
    assert.equal(0, code)
    local _, ucode = aqstore("check")
    assert.equal(2, ucode)
  end)

  it("--json prints one document with stable field names", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local cjson = require "cjson"
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      if c.kind == "valid" or c.kind == "frame" then
        local out, code = aqstore("check", "--json", fixtures.path("snapshot", c.file))
        local doc = cjson.decode(out)
        assert.equal(c.exit_code, code)
        if c.expect:sub(1, 3) == "OK " then
          assert.equal("ok", doc.status)
          assert.equal(c.expect, ("OK tasks=%d runs=%d"):format(doc.tasks, doc.runs))
        elseif c.expect == "NONE" then
          assert.equal("none", doc.status)
        else
          assert.equal("error", doc.status)
          assert.is_string(doc.kind)
          assert.equal(c.expect, "ERR " .. doc.message)
        end
      end
    end
  end)

  it("has a description and an example in its help", function()
    local out, code = aqstore("check", "--help")
    assert.equal(0, code)
    assert.truthy(out:find("Example:", 1, true))
  end)
end)

describe("aqstore rewrite", function()
  teardown(function() files.rmtree(tmpdir) end)
  it("rewrites valid files identically and compat files canonically", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local out = tmpdir .. "/rw.snap"
    local n = 0
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      local want = (c.kind == "valid" and c.file) or (c.kind == "compat" and c.canonical)
      if want and c.exit_code == 0 and read(fixtures.path("snapshot", want)):sub(1, 1) == "\4" then
        os.remove(out)
        local text, code = aqstore("rewrite", fixtures.path("snapshot", c.file), out)
        assert.equal(0, code, c.file .. ": " .. text)
        assert.equal(read(fixtures.path("snapshot", want)), read(out), c.file)
        n = n + 1
      end
    end
    assert.is_true(n > 20)
  end)

  it("prints the loader's ERR line for a bad input and leaves OUT untouched", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local target = tmpdir .. "/untouched.snap"
    local f = assert(io.open(target, "wb"))
    f:write("previous")
    f:close()
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      if c.exit_code == 1 then
        local text, code = aqstore("rewrite", fixtures.path("snapshot", c.file), target)
        assert.equal(1, code)
        local line = text:gsub("\n$", "")
        if line ~= c.expect_older_serde_stack then assert.equal(c.expect, line, c.file) end
      end
    end
    assert.equal("previous", read(target))
    assert.is_nil(read(target .. ".tmp"))
  end)

  it("reports a write failure with ERR, exit 1, no temp file", function()
    if not fixtures.available() then pending("shared fixtures not found") return end
    local src
    for _, c in ipairs(fixtures.manifest("snapshot")) do
      if c.kind == "valid" and c.exit_code == 0 then src = fixtures.path("snapshot", c.file) break end
    end
    local dir = tmpdir .. "/target-is-dir"
    assert(os.execute("mkdir -p " .. dir))
    -- stdout keeps the engine's writer text; stderr names the step and the file
    local r = run.cli({ "rewrite", src, dir }, { cwd = fixtures.repo })
    assert.equal(1, r.code)
    assert.equal("ERR I/O error: Is a directory (os error 21)\n", r.out)
    assert.truthy(r.err:find("step: rename, file: " .. dir, 1, true), r.err)
    assert.same({}, (function()
      local left = {}
      for name in require("lfs").dir(tmpdir) do
        if name:find("%.tmp") then left[#left + 1] = name end
      end
      return left
    end)())
    r = run.cli({ "rewrite", src, tmpdir .. "/missing/dir/out.snap" }, { cwd = fixtures.repo })
    assert.equal(1, r.code)
    assert.equal("ERR I/O error when opening snapshot file: No such file or directory (os error 2)\n", r.out)
    assert.truthy(r.err:find("the output directory " .. tmpdir .. "/missing/dir does not exist", 1, true), r.err)
  end)
end)
