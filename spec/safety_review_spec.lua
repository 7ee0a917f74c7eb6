-- Issue 13 review: the cases a demanding user or an attacker tried by hand after the
-- safety work landed, each one failing on main before its fix.
--   * WAL commands on a FIFO, a device, a socket: refused at once (defect 10 for the WAL
--     side: `wal verify/dump/stats/open FIFO` hung, `wal repair FIFO` said ENOENT,
--     `/dev/zero` was read as a WAL); `wal open` names the file and the step.
local files = require "support.files"
local aqstore = require "support.aqstore_run"

local sandbox = require "actionqueue.storage.sandbox"

local q = files.q

-- Helper commands (mkfifo, python3, timeout) run without the sanitizer preloads of
-- `make sanitize` (their own leaks are not ours); aqstore itself keeps them.
local PRELOAD = os.getenv("LD_PRELOAD") or ""
local function sh(cmd) return os.execute("env -u LD_PRELOAD " .. cmd) end

-- Runs `aqstore ARGS` under `timeout`: a hang shows as exit 124, not a stuck suite.
local function cli_timed(seconds, args)
  local parts = {}
  for i, a in ipairs(args) do parts[i] = q(a) end
  local out = os.tmpname()
  local cmd = string.format("env -u LD_PRELOAD timeout %d env LD_PRELOAD=%s lua5.4 %s %s </dev/null >%s 2>&1",
    seconds, q(PRELOAD), q(aqstore.aqstore), table.concat(parts, " "), q(out))
  local _, _, code = os.execute(cmd)
  local text = files.read(out) or ""
  os.remove(out)
  return { code = code, out = text }
end

describe("WAL commands on non-regular files (issue 13 defect 10, WAL side)", function()
  local tmp
  before_each(function() tmp = files.tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  local function inputs()
    local fifo, sock = tmp .. "/fifo.wal", tmp .. "/sock.wal"
    assert(sh("mkfifo " .. q(fifo)))
    assert(sh("python3 -c " .. q("import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])")
      .. " " .. q(sock)))
    return { { fifo, "FIFO" }, { "/dev/zero", "character device" }, { sock, "socket" } }
  end

  for _, cmd in ipairs({ "verify", "dump", "stats", "open", "repair" }) do
    it("wal " .. cmd .. " refuses a FIFO, a device and a socket at once, naming the file", function()
      for _, input in ipairs(inputs()) do
        local r = cli_timed(10, { "wal", cmd, input[1] })
        assert.are_not.equal(124, r.code, "wal " .. cmd .. " " .. input[1] .. " hung")
        assert.are.equal(1, r.code, r.out)
        assert.matches("not a regular file", r.out, 1, true)
        assert.matches(input[1], r.out, 1, true)
        assert.matches(input[2], r.out, 1, true)
      end
    end)
  end
end)
describe("sandbox: work done in C counts against the budget (issue 13 defect 7)", function()
  -- Each body runs a few VM instructions per iteration while C does megabytes of
  -- copying or billions of pattern steps: the instruction count alone never trips.
  local hangs = {
    ["concatenation of a big string in a loop"] =
      'local s = ("x"):rep(5e7); for _ = 1, 1e8 do local t = s .. "y" end',
    ["string.rep of a big string in a loop"] =
      'for _ = 1, 1e8 do local t = ("x"):rep(5e7) end',
    ["table.concat of a big table in a loop"] =
      'local t = {} for i = 1, 1e6 do t[i] = "abcdefgh" end for _ = 1, 1e8 do local x = table.concat(t) end',
    ["a backtracking pattern just under the per-call bound, in a loop"] =
      'local s = ("a"):rep(20000); for _ = 1, 1e8 do s:find(".-x") end',
  }
  for what, body in pairs(hangs) do
    it("stops " .. what .. " with a budget error naming the file", function()
      local t0 = os.time()
      local v, err = sandbox.run(body, "jobs.lua", { seconds = 2 })
      assert.is_nil(v)
      assert.are.equal("BudgetExceeded", err.kind, tostring(err))
      assert.matches("^jobs%.lua: ", tostring(err))
      assert.is_true(os.time() - t0 < 60, "took " .. (os.time() - t0) .. " s")
    end)
  end

  it("still runs a data file that allocates and matches a lot, but boundedly", function()
    local v = assert(sandbox.run([[
      local out = {}
      for i = 1, 20000 do
        local line = ("task-%05d, payload %s"):format(i, ("x"):rep(100))
        out[#out + 1] = line:match("^(task%-%d+)")
      end
      return #out
    ]], "ok.lua"))
    assert.are.equal(20000, v)
  end)
end)
