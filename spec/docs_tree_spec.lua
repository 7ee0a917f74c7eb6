-- docs/ARCHITECTURE.md's folder tree is the map: every tracked module under lua/ and
-- csrc/ is on it (by its path, or by name on a `dir/*.lua` / `dir/<command>.lua` line),
-- and every file it names exists.
local fixtures = require "support.fixtures"
local files = require "support.files"

local repo = files.abs(fixtures.repo)
local PREFIX = "lua/actionqueue/storage/"

local function tree()
  local doc = assert(files.read(repo .. "/docs/ARCHITECTURE.md"))
  return assert(doc:match("## Folder tree%s*```\n(.-)```"), "no folder tree block")
end

local function tracked()
  local p = assert(io.popen("cd " .. files.q(repo) .. " && git ls-files lua csrc 2>/dev/null"))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- The name a tree line uses for a tracked file: csrc files by base name, Lua modules by
-- their path below lua/actionqueue/storage/.
local function tree_name(path)
  if path:sub(1, #PREFIX) == PREFIX then return path:sub(#PREFIX + 1) end
  return path:match("^csrc/(.+)$")
end

local function plain(s) return (s:gsub("%p", "%%%0")) end

describe("docs/ARCHITECTURE.md folder tree", function()
  local text, paths
  lazy_setup(function()
    text = tree()
    paths = tracked()
  end)

  it("lists every tracked module of lua/ and csrc/", function()
    if #paths == 0 then pending("not a git checkout") return end
    local missing = {}
    for _, path in ipairs(paths) do
      local name = tree_name(path)
      if name then
        local dir, base = name:match("^(.-)/?([^/]+)$")
        local found = text:find("%f[%w_/]" .. plain(name) .. "%f[^%w_]")
        if not found and dir ~= "" then
          -- a `dir/*.lua` or `dir/<command>.lua` line naming the file by its base name
          local group = text:find(plain(dir) .. "/[*<]")
          found = group and (text:find("%f[%w_]" .. plain(base) .. "%f[^%w_]")
            or text:find("%f[%w_]" .. plain(base:gsub("%.lua$", "")) .. "%f[^%w_.]"))
        end
        if not found then missing[#missing + 1] = path end
      end
    end
    assert.same({}, missing)
  end)

  it("names no file that does not exist", function()
    if #paths == 0 then pending("not a git checkout") return end
    local known = {}
    for _, path in ipairs(paths) do known[tree_name(path) or path] = true end
    local stale = {}
    for line in text:gmatch("[^\n]+") do
      local name = line:match("^  (%S+%.[ch])%s") or line:match("^  (%S+%.lua)%s")
      if name and not name:find("[*<]") and not known[name] then stale[#stale + 1] = name end
    end
    assert.same({}, stale)
  end)
end)
