--- `aqstore wal dump [--json] | verify [--json] | stats [--json] | repair [--force] | open FILE`.
--
-- Acceptance contract (keep exact):
-- * `wal dump --json FILE`: stdout carries only JSON Lines, one compact record each
--   (byte-identical to the engine's serde JSON); the status line
--   `END records=N valid_bytes=B` (exit 0) or `CORRUPT offset=O kind=K` (exit 1) goes to
--   stderr, unchanged, so `2>&1` gives the reference's dump output line for line;
-- * `wal open --strict FILE` / `wal open --repair FILE` (reference TruncatePartial):
--   `OK next_sequence=S len=L` (exit 0) or `ERR <reference text>` (exit 1).
-- Mutations (`repair`, `open`) lock the WAL (docs/wal.md "Locking").
-- @module actionqueue.storage.cli.wal
local cli = require "actionqueue.storage.cli"

local M = {}

local function wal() return require "actionqueue.storage.wal" end

local W = "data/wal/actionqueue.wal"

-- Every subcommand ends with the `--workflow` flag and the WAL file argument.
local function wal_file(sub, workflow_help)
  sub:flag("--workflow", workflow_help or "Accept Cron run policies.")
  sub:argument("file", "WAL file.")
end

local function sub(cmd, name, description, example)
  return cli.command(cmd, name, description, example)
end

--- Adds the `wal` command and its subcommands.
function M.register(parser)
  local cmd = cli.command(parser, "wal", "Write-ahead log (v5): dump, verify, repair, stats, open.",
    { "aqstore wal verify " .. W, "aqstore wal dump --json " .. W .. " | jq -c .event" })
  cmd:command_target("wal_command")
  cmd:require_command(true)
  local dump = sub(cmd, "dump", "Print every record (one line each) and the final status.",
    { "aqstore wal dump " .. W,
      "aqstore wal dump --json " .. W .. " | jq -c 'select(.event.EnginePaused)'",
      "(with --json, stdout is JSON Lines only; the END/CORRUPT status line goes to stderr)" })
  dump:flag("--json", "Reference JSON lines (serde form) on stdout, the status line on stderr.")
  wal_file(dump, "Accept Cron run policies (the reference's optional workflow build).")
  local verify = sub(cmd, "verify", "Check integrity only (reader order).",
    { "aqstore wal verify " .. W, "aqstore wal verify --json " .. W })
  cli.json_flag(verify)
  wal_file(verify)
  local rep = sub(cmd, "repair",
    "Safe repair: cut a damaged tail, keeping the cut bytes in a new FILE.cut-OFFSET.",
    { "aqstore wal repair --dry-run " .. W, "aqstore wal repair " .. W })
  rep:flag("--force", "Also cut mid-file corruption or a file whose first record is invalid, "
    .. "and repair while another process has the file open for writing.")
  rep:flag("--dry-run", "Only show what would be cut.")
  wal_file(rep)
  local stats = sub(cmd, "stats", "Counts per variant, sizes, sequence range.",
    { "aqstore wal stats " .. W, "aqstore wal stats --json " .. W .. " | jq .variants" })
  cli.json_flag(stats)
  wal_file(stats)
  local open = sub(cmd, "open", "Open like the reference appender and print the next sequence.",
    { "aqstore wal open --strict " .. W, "aqstore wal open --repair " .. W })
  open:mutex(open:flag("--strict", "Strict policy (default): refuse any corruption."),
             open:flag("--repair", "TruncatePartial: cut the file at the first bad record."))
  open:flag("--force", "Open although another process has the file open for writing.")
  wal_file(open)
end

local out = io.stdout

local function u(n) return string.format("%u", n) end

local function status_line(s)
  if s.error and s.error.kind == "Corruption" then
    return string.format("CORRUPT offset=%d kind=%s", s.error.offset, s.error.reason), 1
  elseif s.error then
    return "ERR " .. s.error.message, 1
  end
  return string.format("END records=%d valid_bytes=%d", s.records, s.valid_bytes), 0
end

-- The scan status as a JSON object (u64 exact through json.raw).
local function status_doc(s, json)
  local doc = { ok = s.error == nil, records = s.records, valid_bytes = s.valid_bytes,
                last_sequence = json.raw(u(s.last_sequence)) }
  if s.error then
    doc.error = { kind = s.error.kind, message = s.error.message, offset = s.error.offset,
                  reason = s.error.reason, errno = s.error.errno }
  end
  return doc
end

local function opts_of(args)
  return { workflow = args.workflow or nil }
end

local function run_dump(args)
  local w = wal()
  local json, opts = args.json, opts_of(args)
  local buf, nbuf = {}, 0
  local function emit(line)
    nbuf = nbuf + 1
    buf[nbuf] = line
    if nbuf >= 512 then
      out:write(table.concat(buf, "\n", 1, nbuf), "\n")
      nbuf = 0
    end
  end
  local s = w.scan(args.file, opts, function(offset, ev, payload)
    if json then
      emit(w.to_json(ev))
    else
      local name, fields = w.event_json(ev)
      emit(string.format("@%-8d #%-6s %-22s %4dB %s", offset, u(ev.sequence), name, #payload, fields))
    end
  end)
  if nbuf > 0 then out:write(table.concat(buf, "\n", 1, nbuf), "\n") end
  local line, code = status_line(s)
  if json then
    out:flush()
    io.stderr:write(line, "\n")
  else
    out:write(line, "\n")
  end
  return code
end

local function run_verify(args)
  local s = wal().scan(args.file, opts_of(args))
  if args.json then
    local json = require "actionqueue.storage.inspect.json"
    local doc = status_doc(s, json)
    doc.file = args.file
    cli.json(doc)
    return s.error and 1 or 0
  end
  if not s.error then
    out:write(string.format("OK records=%d bytes=%d last_sequence=%s\n", s.records, s.valid_bytes,
      u(s.last_sequence)))
    return 0
  end
  local line = status_line(s)
  out:write(line, string.format(" (valid records before it: %d, valid bytes: %d)\n", s.records, s.valid_bytes))
  return 1
end

local function run_open(args)
  local a = require "actionqueue.storage.wal.appender"
  local w, err = a.open(args.file, { repair = args["repair"] and "truncate_partial" or "strict",
                                     sync = "none", workflow = args.workflow or nil,
                                     force = args.force or nil })
  if not w then
    cli.fail(false, err)
    local where = require("actionqueue.storage.errors").where(err)
    if where then cli.err("wal open: ", where) end
    return cli.BAD
  end
  local line = string.format("OK next_sequence=%s len=%d", u(w:next_sequence()), w:size())
  w:close()
  out:write(line, "\n")
  return 0
end

local function describe_plan(plan)
  out:write(string.format(
    "found %s at offset %d (%s): keeping %d record(s) (%d bytes), dropping %d bytes " ..
    "incl. %d valid record(s) after the bad one\n",
    plan.kind, plan.offset, plan.tail and "damaged tail" or "mid-file corruption",
    plan.records, plan.offset, plan.dropped_bytes, plan.dropped_valid_records))
end

local function nothing_to_repair(plan)
  out:write(string.format("OK nothing to repair: records=%d len=%d next_sequence=%s\n",
    plan.records, plan.size, u(plan.next_sequence)))
  return 0
end

local function run_repair(args)
  local r = require "actionqueue.storage.wal.repair"
  if args.dry_run then
    local plan, perr = r.plan(args.file, opts_of(args))
    if not plan then return cli.fail(false, perr) end
    if plan.ok then return nothing_to_repair(plan) end
    describe_plan(plan)
    return (plan.tail and plan.offset > 0) and 0 or 1
  end
  -- The plan is made under the repair's lock, so what is shown is what is cut.
  local res, err = r.run(args.file, { mode = "safe", force = args.force, workflow = args.workflow or nil })
  if not res then
    if err.plan and not err.plan.ok then describe_plan(err.plan) end
    return cli.fail(false, err)
  end
  local plan = res.plan
  if res.action == "none" then return nothing_to_repair(plan) end
  describe_plan(plan)
  out:write(string.format("REPAIRED truncated to %d bytes; cut bytes saved to %s; next_sequence=%s\n",
    plan.offset, res.cut_file or "(not kept)", u(plan.next_sequence)))
  return 0
end

-- Per-variant counts, payload sizes and the sequence range of a scan.
local function collect_stats(args)
  local per = {}
  local st = { minp = math.huge, maxp = 0, total = 0, gaps = 0, backwards = 0 }
  local opts = opts_of(args)
  opts.skim = true
  local s = wal().scan(args.file, opts, function(_, _, payload, q, name)
    local p = per[name]
    if not p then p = { n = 0, bytes = 0 }; per[name] = p end
    p.n = p.n + 1
    p.bytes = p.bytes + #payload
    st.first = st.first or q
    if not st.min or math.ult(q, st.min) then st.min = q end
    if not st.max or math.ult(st.max, q) then st.max = q end
    if st.prev then
      if not math.ult(st.prev, q) then st.backwards = st.backwards + 1
      elseif q ~= st.prev + 1 then st.gaps = st.gaps + 1 end
    end
    st.prev = q
    if #payload < st.minp then st.minp = #payload end
    if #payload > st.maxp then st.maxp = #payload end
    st.total = st.total + #payload
  end)
  return s, st, per
end

local function run_stats(args)
  local s, st, per = collect_stats(args)
  local schema = require "actionqueue.storage.schema.wal"
  if args.json then
    local json = require "actionqueue.storage.inspect.json"
    local variants = {}
    for _, v in ipairs(schema.WalEventType.variants) do
      local p = per[v.name]
      if p then variants[#variants + 1] = { index = v.index, name = v.name, records = p.n, bytes = p.bytes } end
    end
    local doc = { file = args.file, records = s.records, valid_bytes = s.valid_bytes,
                  variants = json.array(variants), status = status_doc(s, json) }
    if s.records > 0 then
      doc.payload_bytes = { total = st.total, min = st.minp, max = st.maxp, avg = st.total / s.records }
      doc.sequence = { first = json.raw(u(st.first)), last = json.raw(u(st.prev)),
                       min = json.raw(u(st.min)), max = json.raw(u(st.max)),
                       gaps = st.gaps, non_increasing = st.backwards }
    end
    cli.json(doc)
    return s.error and 1 or 0
  end
  out:write(string.format("file %s\nrecords %d\nvalid_bytes %d\n", args.file, s.records, s.valid_bytes))
  if s.records > 0 then
    out:write(string.format("payload_bytes total=%d min=%d max=%d avg=%.1f\n", st.total, st.minp, st.maxp,
      st.total / s.records))
    out:write(string.format("sequence first=%s last=%s min=%s max=%s gaps=%d non_increasing=%d\n",
      u(st.first), u(st.prev), u(st.min), u(st.max), st.gaps, st.backwards))
  end
  out:write("variants:\n")
  for _, v in ipairs(schema.WalEventType.variants) do
    local p = per[v.name]
    if p then out:write(string.format("  %2d %-22s %8d records %10d bytes\n", v.index, v.name, p.n, p.bytes)) end
  end
  local line, code = status_line(s)
  out:write(line, "\n")
  return code
end

local RUN = { dump = run_dump, verify = run_verify, open = run_open, repair = run_repair,
              stats = run_stats }

--- Runs the selected subcommand; returns the exit code.
function M.run(args)
  local run = RUN[args.wal_command]
  if not run then return 2 end
  return run(args)
end

return M
