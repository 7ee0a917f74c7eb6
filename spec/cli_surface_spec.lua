-- The everyday command line (issue 14 item 5): --version, help CMD, a missing operand
-- prints that subcommand's usage, every --help has an example, shell completion generated
-- by argparse, and --json on every read command.
local run = require "support.aqstore_run"
local cli = require "actionqueue.storage.cli"

describe("aqstore --version", function()
  it("prints the package version and exits 0", function()
    local r = run.cli({ "--version" })
    assert.equal(0, r.code)
    local version = require("actionqueue.storage")._VERSION
    assert.equal("aqstore " .. version .. " (actionqueue-storage, " .. _VERSION .. ")\n", r.out)
  end)

  it("is listed in the top-level help", function()
    assert.matches("--version", run.cli({ "--help" }).out, 1, true)
  end)
end)

describe("aqstore help CMD", function()
  it("prints that command's help, the same as CMD --help", function()
    local r = run.cli({ "help", "check" })
    assert.equal(0, r.code)
    assert.matches("^Usage: aqstore check ", r.out)
    assert.equal(run.cli({ "check", "--help" }).out, r.out)
  end)

  it("without a command prints the top-level help", function()
    local r = run.cli({ "help" })
    assert.equal(0, r.code)
    assert.matches("^Usage: aqstore ", r.out)
    assert.matches("Commands:", r.out, 1, true)
  end)

  it("rejects an unknown command with exit 2", function()
    local r = run.cli({ "help", "nope" })
    assert.equal(2, r.code)
    assert.matches("unknown command 'nope'", r.err, 1, true)
  end)
end)

describe("a missing operand", function()
  for _, c in ipairs { { "check" }, { "inspect" }, { "verify" }, { "rewrite", "in.snap" }, { "diff", "a.snap" } } do
    it("prints the usage of `" .. table.concat(c, " ") .. "`, not the top-level one", function()
      local r = run.cli(c)
      assert.equal(2, r.code)
      assert.matches("^Usage: aqstore " .. c[1] .. " ", r.err)
      assert.matches("aqstore: error: missing argument", r.err, 1, true)
      assert.equal("", r.out)
    end)
  end

  it("an unknown option names the subcommand's usage too", function()
    local r = run.cli({ "check", "--nope", "x" })
    assert.equal(2, r.code)
    assert.matches("^Usage: aqstore check ", r.err)
  end)

  it("an unknown command prints the top-level usage", function()
    local r = run.cli({ "nope" })
    assert.equal(2, r.code)
    assert.matches("^Usage: aqstore %[", r.err)
  end)
end)

describe("every subcommand's --help", function()
  local names = {}
  for _, n in ipairs(cli.commands) do names[#names + 1] = n end
  names[#names + 1] = "help"
  names[#names + 1] = "completion"
  for _, name in ipairs(names) do
    it("shows an example: " .. name, function()
      local r = run.cli({ name, "--help" })
      assert.equal(0, r.code)
      assert.matches("\nExamples?:\n  aqstore " .. name, r.out)
    end)
  end
end)

describe("every nested subcommand's --help", function()
  it("shows an example (wal dump, batch merge, ...)", function()
    local n = 0
    for _, name in ipairs(cli.commands) do
      local help = run.cli({ name, "--help" }).out
      local section = help:match("\nCommands:\n(.-)\n\n") or ""
      for sub in section:gmatch("\n?%s+([%w%-]+)%s%s+[^\n]*") do
        local r = run.cli({ name, sub, "--help" })
        assert.equal(0, r.code, name .. " " .. sub)
        assert.matches("\nExamples?:\n  aqstore " .. name .. " ", r.out)
        n = n + 1
      end
    end
    assert.is_true(n >= 5)
  end)
end)

describe("aqstore completion", function()
  for shell, marker in pairs { bash = "complete %-F", zsh = "#compdef aqstore", fish = "complete %-c aqstore" } do
    it("prints a " .. shell .. " script that knows every command", function()
      local r = run.cli({ "completion", shell })
      assert.equal(0, r.code)
      assert.matches(marker, r.out)
      for _, name in ipairs(cli.commands) do assert.matches(name, r.out, 1, true) end
    end)
  end

  it("the bash script is valid bash", function()
    local r = run.cli({ "completion", "bash" })
    local f = assert(io.popen("bash -n 2>&1", "w"))
    f:write(r.out)
    assert.is_true(f:close())
  end)

  it("bash completes the command names after sourcing the script", function()
    local r = run.cli({ "completion", "bash" })
    local f = assert(io.popen("bash -c 'source /dev/stdin; complete -p aqstore' >/dev/null 2>&1", "w"))
    f:write(r.out)
    assert.is_true(f:close())
  end)

  it("rejects an unknown shell", function()
    assert.equal(2, run.cli({ "completion", "tcsh" }).code)
  end)
end)

describe("read commands", function()
  for _, name in ipairs { "check", "verify", "validate", "inspect", "show", "diff", "stats", "recover" } do
    it("take --json: " .. name, function()
      assert.matches("%-%-json", run.cli({ name, "--help" }).out)
    end)
  end
end)
