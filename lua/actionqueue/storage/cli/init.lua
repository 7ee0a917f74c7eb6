--- The `aqstore` command line: argparse front end over the library.
-- Each command lives in `actionqueue.storage.cli.<name>` and exports
-- `register(parser)` (adds its argparse command, with a description and an example in
-- the help epilog) and `run(args)` (returns an exit code).
--
-- Exit codes: 0 ok, 1 the file is bad or the files differ, 2 usage error.
--
-- Shared helpers for command modules (all optional to use):
--
-- * `cli.command(parser, name, description, example)` adds a command with the example
--   in its epilog; `cli.json_flag(cmd)` adds the standard `--json` flag;
-- * `cli.out(...)` writes a line to stdout; `cli.err(...)` writes `aqstore: ...` to stderr;
-- * `cli.fail(json, doc)` prints `ERR <doc.message>` (or `{ok: false, error: doc}`);
-- * `cli.json(doc)` prints one JSON document (via `inspect.json`: keys sorted, exact u64
--   through `json.raw`);
-- * `cli.color(style, text)` colours text ("ok", "bad", "warn", "head", "dim") only when
--   stdout is a terminal and `NO_COLOR` is unset;
-- * `cli.interpreter` is the Lua interpreter running the launcher (for `repl`).
-- @module actionqueue.storage.cli
local cli = {}

--- Command modules, in the order `--help` lists them.
cli.commands = {
  "check", "verify", "validate", "inspect", "show", "dump", "build", "rewrite", "diff", "stats", "query",
  "repl", "wal", "recover", "compact", "batch",
}

--- Exit code: success.
cli.OK = 0
--- Exit code: the file is bad or the files differ.
cli.BAD = 1
--- Exit code: usage error.
cli.USAGE = 2

--- The Lua interpreter that runs the CLI (set by `main`, see `find_interpreter`).
cli.interpreter = "lua5.4"

