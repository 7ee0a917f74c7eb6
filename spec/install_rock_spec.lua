-- The installed rock runs (issue 14 item 1): `make pack` (rockspec/pack.sh: `luarocks pack`
-- of the checkout) gives a
-- .src.rock that installs offline (`--deps-mode none`) into a private tree, and the
-- installed `aqstore` then runs check, repl (piped), batch and wal dump from another
-- directory with a clean environment (no LUA_PATH/LUA_CPATH, no luarocks config).
-- `luarocks make --tree` of the unpacked sources gives the same launcher.
local fixtures = require "support.fixtures"
local files = require "support.files"

local q = files.q
local ROCKSPEC = "rockspec/actionqueue-storage-scm-1.rockspec"
local SNAP = files.abs(fixtures.root .. "/snapshot/valid_01_tasks.snap")
local WAL = files.abs(fixtures.root .. "/wal/events/all_events.wal")

-- Without the sanitizer runtimes `make sanitize` preloads (luarocks and the compiler are
-- not under test, and LeakSanitizer would fail them at exit).
local function sh(cmd)
  local p = assert(io.popen("( "
    .. "unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; " .. cmd .. " ) 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local function have(tool) return (sh("command -v " .. tool)) end

describe("the installed rock", function()
  local tmp, tree, make_tree, ready

  -- Runs an installed command in an empty directory with nothing but PATH and HOME set.
  local function run_installed(root, args, stdin)
    local input = stdin and ("printf '%s' " .. q(stdin) .. " | ") or ""
    return sh(string.format("cd %s && %senv -i PATH=/usr/bin:/bin HOME=%s %s/bin/aqstore %s",
      q(tmp .. "/elsewhere"), input, q(tmp .. "/home"), q(root), args))
  end

  lazy_setup(function()
    if not (have("luarocks") and have("git") and have("tar") and have("unzip")) then return end
    tmp = files.tmpdir()
    tree, make_tree = tmp .. "/tree", tmp .. "/tree-make"
    assert(sh("mkdir -p " .. q(tmp .. "/elsewhere") .. " " .. q(tmp .. "/home") .. " " .. q(tmp .. "/src")))
    -- `make pack`'s script: the checkout's files as they are now, as a .src.rock.
    local ok, out = sh(q(fixtures.repo .. "/rockspec/pack.sh") .. " " .. q(tmp))
    assert(ok, out)
    -- The sources it holds, for `luarocks make`.
    ok, out = sh("cd " .. q(tmp .. "/src") .. " && unzip -p ../actionqueue-storage-scm-1.src.rock"
      .. " actionqueue-storage.tar.gz | tar -xzf -")
    assert(ok, out)
    ready = true
  end)

  lazy_teardown(function() files.rmtree(tmp) end)

  local function need()
    if not ready then pending("luarocks, git, tar or unzip missing") end
    return ready
  end

  it("luarocks pack gives a .src.rock that installs offline with --deps-mode none", function()
    if not need() then return end
    local ok, out = sh("cd " .. q(tmp) .. " && luarocks --lua-version 5.4 install --deps-mode none --tree "
      .. q(tree) .. " ./actionqueue-storage-scm-1.src.rock")
    assert(ok, out)
    assert.truthy(io.open(tree .. "/bin/aqstore"))
  end)

  it("runs check from another directory without LUA_PATH", function()
    if not need() then return end
    local ok, out = run_installed(tree, "check " .. q(SNAP))
    assert.is_true(ok, out)
    assert.matches("^OK tasks=%d+ runs=%d+\n$", out)
  end)

  it("runs repl with commands piped on stdin", function()
    if not need() then return end
    local ok, out = run_installed(tree, "repl -q " .. q(SNAP), "print('tasks', #s.tasks)\n")
    assert.is_true(ok, out)
    assert.matches("tasks\t%d+", out)
    assert.not_matches("not found", out, 1, true)
  end)

  it("runs a batch with worker processes", function()
    if not need() then return end
    files.write(tmp .. "/elsewhere/jobs.lua", string.format(
      "return { jobs = { { kind = 'check', input = %q }, { kind = 'verify', input = %q } } }", SNAP, SNAP))
    local ok, out = run_installed(tree, "batch jobs.lua -j 2 --report report.json")
    assert.is_true(ok, out)
    local report = assert(files.read(tmp .. "/elsewhere/report.json"))
    assert.matches('"ok":%s*2', report)
  end)

  it("runs wal dump", function()
    if not need() then return end
    local ok, out = run_installed(tree, "wal dump --json " .. q(WAL))
    assert.is_true(ok, out)
    assert.matches('^{"sequence":1,', out)
  end)

  it("luarocks make --tree of the sources gives a launcher that runs too", function()
    if not need() then return end
    local ok, out = sh("cd " .. q(tmp .. "/src/actionqueue-storage") .. " && luarocks --lua-version 5.4 make"
      .. " --deps-mode none --tree " .. q(make_tree) .. " " .. ROCKSPEC)
    assert(ok, out)
    ok, out = run_installed(make_tree, "check " .. q(SNAP))
    assert.is_true(ok, out)
    assert.matches("^OK tasks=", out)
  end)
end)

describe("the rockspec", function()
  it("lists every runtime dependency the Lua code requires", function()
    local text = assert(files.read(fixtures.repo .. "/" .. ROCKSPEC))
    local deps = text:match("\ndependencies = (%b{})")
    -- module -> rock that provides it
    local ROCK = { argparse = "argparse", lfs = "luafilesystem", cjson = "lua-cjson",
      ["cjson.safe"] = "lua-cjson" }
    local p = assert(io.popen("cd " .. q(fixtures.repo) .. " && cat scripts/aqstore $(find lua -name '*.lua')"))
    local code = p:read("a")
    p:close()
    for mod in code:gmatch('require%s*%(?%s*"([^"]+)"') do
      if not mod:match("^actionqueue%.") then
        assert(ROCK[mod], "no rock known for module " .. mod)
        assert.matches('"' .. ROCK[mod]:gsub("%-", "%%-") .. '[ "]', deps)
      end
    end
  end)
end)
