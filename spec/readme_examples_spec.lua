-- The README is a front door whose examples run (issue 14 item 6): every fenced `sh` and
-- `lua` block of README.md and docs/lua.md runs, as pasted, in an empty temporary
-- directory, with `aqstore` on PATH and the checkout's modules on LUA_PATH (what
-- "Install" sets up), and must exit 0. An expectation comment (`# -> TEXT` in shell,
-- `--> TEXT` in Lua) must appear in the block's output (white space collapsed). A block is
-- skipped only when the line before its fence says `<!-- readme-example: skip (why) -->`.
local fixtures = require "support.fixtures"
local files = require "support.files"

local q = files.q
local repo = files.abs(fixtures.repo)
local DOCS = { "README.md", "docs/lua.md" }

--- The fenced blocks of a Markdown text: {lang, code, line, skip}.
local function blocks(text)
  local out, cur, prev = {}, nil, ""
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        cur = nil
      else
        cur.code = cur.code .. line .. "\n"
      end
    else
      local lang = line:match("^```(%w*)")
      if lang then
        cur = { lang = lang, code = "", line = n, skip = prev:match("^<!%-%- readme%-example: skip") ~= nil }
      end
      if line:match("%S") then prev = line end
    end
  end
  return out
end

local function squash(s) return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end

--- The expectations written in comments: `# -> TEXT` (sh) or `--> TEXT` (lua).
local function expectations(block)
  local out = {}
  local pattern = block.lang == "lua" and "%-%->%s*(.-)%s*$" or "#%s*%->%s*(.-)%s*$"
  for line in block.code:gmatch("[^\n]+") do
    local want = line:match(pattern)
    if want and want ~= "" then out[#out + 1] = squash(want) end
  end
  return out
end

local function run_block(block)
  local tmp = files.tmpdir()
  assert(os.execute("mkdir -p " .. q(tmp .. "/bin") .. " " .. q(tmp .. "/work")))
  files.write(tmp .. "/bin/aqstore", "#!/bin/sh\nexec lua5.4 " .. q(repo .. "/scripts/aqstore") .. ' "$@"\n')
  assert(os.execute("chmod +x " .. q(tmp .. "/bin/aqstore")))
  local script = tmp .. "/example." .. block.lang
  files.write(script, block.code)
  local interp = block.lang == "lua" and "lua5.4" or "sh -e"
  local cmd = string.format("cd %s && PATH=%s:\"$PATH\" LUA_PATH=%s LUA_CPATH=%s %s %s </dev/null 2>&1",
    q(tmp .. "/work"), q(tmp .. "/bin"), q(repo .. "/lua/?.lua;" .. repo .. "/lua/?/init.lua;;"),
    q(repo .. "/build/?.so;;"), interp, q(script))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  files.rmtree(tmp)
  return ok, code, out
end

describe("README examples", function()
  local ran = { sh = 0, lua = 0 }
  for _, doc in ipairs(DOCS) do
    local text = assert(files.read(repo .. "/" .. doc))
    for _, b in ipairs(blocks(text)) do
      if (b.lang == "sh" or b.lang == "lua") and not b.skip then
        if doc == "README.md" then ran[b.lang] = ran[b.lang] + 1 end
        it(string.format("%s:%d (%s) runs as pasted", doc, b.line, b.lang), function()
          local ok, code, out = run_block(b)
          assert(ok, string.format("exit %s:\n%s", tostring(code), out))
          local got = squash(out)
          for _, want in ipairs(expectations(b)) do
            assert(got:find(want, 1, true), "expected output " .. want .. " in:\n" .. out)
          end
        end)
      end
    end
  end

  it("the README has a shell and a Lua example that run", function()
    assert.is_true(ran.sh >= 1)
    assert.is_true(ran.lua >= 1)
  end)

  it("every fenced block says its language (sh, lua, or text for output)", function()
    for _, doc in ipairs(DOCS) do
      for _, b in ipairs(blocks(assert(files.read(repo .. "/" .. doc)))) do
        assert(b.lang ~= "", doc .. ":" .. b.line .. ": fence without a language")
      end
    end
  end)
end)

describe("the README", function()
  it("is a front door: at most about 10 KB", function()
    local text = assert(files.read(repo .. "/README.md"))
    assert.is_true(#text <= 10 * 1024, #text .. " bytes")
  end)

  it("links only to docs that exist", function()
    local text = assert(files.read(repo .. "/README.md"))
    for target in text:gmatch("%]%(([^)#]+)[^)]*%)") do
      if not target:match("^%a+://") then
        assert(io.open(repo .. "/" .. target), "README links to missing " .. target)
      end
    end
  end)
end)