--- The Lua interpreter running this process, for commands that start another one.
-- `/proc/self/exe` when it names a Lua interpreter, else the lowest negative index of
-- `argv` (the interpreter, before its options: under the luarocks wrapper `argv[-1]` is
-- the wrapper's `-e` chunk), else `lua5.4` from PATH.
-- @tparam[opt] table argv the script's `arg` table
-- @treturn string
function cli.find_interpreter(argv)
  local ok, lfs = pcall(require, "lfs")
  local exe = ok and lfs.symlinkattributes and lfs.symlinkattributes("/proc/self/exe", "target")
  if type(exe) == "string" and exe:match("/lua[^/]*$") then return exe end
  if type(argv) == "table" and argv[-1] ~= nil then
    local i = -1
    while argv[i - 1] ~= nil do i = i - 1 end
    if type(argv[i]) == "string" and argv[i]:match("lua[^/]*$") then return argv[i] end
  end
  return "lua5.4"
end

local color_enabled

--- True when colours may be used (stdout is a TTY and `NO_COLOR` is unset or empty).
function cli.use_color()
  if color_enabled == nil then
    local no = os.getenv("NO_COLOR")
    if no and no ~= "" then
      color_enabled = false
    else
      local ok, term = pcall(require, "term")
      color_enabled = ok and term.isatty and term.isatty(io.stdout) or false
    end
  end
  return color_enabled
end

--- Forces colours on or off (nil: detect again).
function cli.set_color(on) color_enabled = on end

local STYLES = { ok = "32", bad = "31;1", warn = "33", head = "1", dim = "2" }

--- `text` in a style when colours are enabled, else unchanged.
function cli.color(style, text)
  if not cli.use_color() or not STYLES[style] then return text end
  return "\27[" .. STYLES[style] .. "m" .. text .. "\27[0m"
end

--- Writes its arguments (tostring'ed, joined by nothing) and a newline to stdout.
function cli.out(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  io.stdout:write(table.concat(parts, "", 1, parts.n), "\n")
end

--- Writes `aqstore: <message>` to stderr.
function cli.err(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  io.stderr:write("aqstore: ", table.concat(parts, "", 1, parts.n), "\n")
end

--- Prints one JSON document (pretty, keys sorted) on stdout.
function cli.json(doc)
  local json = require "actionqueue.storage.inspect.json"
  io.stdout:write(json.encode(doc, { indent = "  " }), "\n")
end

--- Adds a command with a description and an example (`example` may be a list of lines).
function cli.command(parser, name, description, example)
  local cmd = parser:command(name, description)
  if example then
    if type(example) == "table" then example = table.concat(example, "\n  ") end
    cmd:epilog("Example:\n  " .. example)
  end
  return cmd
end

--- Adds the standard `--json` flag (machine output: one JSON document on stdout).
function cli.json_flag(cmd)
  cmd:flag("--json", "Print one JSON document instead of text.")
  return cmd
end

--- Reports a failure as the line `ERR <message>` on stdout or, with `json`, the document
-- `{ok = false, error = doc}`; returns exit code 1.
-- @tparam boolean json
-- @tparam table doc error fields (`message` is the text of the line)
function cli.fail(json, doc)
  if json then
    cli.json({ ok = false, error = doc })
  else
    cli.out("ERR ", doc.message)
  end
  return cli.BAD
end

--- Error value -> `{kind, message [, hint, op, path]}` plain table (for JSON output).
-- `hint` is the library's sentence about the cause when it knows more than the engine's
-- text (a missing output directory, ...); `op` / `path` the step and the file of an I/O
-- error (docs/safety.md).
function cli.error_doc(err)
  if type(err) == "table" then
    local function str(v) return type(v) == "string" and v or nil end
    return { kind = err.kind or "Error", message = err.message or tostring(err),
      hint = str(err.hint), op = str(err.op), path = str(err.op) and str(err.path) }
  end
  return { kind = "Error", message = tostring(err) }
end

--- Reports a file error (text or, with `json`, a JSON document) and returns exit code 1.
-- The text is `aqstore: FILE: message` and, when the error has them, `; step: OP, file:
-- PATH; hint` (errors.where).
function cli.file_error(file, err, json)
  local e = cli.error_doc(err)
  if json then
    cli.json({ file = file, ok = false, error = e })
  else
    local where = require("actionqueue.storage.errors").where(err) or e.hint
    cli.err(file, ": ", cli.color("bad", e.message), where and ("; " .. where) or "")
  end
  return cli.BAD
end

--- When `file` is not a snapshot frame (JSON, a WAL, Lua source, an empty file), says on
-- stderr what it looks like and which command fits (stdout is left alone: `check`'s ERR
-- line is a contract).
function cli.hint(file)
  local line = require("actionqueue.storage.filekind").hint(file)
  if line then cli.err(line) end
end

--- Loads a snapshot file read-only into the inspection views.
-- @return the wrapped snapshot, or nil and the exit code after reporting the error
function cli.open_snapshot(file, json)
  local inspect = require "actionqueue.storage.inspect"
  local s, err = inspect.open(file)
  if not s then return nil, cli.file_error(file, err, json) end
  return s
end

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

--- The line `aqstore --version` prints.
function cli.version_line()
  return "aqstore " .. require("actionqueue.storage")._VERSION .. " (actionqueue-storage, " .. _VERSION .. ")"
end

--- Builds the argparse parser with every available command.
-- The full parser also has `help [COMMAND]` and `completion bash|zsh|fish` (argparse's
-- `add_help_command` and `add_complete_command`, so completion follows the commands).
-- @tparam[opt] string only register just this command (start-up cost of the others)
-- @treturn table parser
-- @treturn table map command name -> module
function cli.parser(only)
  local argparse = require "argparse"
  local parser = argparse("aqstore", "Read, write, check and repair ActionQueue snapshots and WALs.")
    :epilog("Exit codes: 0 ok, 1 the file is bad or the files differ, 2 usage error.\n"
      .. "Run 'aqstore help COMMAND' for a command's options and an example.")
  parser:command_target("command")
  parser:require_command(true)
  -- Listed for --help; `main` answers it before parsing (a command is required otherwise).
  parser:flag("--version", "Print the version and exit.")
  local mods = {}
  for _, name in ipairs(only and { only } or cli.commands) do
    local mod = load_command(name)
    if mod then
      mod.register(parser)
      mods[name] = mod
    end
  end
  if not only then
    local help = cli.command(parser, "help", "Show the help of a command (the same as COMMAND --help).",
      { "aqstore help check", "aqstore help wal dump" })
    help:argument("name", "Command (and subcommand)."):args("*")
    mods.help = { run = function(args) return cli.help(parser, help, args.name) end }
    parser:add_complete_command({ name = "completion",
      epilog = "Examples:\n  aqstore completion bash > /etc/bash_completion.d/aqstore\n"
        .. "  aqstore completion zsh > ~/.zfunc/_aqstore\n"
        .. "  aqstore completion fish > ~/.config/fish/completions/aqstore.fish" })
  end
  return parser, mods
end

--- `aqstore help [COMMAND [SUBCOMMAND]]`: the top-level help, or `COMMAND --help`.
-- @treturn integer exit code (2 for an unknown command)
function cli.help(parser, help_cmd, names)
  if #names == 0 then
    cli.out(parser:get_help())
    return cli.OK
  end
  local known = names[1] == "completion"
  for _, name in ipairs(cli.commands) do known = known or name == names[1] end
  if not known then
    io.stderr:write(help_cmd:get_usage(), "\n", "aqstore: error: unknown command '", names[1], "'\n")
    return cli.USAGE
  end
  local argv = { table.unpack(names) }
  argv[#argv + 1] = "--help"
  return cli.main(argv)
end

-- Parses like argparse's `pparse`, but also returns the (sub)command parser the error
-- belongs to, so that a usage error shows that command's usage line. Uses argparse's
-- `_parse(args, error_handler)`, whose handler receives the current command's parser.
local function parse(parser, argv)
  local failed_in
  local ok, result = pcall(parser._parse, parser, argv, function(p, msg)
    failed_in = p
    error(msg, 0)
  end)
  if ok then return true, result end
  if not failed_in then error(result, 0) end
  return nil, result, failed_in
end

--- Entry point: parses `argv` and runs the command.
-- @tparam table argv the script's `arg` table
-- @treturn integer exit code (0 ok, 1 bad file or difference, 2 usage error)
function cli.main(argv)
  cli.interpreter = cli.find_interpreter(argv)
  local args_list = {}
  for i = 1, #argv do args_list[i] = argv[i] end
  -- Fast path: a command line that parses with only its command registered needs no
  -- other command module (aqstore check/rewrite start faster); anything else (usage
  -- errors, --help of the whole tool) goes through the full parser.
  local parser, mods, ok, args, failed_in
  local first = args_list[1]
  if first == "--version" and #args_list == 1 then
    cli.out(cli.version_line())
    return cli.OK
  end
  -- The two hot paths, `check FILE` and `rewrite IN OUT` with plain operands, need no
  -- argparse at all (its loading is most of the start-up): the table argparse would
  -- return is built directly.
  local plain = true
  for i = 2, #args_list do
    if args_list[i]:sub(1, 1) == "-" then plain = false end
  end
  if plain and first == "check" and #args_list == 2 then
    args = { command = "check", check = true, file = args_list[2] }
  elseif plain and first == "rewrite" and #args_list == 3 then
    args = { command = "rewrite", rewrite = true, input = args_list[2], output = args_list[3] }
  end
  if args then
    ok, mods = true, { [first] = load_command(first) }
    if not mods[first] then ok, args = nil, nil end
  end
  if not ok and first and first:sub(1, 1) ~= "-" then
    for _, name in ipairs(cli.commands) do
      if name == first then
        parser, mods = cli.parser(first)
        if mods[first] then ok, args = parse(parser, args_list) end
        if not ok or args.help then ok = nil end
        break
      end
    end
  end
  if not ok then
    parser, mods = cli.parser()
    ok, args, failed_in = parse(parser, args_list)
  end
  if not ok then
    io.stderr:write((failed_in or parser):get_usage(), "\n", "aqstore: error: ", tostring(args), "\n")
    return cli.USAGE
  end
  local mod = mods[args.command]
  local interrupted = false
  -- SIGINT, SIGTERM and SIGHUP raise "interrupted by SIGTERM!" (core.proc_signal_trap;
  -- lua5.4's own Ctrl-C: "interrupted!"): one line and 128 + N, not a traceback; the
  -- writers' temps are removed and no target is replaced (docs/safety.md "Signals").
  -- The REPL keeps lua5.4's handling (Ctrl-C interrupts a line, not the session).
  local core = require "actionqueue.storage.core"
  local trap <close> = args.command ~= "repl" and core.proc_signal_trap() or nil -- luacheck: no unused
  local ran, code = xpcall(mod.run, function(e)
    if type(e) == "string" and (e:match("interrupted!$") or e:match("interrupted by SIG%u+!$")) then
      interrupted = e:match("interrupted by (SIG%u+)!$") or "SIGINT"
      return e
    end
    return debug.traceback(e, 2)
  end, args)
  io.stdout:flush()
  -- A writer the error unwound past is garbage now: its __gc removes its temp file, which
  -- os.exit (no state close) would leave behind.
  if not ran then collectgarbage() collectgarbage() end
  if not ran and interrupted then
    cli.err(args.command, ": interrupted by ", interrupted, " before it finished; run it again to finish")
    return ({ SIGHUP = 129, SIGINT = 130, SIGTERM = 143 })[interrupted]
  elseif not ran then
    cli.err("internal error in '", args.command, "': ", code)
    return cli.BAD
  end
  return code or cli.OK
end

return cli
