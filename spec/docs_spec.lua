-- The LDoc reference (issue 14 item 8): built with markdown, every module under its full
-- name (actionqueue.storage.*), the umbrella page lists load/open/show/wrap, every
-- docs/*.md is a topic, and the standard library links go to the Lua 5.4 manual.
local fixtures = require "support.fixtures"
local files = require "support.files"
local lfs = require "lfs"

local q = files.q
local repo = files.abs(fixtures.repo)

local function docs_md()
  local out = {}
  for name in lfs.dir(repo .. "/docs") do
    if name:match("%.md$") then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local function config_topics()
  local text = assert(files.read(repo .. "/docs/config.ld"))
  local list = {}
  for name in text:match("\ntopics = (%b{})"):gmatch('"([^"]+)"') do list[#list + 1] = name end
  table.sort(list)
  return list
end

describe("docs/config.ld", function()
  it("lists every docs/*.md as a topic, and nothing else", function()
    assert.same(docs_md(), config_topics())
  end)
end)

describe("make docs", function()
  local out, html
  lazy_setup(function()
    if not os.execute("command -v ldoc >/dev/null 2>&1") then return end
    html = files.tmpdir()
    -- without the sanitizer runtimes `make sanitize` preloads (ldoc is not under test)
    local p = assert(io.popen("cd " .. q(repo) .. " && unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; "
      .. "ldoc -c docs/config.ld -d " .. q(html) .. " . 2>&1"))
    out = p:read("a")
    p:close()
  end)
  lazy_teardown(function() files.rmtree(html) end)

  local function page(rel)
    return files.read(html .. "/" .. rel)
  end

  local function need()
    if not out then pending("ldoc not installed (make deps)") end
    return out
  end

  it("formats markdown (lua-discount), not plain text", function()
    if not need() then return end
    assert.not_matches("falling back to text", out, 1, true)
    assert.matches("<code>aqstore check FILE</code>", assert(page("topics/cli.md.html")), 1, true)
  end)

  it("names every module actionqueue.storage.*", function()
    if not need() then return end
    local n = 0
    for name in lfs.dir(html .. "/modules") do
      if name:match("%.html$") then
        n = n + 1
        assert.matches("^actionqueue%.storage[%.%w_]*%.html$", name)
      end
    end
    assert.is_true(n > 20)
  end)

  it("the umbrella module page lists load, open, show and wrap", function()
    if not need() then return end
    local umbrella = assert(page("modules/actionqueue.storage.html"))
    for _, f in ipairs { "load", "open", "show", "wrap" } do
      assert.matches('<a href="#' .. f .. '">' .. f .. '(', umbrella, 1, true)
    end
  end)

  it("has every docs/*.md as a topic page", function()
    if not need() then return end
    for _, name in ipairs(docs_md()) do
      assert.truthy(page("topics/" .. name .. ".html"), name)
    end
  end)

  it("links the standard library to the Lua 5.4 manual", function()
    if not need() then return end
    local p = assert(io.popen("grep -rho 'lua.org/manual/[0-9.]*/' " .. q(html) .. " | sort -u"))
    local versions = p:read("a")
    p:close()
    assert.equal("lua.org/manual/5.4/\n", versions)
  end)
end)
