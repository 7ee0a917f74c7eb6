-- Makefile targets do one job each (issue 17 item 7): `make build` compiles the module
-- and nothing else; the test helpers belong to the test targets and the rockspec's module
-- list is rewritten only by `make rockspec`.
local function dry_run(target)
  local p = assert(io.popen("make -s -n -B " .. target .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

describe("make build", function()
  local out = dry_run("build")

  it("compiles the C module", function()
    assert.matches("build/actionqueue/storage/core.so", out, 1, true)
  end)

  it("builds neither the fault shim nor the I/O-test core", function()
    assert.not_matches("faultshim", out, 1, true)
    assert.not_matches("AQS_IO_TEST", out, 1, true)
  end)

  it("never rewrites a tracked file (the rockspec is `make rockspec`'s job)", function()
    assert.not_matches("rockspec/update.lua", out, 1, true)
  end)
end)

describe("make test", function()
  it("builds the fault shim and the I/O-test core it needs", function()
    local out = dry_run("test")
    assert.matches("faultshim.so", out, 1, true)
    assert.matches("AQS_IO_TEST", out, 1, true)
    assert.not_matches("rockspec/update.lua " .. "rockspec/", out, 1, true)
  end)
end)

describe("make rockspec-check", function()
  it("only checks the module list (update.lua --check)", function()
    assert.matches("update.lua --check", dry_run("rockspec-check"), 1, true)
  end)
end)

describe("Makefile DEB_PKGS", function()
  it("lists one Debian package per line (additions merge without conflicts)", function()
    local f = assert(io.open("Makefile"))
    local text = f:read("a")
    f:close()
    local n = 0
    for line in text:gmatch("[^\n]+") do
      if line:match("^DEB_PKGS%s") then
        n = n + 1
        assert.matches("^DEB_PKGS%s+[:+]=%s*[%w%.%-+]*$", line)
      end
    end
    assert.is_true(n > 10)
  end)
end)
