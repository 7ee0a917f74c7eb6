-- `make demo` (examples/demo.sh) must keep working from a fresh clone: it runs every step
-- on bundled data (examples/*.lua) and exits 0; the key lines of each step are checked here.
local fixtures = require "support.fixtures"
local files = require "support.files"

local function run_demo()
  local out = os.tmpname()
  -- Without the sanitizer runtimes that `make sanitize` preloads: the demo's shell tools
  -- (mktemp, dirname...) are not ours, and LeakSanitizer fails them at exit.
  local cmd = string.format("cd %s && env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS sh examples/demo.sh >%s 2>&1",
    files.q(fixtures.repo), files.q(out))
  local _, _, code = os.execute(cmd)
  local text = files.read(out) or ""
  os.remove(out)
  return code, text
end

describe("make demo", function()
  local code, out
  setup(function() code, out = run_demo() end)

  local function has(line)
    assert(out:find(line, 1, true), "demo output lacks: " .. line .. "\n--- output:\n" .. out)
  end

  it("exits 0", function()
    assert.equal(0, code, out)
  end)

  it("builds, checks and validates the example queue", function()
    has("wrote ")
    has("OK tasks=4 runs=5")
    has("(exit code 1: the file is invalid, as intended)")
  end)

  it("writes, dumps, verifies, recovers and compacts the bundled WAL", function()
    has("END records=15 valid_bytes=764")
    has("OK records=15 bytes=764 last_sequence=15")
    has("wal_replay_events_applied=15 latest_sequence=15")
    has("runs by state: Ready=1 Completed=1")
    has("OK wal_sequence=15 tasks=2 runs=2 snapshot_bytes=")
    has("OK tasks=2 runs=2")
  end)

  it("repairs the torn tail and keeps the cut bytes", function()
    has("CORRUPT offset=764 kind=incomplete_header")
    has("(exit code 1: the WAL has a damaged tail, as intended)")
    has("REPAIRED truncated to 764 bytes")
    has("actionqueue.wal.cut-764")
    local _, n = out:gsub("OK records=15 bytes=764 last_sequence=15", "")
    assert.equal(2, n)
  end)

  it("runs the batch: every job ok but the corrupt file", function()
    has("(exit code 1: one job failed: corrupt.snap, as intended)")
    has("ok=5 failed=1 skipped=0 workers=2")
    has("FAILED check corrupt.snap")
  end)

  it("leaves no temp directory behind", function()
    local dir = out:match("(/[^ \n]*aqstore%-demo%.[%w]+)/")
    assert.is_not_nil(dir)
    assert.is_nil(io.open(dir .. "/queue.snap", "rb"))
  end)
end)
