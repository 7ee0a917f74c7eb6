--- `aqstore show FILE PATH`: one part of a snapshot, pretty-printed through the schema.
-- PATH: dotted fields and 1-based [i] indexes, e.g. `runs[3].attempts`, `engine`,
-- `tasks[1].task_spec.run_policy`; `.` is the whole document.
-- @module actionqueue.storage.cli.show
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "show", "Show one part of a snapshot (schema-aware pretty printer).",
    { "aqstore show snapshot.bin 'runs[3].attempts'", "aqstore show --json snapshot.bin engine" })
  cmd:argument("file", "Snapshot file.")
  cmd:argument("path", "Document path: dotted fields and 1-based [i] indexes ('.' = everything)."):args("?")
  cmd:option("--max", "List entries shown before truncating (text output).", "20"):convert(tonumber)
  cli.json_flag(cmd)
end

function M.run(args)
  local path = require "actionqueue.storage.inspect.path"
  local show = require "actionqueue.storage.inspect.show"
  local json = require "actionqueue.storage.inspect.json"
  local p = args.path or "."
  local steps, perr = path.parse(p)
  if not steps then cli.err(perr) return cli.USAGE end
  local s, code = cli.open_snapshot(args.file, args.json)
  if not s then return code end
  local v, T = path.resolve(s, steps)
  if type(T) ~= "table" then
    if args.json then cli.json({ file = args.file, path = p, ok = false, error = { kind = "PathError", message = T } })
    else cli.err(T) end
    return cli.USAGE
  end
  if args.json then
    cli.json({ file = args.file, path = p, ok = true, type = T.name or T.kind,
               value = json.raw(json.encode_typed(v, T)) })
  else
    cli.out(show.render(v, T, { max = args.max, title = (p ~= "." and p or nil) }))
  end
  return cli.OK
end

return M
