--- Locates the shared golden fixtures and reads their manifests.
-- Search order: `AQ_FIXTURES`, `<repo>/../shared/fixtures` (CI lays shared/ beside the
-- clone), then `/work/shared/fixtures` (the development machines' copy, so that a
-- throw-away clone anywhere still finds them).
local cjson = require "cjson"

local fixtures = {}

local function repo_root()
  local src = debug.getinfo(1, "S").source:sub(2)
  local dir = src:match("^(.*)/spec/support/[^/]*$")
  if not dir or dir == "" then dir = "." end
  return dir
end

local function first_existing(candidates)
  for _, dir in ipairs(candidates) do
    local f = io.open(dir .. "/README.md", "rb")
    if f then
      f:close()
      return dir
    end
  end
  return candidates[1]
end

fixtures.root = os.getenv("AQ_FIXTURES") or first_existing {
  repo_root() .. "/../shared/fixtures",
  "/work/shared/fixtures",
}
fixtures.repo = repo_root()

--- Reads a whole file (binary) or returns nil, err.
function fixtures.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

--- Path of a fixture file, relative to the fixtures root.
function fixtures.path(...)
  return table.concat({ fixtures.root, ... }, "/")
end

--- Decoded manifest of a fixture folder ("snapshot" or "wal").
function fixtures.manifest(folder)
  local data = assert(fixtures.read(fixtures.path(folder, "manifest.json")))
  return cjson.decode(data)
end

--- True when the shared fixtures are present (they live outside the repo).
function fixtures.available()
  return fixtures.read(fixtures.path("README.md")) ~= nil
end

return fixtures
