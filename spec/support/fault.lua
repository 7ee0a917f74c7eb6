--- Runs Lua snippets in a child `lua5.4` under the LD_PRELOAD fault shim
-- (spec/support/faultshim.c documents the AQS_FAULT* environment contract).
-- LD_PRELOAD only takes effect at process start, hence one child per case.
local fault = {}

local root = (debug.getinfo(1, "S").source:sub(2):match("^(.*)/spec/support/[^/]*$")) or "."
local cwd = assert(io.popen("pwd")):read("l")
if root:sub(1, 1) ~= "/" then root = cwd .. "/" .. root end

-- Children may chdir: hand them absolute search paths.
local function absolute(paths)
  local out = {}
  for entry in paths:gmatch("[^;]+") do
    out[#out + 1] = (entry:sub(1, 1) == "/" or entry:sub(1, 1) == ".") and entry or (cwd .. "/" .. entry)
  end
  return table.concat(out, ";") .. ";;"
end
fault.shim = os.getenv("AQS_FAULTSHIM") or (root .. "/build/faultshim.so")
fault.lua = os.getenv("AQS_LUA") or "lua5.4"

local function shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
fault.shq = shq

--- package.cpath with every entry made absolute (for children that chdir).
function fault.cpath() return absolute(package.cpath) end

--- True when the shim has been built.
function fault.available()
  local f = io.open(fault.shim, "rb")
  if f then f:close() return true end
  return false
end

--- Runs `code` in a child process.
-- @tparam string code Lua chunk; whatever it prints is returned
-- @tparam[opt] table env extra environment (AQS_FAULT, AQS_FAULT_PATH, ...)
-- @tparam[opt] boolean no_shim run without the shim (baseline)
-- @treturn string stdout+stderr of the child
-- @treturn boolean whether the child exited with status 0
function fault.run(code, env, no_shim)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. shq(v) end
  if not no_shim then
    -- Keep whatever is preloaded already (the sanitizer runtimes under `make sanitize`).
    -- valgrind's own preloads only work inside valgrind; the children run natively.
    local keep = {}
    for lib in (os.getenv("LD_PRELOAD") or ""):gmatch("[^%s:]+") do
      if not lib:find("vgpreload", 1, true) then keep[#keep + 1] = lib end
    end
    keep[#keep + 1] = fault.shim
    local pre = table.concat(keep, " ")
    parts[#parts + 1] = "LD_PRELOAD=" .. shq(pre)
  end
  local prelude = string.format("package.path=%q; package.cpath=%q; ",
    absolute(package.path), absolute(package.cpath))
  local cmd = table.concat(parts, " ") .. " " .. fault.lua .. " -e " .. shq(prelude .. code) .. " 2>&1"
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok == true
end

--- Call counts of a scenario: runs it once with AQS_FAULT_COUNTS and no faults.
-- @treturn table map function name -> count
function fault.counts(code, env)
  local tmp = os.tmpname()
  local e = { AQS_FAULT_COUNTS = tmp }
  for k, v in pairs(env or {}) do e[k] = v end
  local out, ok = fault.run(code, e)
  assert(ok, out)
  local counts = {}
  for line in io.lines(tmp) do
    local name, n = line:match("^(%S+) (%d+)$")
    if name then counts[name] = tonumber(n) end
  end
  os.remove(tmp)
  return counts
end

--- A fresh empty directory under /tmp; returns its path.
function fault.tmpdir(tag)
  local p = assert(io.popen("mktemp -d /tmp/aqs-" .. (tag or "t") .. ".XXXXXX"))
  local dir = p:read("l")
  p:close()
  return dir
end

--- Removes a directory tree made by `tmpdir`.
function fault.rmdir(dir)
  assert(dir:match("^/tmp/aqs%-"), "refusing to remove " .. dir)
  os.execute("rm -rf " .. shq(dir))
end

--- Sorted file names in `dir`.
function fault.ls(dir)
  local names = {}
  local p = assert(io.popen("ls -A " .. shq(dir)))
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

return fault
