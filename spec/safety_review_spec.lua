-- Issue 13 review: the cases a demanding user or an attacker tried by hand after the
-- safety work landed, each one failing on main before its fix.
--   * WAL commands on a FIFO, a device, a socket: refused at once (defect 10 for the WAL
--     side: `wal verify/dump/stats/open FIFO` hung, `wal repair FIFO` said ENOENT,
--     `/dev/zero` was read as a WAL); `wal open` names the file and the step.
local files = require "support.files"
local aqstore = require "support.aqstore_run"

local q = files.q

local function sh(cmd) return os.execute(cmd) end

-- Runs `aqstore ARGS` under `timeout`: a hang shows as exit 124, not a stuck suite.
local function cli_timed(seconds, args)
  local parts = {}
  for i, a in ipairs(args) do parts[i] = q(a) end
  local out = os.tmpname()
  local cmd = string.format("timeout %d lua5.4 %s %s </dev/null >%s 2>&1", seconds,
    q(aqstore.aqstore), table.concat(parts, " "), q(out))
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
