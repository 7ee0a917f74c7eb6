-- Seeds the fuzz corpora from the shared fixtures (seed corpora, never edited):
--   frame          every snapshot file and every WAL record frame, whole
--   snapshot_json  snapshot payloads (frame header stripped; frame-kind cases skipped)
--   snapshot_verdict  the same payloads (the verdict/table differential)
--   wal_postcard   WAL record payloads (every frame of every *.wal)
--   wal_stream     whole WAL files (first 64 KiB)
-- Usage: lua5.4 fuzz/seed.lua FIXTURES_DIR OUT_DIR   (writes OUT_DIR/<target>/<name>)
local fixtures, out = arg[1], arg[2]
assert(fixtures and out, "usage: seed.lua FIXTURES OUT")

local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function files(dir, pattern)
  local list = {}
  local p = io.popen("find " .. sh(dir) .. " -type f -name " .. sh(pattern) .. " | sort")
  for l in p:lines() do list[#list + 1] = l end
  p:close()
  return list
end
local n = {}
local function emit(target, name, data)
  os.execute("mkdir -p " .. sh(out .. "/" .. target))
  local f = assert(io.open(out .. "/" .. target .. "/" .. name, "wb"))
  f:write(data)
  f:close()
  n[target] = (n[target] or 0) + 1
end
local function u32(s, i) return string.unpack("<I4", s, i) end

for _, p in ipairs(files(fixtures .. "/snapshot", "*.snap")) do
  local d = read(p)
  local base = p:match("([^/]+)$")
  emit("frame", "snap_" .. base, d)
  if #d >= 12 and not base:match("^frame_") then
    emit("snapshot_json", base, d:sub(13))
    emit("snapshot_verdict", base, d:sub(13))
  end
end
for _, p in ipairs(files(fixtures .. "/wal", "*.wal")) do
  local d = read(p)
  -- recovery cases all hold a wal/actionqueue.wal: name seeds by their relative path
  local base = p:sub(#fixtures + 2):gsub("/", "_")
  emit("wal_stream", base, d:sub(1, 65536))
  local off, k = 1, 0
  while off + 11 <= #d and k < 64 do
    local len = u32(d, off + 4)
    if off + 11 + len > #d then break end
    k = k + 1
    emit("frame", ("wal_%s_%d"):format(base, k), d:sub(off, off + 11 + len))
    emit("wal_postcard", ("%s_%d"):format(base, k), d:sub(off + 12, off + 11 + len))
    off = off + 12 + len
  end
end
for t, c in pairs(n) do print(("seed: %-14s %d files"):format(t, c)) end
