-- Seeds the fuzz corpora from the shared fixtures (seed corpora, never edited):
--   frame          every snapshot file and every WAL record frame, whole
--   snapshot_json  snapshot payloads (frame header stripped; frame-kind cases skipped)
--   snapshot_verdict  the same payloads (the verdict/table differential)
--   wal_postcard   WAL record payloads (every frame of every *.wal)
--   wal_stream     whole WAL files (first 64 KiB)
--   snapshot_transcode  snapshot payloads, and each valid/compat one respelled: pretty
--                  printed, keys shuffled (seeded, deterministic), both
--   wal_replay     whole WAL files (first 64 KiB; the recovery fixtures' WALs included)
--   snapshot_rules the snapshot payloads (as snapshot_verdict)
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

-- A non-canonical respelling of a JSON text: scalars keep their exact spelling, objects'
-- keys are shuffled when `shuffle`, and `pretty` adds newlines and indentation.
-- Returns nil when the text is not JSON this tiny reader understands.
local function respell(text, pretty, shuffle)
  local pos = 1
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function str()
    local i = pos + 1
    while true do
      local c = text:sub(i, i)
      if c == "" then error("eof") end
      if c == "\\" then i = i + 2 elseif c == '"' then break else i = i + 1 end
    end
    local s0 = text:sub(pos, i)
    pos = i + 1
    return s0
  end
  local function list(open, close, keyed)
    pos = pos + 1
    local items = {}
    ws()
    if text:sub(pos, pos) == close then pos = pos + 1 return { open = open, close = close, items = items } end
    while true do
      ws()
      local key
      if keyed then key = str() ws() assert(text:sub(pos, pos) == ":") pos = pos + 1 ws() end
      items[#items + 1] = { key = key, value = value() }
      ws()
      local c = text:sub(pos, pos)
      pos = pos + 1
      if c == close then break end
      assert(c == ",", "bad separator")
    end
    return { open = open, close = close, items = items, keyed = keyed }
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then return list("{", "}", true) end
    if c == "[" then return list("[", "]", false) end
    if c == '"' then return str() end
    local s0 = text:match("^[%w%.%+%-]+", pos)
    assert(s0, "bad scalar")
    pos = pos + #s0
    return s0
  end
  local ok, tree = pcall(value)
  if not ok then return nil end
  local rnd = 12345
  local function nextrand(k) rnd = (rnd * 1103515245 + 12345) % 2147483648 return rnd % k + 1 end
  local parts = {}
  local function emit_v(v, depth)
    if type(v) == "string" then parts[#parts + 1] = v return end
    local items = v.items
    if shuffle and v.keyed then
      for i = #items, 2, -1 do local j = nextrand(i) items[i], items[j] = items[j], items[i] end
    end
    parts[#parts + 1] = v.open
    for i, it in ipairs(items) do
      if i > 1 then parts[#parts + 1] = "," end
      if pretty then parts[#parts + 1] = "\n" .. string.rep("  ", depth + 1) end
      if it.key then parts[#parts + 1] = it.key .. (pretty and ": " or ":") end
      emit_v(it.value, depth + 1)
    end
    if pretty and #items > 0 then parts[#parts + 1] = "\n" .. string.rep("  ", depth) end
    parts[#parts + 1] = v.close
  end
  emit_v(tree, 0)
  return table.concat(parts)
end

for _, p in ipairs(files(fixtures .. "/snapshot", "*.snap")) do
  local d = read(p)
  local base = p:match("([^/]+)$")
  emit("frame", "snap_" .. base, d)
  if #d >= 12 and not base:match("^frame_") then
    emit("snapshot_json", base, d:sub(13))
    emit("snapshot_verdict", base, d:sub(13))
    emit("snapshot_transcode", base, d:sub(13))
    emit("snapshot_rules", base, d:sub(13))
    if base:match("^valid_") or base:match("^compat_") then
      for _, v in ipairs { { "pretty", true, false }, { "shuffled", false, true },
                           { "pretty_shuffled", true, true } } do
        local r = respell(d:sub(13), v[2], v[3])
        if r and #r <= 65536 then emit("snapshot_transcode", v[1] .. "_" .. base, r) end
      end
    end
  end
end
for _, p in ipairs(files(fixtures .. "/wal", "*.wal")) do
  local d = read(p)
  -- recovery cases all hold a wal/actionqueue.wal: name seeds by their relative path
  local base = p:sub(#fixtures + 2):gsub("/", "_")
  emit("wal_stream", base, d:sub(1, 65536))
  emit("wal_replay", base, d:sub(1, 65536))
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
