-- Every WAL golden fixture (manifest kinds other than "recovery") reaches its manifest
-- outcome through the CLI: `wal dump --json` lines (stdout) + status (stderr) + exit code, `wal open
-- --strict` / `--repair` output and file_after (on a copy); and encode(decode(record))
-- is byte-identical wherever the manifest says reencode_identical.
local fixtures = require "spec.support.fixtures"
local files = require "support.files"
local aqstore = require "support.aqstore_run"
local core = require "actionqueue.storage.core"
local codec = require "actionqueue.storage.wal.codec"
local reader = require "actionqueue.storage.wal.reader"

-- Runs aqstore; returns stdout, exit code and stderr.
local function run(...)
  local r = aqstore.cli { ... }
  return r.out, r.code, r.err
end

local function split(s)
  local lines = {}
  for line in s:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines
end

local function copy(src)
  local dst = os.tmpname()
  files.write(dst, fixtures.read(src) or "")
  return dst
end

local available = fixtures.available()
local manifest = available and fixtures.manifest("wal") or {}

describe("WAL golden fixtures", function()
  if not available then
    pending("shared fixtures not found at " .. fixtures.root)
    return
  end

  local count = 0
  for _, e in ipairs(manifest) do
    if e.kind ~= "recovery" then
      count = count + 1
      local path = fixtures.path("wal", e.file)

      it("dump --json " .. e.file, function()
        -- stdout is JSON Lines only; the reference's status line is stderr's only line
        local out, code, err = run("wal", "dump", "--json", path)
        local lines = split(out)
        assert.equal(e.dump.status .. "\n", err)
        assert.equal(e.dump.exit_code, code)
        assert.equal(e.dump.events, #lines)
        if type(e.dump.jsonl) == "string" then
          local expected = split(assert(fixtures.read(fixtures.path("wal", e.dump.jsonl))))
          assert.equal(#expected, #lines)
          for i = 1, #expected do
            if expected[i] ~= lines[i] then assert.equal(expected[i], lines[i], "line " .. i) end
          end
        end
      end)

      for _, mode in ipairs { "strict", "repair" } do
        it("open --" .. mode .. " " .. e.file, function()
          local exp = e["open_" .. mode]
          local tmp = copy(path)
          local out, code = run("wal", "open", "--" .. mode, tmp)
          local after = fixtures.read(tmp)
          os.remove(tmp)
          assert.equal(exp.stdout .. "\n", out)
          assert.equal(exp.exit_code, code)
          local original = assert(fixtures.read(path))
          if exp.file_after == "unchanged" then
            assert.is_true(after == original, "file changed")
          else
            local n = tonumber(exp.file_after:match("^truncated to (%d+) bytes"))
            assert.equal(n, #after)
            assert.is_true(after == original:sub(1, n), "not a prefix")
          end
        end)
      end

      it("re-encodes " .. e.file, function()
        local data = assert(fixtures.read(path))
        local rebuilt = {}
        local s = reader.scan(path, nil, function(_, ev)
          rebuilt[#rebuilt + 1] = assert(codec.encode_record(ev))
        end)
        local same = table.concat(rebuilt) == data:sub(1, s.valid_bytes)
        assert.equal(e.reencode_identical, same)
      end)
    end
  end

  it("covers the manifest", function()
    assert.is_true(count >= 80, "only " .. count .. " WAL fixtures")
    assert.is_function(core.frames)
  end)
end)
