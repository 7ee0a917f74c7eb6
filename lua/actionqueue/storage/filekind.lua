--- What a file looks like, from its first bytes (like `file(1)`), for helpful errors.
-- The snapshot loader reports a JSON file as `Incompatible snapshot version: expected 4,
-- found 538970747` (the bytes `{   ` read as a frame version); the command line adds a
-- line saying what the file seems to be and which command fits.
-- @module actionqueue.storage.filekind
local filekind = {}

local SNAPSHOT_FRAME_VERSION = 4 -- snapshot-format.md §1.1
local WAL_RECORD_VERSION = 5     -- wal-format.md §2
local HEADER = 12                -- both frames: version, length, crc (u32 LE each)
local SNIFF_BYTES = 4096

--- Per kind: what the file looks like, and the commands that fit it (`%s` is the file).
filekind.KINDS = {
  snapshot = { description = "a snapshot file (frame v4)" },
  empty = { description = "an empty file (0 bytes)",
    hint = "the engine reads a 0-byte snapshot file as no snapshot; make one with `aqstore build SOURCE %s`" },
  wal = { description = "looks like a write-ahead log (WAL v5 records), not a snapshot",
    hint = "try `aqstore wal verify %s` or `aqstore wal dump %s`" },
  json = { description = "looks like JSON text, not a snapshot file",
    hint = "to check it as a snapshot document: `aqstore validate %s`; "
      .. "to make a snapshot: `aqstore build %s OUT.snap`" },
  jsonl = { description = "looks like JSON Lines text (one document per line), not a snapshot file",
    hint = "snapshot JSON goes through `aqstore validate FILE.json` or `aqstore build FILE.json OUT.snap`; "
      .. "WAL records as JSON are what `aqstore wal dump --json` prints" },
  lua = { description = "looks like Lua source, not a snapshot file",
    hint = "to check the table it returns: `aqstore validate %s`; to make a snapshot: `aqstore build %s OUT.snap`" },
  unknown = { description = "not a snapshot file (unknown content)" },
}

local function u32le(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return a | (b << 8) | (c << 16) | (d << 24)
end

local function classify(head, size)
  if size == 0 then return "empty" end
  if #head >= HEADER then
    local version, length = u32le(head, 1), u32le(head, 5)
    if version == SNAPSHOT_FRAME_VERSION then return "snapshot" end
    if version == WAL_RECORD_VERSION and HEADER + length <= size then
      -- A JSON object behind the header is a snapshot frame with the wrong version;
      -- a WAL record's payload is postcard.
      local payload = head:sub(HEADER + 1, HEADER + length)
      if #payload == length and payload:match("^%s*{") and payload:match("}%s*$") then return "snapshot" end
      return "wal"
    end
  end
  if head:sub(1, 4) == "\27Lua" then return "lua" end
  local text = head:gsub("^\239\187\191", "")
  if text:match("^#!") and text:match("^#![^\n]*lua") then return "lua" end
  local first = text:match("^%s*(.)")
  if first == "{" or first == "[" then
    -- two or more lines each holding one object: JSON Lines
    local objects = 0
    for line in text:gmatch("[^\n]+") do
      if line:match("^%s*{.*}%s*$") then objects = objects + 1 else objects = -1; break end
    end
    if objects >= 2 then return "jsonl" end
    return "json"
  end
  local stripped = text:gsub("^%s+", "")
  if stripped:match("^%-%-") or stripped:match("^return[%s{(\"']") or stripped:match("^local%s") then
    return "lua"
  end
  return "unknown"
end

--- Sniffs `path`.
-- @tparam string path
-- @treturn[1] table `{kind = "snapshot"|"empty"|"wal"|"json"|"jsonl"|"lua"|"unknown",
--   description = text}`
-- @return[2] nil when the file cannot be opened (missing, unreadable)
function filekind.sniff(path)
  -- never blocks: a FIFO, device or socket is refused (docs/safety.md)
  local f = require("actionqueue.storage.fsutil").open_input(path)
  if not f then return nil end
  local ok, head = pcall(f.read, f, SNIFF_BYTES)
  local size = ok and f:seek("end") or nil
  f:close()
  if not ok or not size then return nil end -- a directory, for instance
  local kind = classify(head or "", size)
  return { kind = kind, description = filekind.KINDS[kind].description }
end

--- One line for a user who gave `path` where a snapshot file was expected: what the file
-- looks like and which command fits; nil for a snapshot frame, an unknown or unreadable file.
-- @tparam string path
-- @treturn string|nil
function filekind.hint(path)
  local k = filekind.sniff(path)
  if not k then return nil end
  local hint = filekind.KINDS[k.kind].hint
  if not hint then return nil end
  return path .. ": " .. k.description .. "; " .. hint:gsub("%%s", (path:gsub("%%", "%%%%")))
end

return filekind
