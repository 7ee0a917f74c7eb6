--- The `aqstore` command line: argparse front end over the library.
-- Each command lives in `actionqueue.storage.cli.<name>` and exports
-- `register(parser)` (adds its argparse command) and `run(args)` (returns an exit code).
-- @module actionqueue.storage.cli
local cli = {}

--- Command modules, in the order `--help` lists them.
cli.commands = {
  "check", "verify", "validate", "inspect", "show", "dump", "build", "rewrite", "diff", "stats",
  "repl", "wal", "recover", "compact", "batch",
}

local function load_command(name)
  local modname = "actionqueue.storage.cli." .. name
  local ok, mod = pcall(require, modname)
  if ok then return mod end
  -- A command whose module is not written yet is simply not offered.
  if type(mod) == "string" and mod:find("module '" .. modname .. "' not found", 1, true) then
    return nil
  end
  error(mod, 0)
end

--- Builds the argparse parser with every available command.
-- @treturn table parser
-- @treturn table map command name -> module
function cli.parser()
  local argparse = require "argparse"
  local parser = argparse("aqstore", "Read, write, check and repair ActionQueue snapshots and WALs.")
  parser:command_target("command")
  parser:require_command(true)
  local mods = {}
  for _, name in ipairs(cli.commands) do
    local mod = load_command(name)
    if mod then
      mod.register(parser)
      mods[name] = mod
    end
  end
  return parser, mods
end

--- Entry point: parses `argv` and runs the command.
-- @tparam table argv the script's `arg` table
-- @treturn integer exit code (0 ok, 1 bad file or difference, 2 usage error)
function cli.main(argv)
  local parser, mods = cli.parser()
  local args_list = {}
  for i = 1, #argv do args_list[i] = argv[i] end
  local ok, args = parser:pparse(args_list)
  if not ok then
    io.stderr:write(parser:get_usage(), "\n", "aqstore: error: ", tostring(args), "\n")
    return 2
  end
  local mod = mods[args.command]
  local code = mod.run(args)
  io.stdout:flush()
  return code or 0
end

return cli
