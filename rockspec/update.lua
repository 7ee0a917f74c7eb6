--- Regenerates the module list of the rockspec from the tree.
-- luarocks' builtin backend wants every module named; keeping that list by hand goes
-- stale the day somebody adds a file, so it is derived from csrc/*.c and lua/**/*.lua.
-- Usage: lua5.4 rockspec/update.lua [--check] [rockspec]
-- With --check nothing is written; the exit status says whether the file is current.
local lfs = require "lfs"

local update = {}

local function walk(dir, out)
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then
      local p = dir .. "/" .. name
      local mode = lfs.attributes(p, "mode")
      if mode == "directory" then walk(p, out)
      elseif mode == "file" then out[#out + 1] = p end
    end
  end
  return out
end

--- Sorted C sources (`csrc/*.c`) under `root`.
function update.c_sources(root)
  local out = {}
  for name in lfs.dir(root .. "/csrc") do
    if name:match("%.c$") then out[#out + 1] = "csrc/" .. name end
  end
  table.sort(out)
  return out
end

--- Sorted list of `{module, file}` for every `lua/**/*.lua` under `root`.
function update.lua_modules(root)
  local out = {}
  for _, p in ipairs(walk(root .. "/lua", {})) do
    local rel = p:sub(#root + 2)
    local mod = rel:match("^lua/(.*)%.lua$")
    if mod then
      mod = mod:gsub("/init$", ""):gsub("/", ".")
      out[#out + 1] = { mod, rel }
    end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

--- The text that belongs between the GENERATED markers.
function update.generated(root)
  local lines = {}
  local srcs = {}
  for _, s in ipairs(update.c_sources(root)) do srcs[#srcs + 1] = string.format("%q", s) end
  lines[#lines + 1] = '    ["actionqueue.storage.core"] = {'
  lines[#lines + 1] = "      sources = {"
  for _, s in ipairs(srcs) do lines[#lines + 1] = "        " .. s .. "," end
  lines[#lines + 1] = "      },"
  lines[#lines + 1] = '      defines = { "_GNU_SOURCE" },'
  lines[#lines + 1] = '      libraries = { "z" },'
  lines[#lines + 1] = '      incdirs = { "$(ZLIB_INCDIR)" },'
  lines[#lines + 1] = '      libdirs = { "$(ZLIB_LIBDIR)" },'
  lines[#lines + 1] = "    },"
  for _, m in ipairs(update.lua_modules(root)) do
    lines[#lines + 1] = string.format('    [%q] = %q,', m[1], m[2])
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Returns the rockspec text with a fresh generated block.
function update.render(text, root)
  local head, tail = text:match("^(.-    %-%- BEGIN GENERATED[^\n]*\n).-(    %-%- END GENERATED.*)$")
  assert(head, "rockspec has no GENERATED markers")
  return head .. update.generated(root) .. tail
end

if arg and arg[0] and arg[0]:match("update%.lua$") then
  local check = arg[1] == "--check"
  local path = arg[check and 2 or 1] or "rockspec/actionqueue-storage-scm-1.rockspec"
  local root = path:match("^(.*)/rockspec/[^/]+$") or "."
  local f = assert(io.open(path, "rb"))
  local old = f:read("a")
  f:close()
  local new = update.render(old, root)
  if new == old then os.exit(0) end
  if check then
    io.stderr:write(path, " is out of date: run `make rockspec`\n")
    os.exit(1)
  end
  f = assert(io.open(path .. ".new", "wb"))
  f:write(new)
  f:close()
  assert(os.rename(path .. ".new", path))
  print("updated " .. path)
end

return update
