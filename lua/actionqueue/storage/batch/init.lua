--- Batch snapshot jobs: many files, in parallel worker processes, with progress, a
-- crash-safe report journal, resume and sharding. `aqstore batch` is a thin front end.
--
--     local batch = require "actionqueue.storage.batch"
--     local res, err = batch.run({jobfile = "jobs.lua", workers = 2, report = "r.json"})
--     -- res.entries, res.summary = {ok=, failed=, skipped=}, res.exit_code (0 | 1)
--
-- @module actionqueue.storage.batch
local core = require "actionqueue.storage.core"
local jobfile = require "actionqueue.storage.batch.jobfile"
local scan = require "actionqueue.storage.batch.scan"
local shard = require "actionqueue.storage.batch.shard"
local report = require "actionqueue.storage.batch.report"
local resume = require "actionqueue.storage.batch.resume"
local pool = require "actionqueue.storage.batch.pool"
local progress = require "actionqueue.storage.batch.progress"
local outputs = require "actionqueue.storage.batch.outputs"
local fsutil = require "actionqueue.storage.fsutil"

local batch = {}

--- Builds the job list from `opts.jobs`, `opts.jobfile` or `opts.scan` (+ `opts.kind`,
-- `opts.out_dir`), refuses it when two jobs write one output (`outputs.check_unique`, on
-- the whole list, so shards on other machines cannot collide either), then applies
-- `opts.shard` ("I/N").
-- @tparam table opts
-- @treturn table jobs
-- @treturn[opt] string the shard taken, "I/N" (`opts.shard` may be `auto`, see `shard.auto`)
-- @return nil, message (a bad job file or option: exit code 2)
function batch.jobs(opts)
  local jobs, err
  if opts.jobs then
    jobs, err = jobfile.normalise({ jobs = opts.jobs }, opts.base_dir)
  elseif opts.jobfile then
    jobs, err = jobfile.load(opts.jobfile)
  elseif opts.scan then
    jobs, err = scan.jobs(opts.scan, opts.kind or "verify", opts.out_dir)
  else
    return nil, "no jobs: give a job file or --scan ROOT"
  end
  if not jobs then return nil, err end
  local unique, uerr = outputs.check_unique(jobs)
  if not unique then return nil, (opts.jobfile and (opts.jobfile .. ": ") or "") .. uerr end
  local which
  if opts.shard then
    local i, n = shard.parse(opts.shard)
    if not i then return nil, n end
    jobs = shard.select(jobs, i, n)
    which = i .. "/" .. n
  end
  return jobs, which
end

--- Most workers per core that run without `force` (see `batch.worker_count`).
batch.MAX_WORKERS_PER_CORE = 4

--- The number of workers to start for `requested` (default: the number of cores).
-- More than `MAX_WORKERS_PER_CORE` times the cores only slows a batch down (each worker
-- is a process with its own interpreter; 100,000 of them ran 10x slower on 2 cores), so
-- such a request is capped there unless `force` is set.
-- @tparam[opt] integer requested
-- @tparam[opt] boolean force
-- @treturn integer workers
-- @treturn[opt] string warning when the request was capped
function batch.worker_count(requested, force)
  local cpus = core.proc_info().cpus
  if not requested then return cpus end
  local limit = batch.MAX_WORKERS_PER_CORE * cpus
  if requested > limit and not force then
    return limit, string.format("-j %d is more than %d x the %d cores: capped at %d workers "
      .. "(--force runs %d)", requested, batch.MAX_WORKERS_PER_CORE, cpus, limit, requested)
  end
  return requested
end

-- Creates the directories that `--scan --out-dir` mirrors for `jobs`; a job whose directory
-- cannot be made fails (its result is returned by index) instead of running.
local function make_output_dirs(jobs)
  local made, failed = {}, {}
  for _, job in ipairs(jobs) do
    local dir = job.output_path and job.output_path:match("^(.*)/[^/]*$")
    if dir and dir ~= "" then
      if made[dir] == nil then
        local ok, err = fsutil.mkdir_p(dir)
        made[dir] = ok and true or ("creating the output directory " .. dir .. ": " .. tostring(err))
      end
      if made[dir] ~= true then
        failed[job] = { status = "failed", error = made[dir], error_kind = "IoError", seconds = 0, bytes = 0 }
      end
    end
  end
  return failed
end

local SIGNAL_NAMES = { [1] = "SIGHUP", [2] = "SIGINT", [15] = "SIGTERM" }
local Interrupted = { __tostring = function(e) return e.message end }

-- The error of a batch stopped by a signal (see `batch.run`).
local function interrupted(sig, opts, finished, total)
  local name = SIGNAL_NAMES[sig] or ("signal " .. tostring(sig))
  local e = { kind = "Interrupted", signal = sig, signal_name = name, finished = finished, total = total,
    exit_code = 128 + sig, report = opts.report }
  if opts.report then
    e.message = string.format("interrupted by %s: %d of %d jobs finished, journaled in %s.journal; "
      .. "resume with --resume %s", name, finished, total, opts.report, opts.report)
  else
    e.message = string.format("interrupted by %s: %d of %d jobs finished (without --report nothing was "
      .. "journaled: run again, with --report R to be able to resume)", name, finished, total)
  end
  return setmetatable(e, Interrupted)
end

--- Runs a batch.
-- SIGINT, SIGTERM and SIGHUP are watched while it runs (`core.proc_signal_watch`, unless
-- `opts.signals == false`): on any of them, the workers are stopped (the temp files of their
-- running jobs removed), the journal is committed and kept for `--resume`, and `batch.run`
-- returns `nil, err` with `err.kind == "Interrupted"` (`err.signal`, `err.finished`,
-- `err.total`, `err.exit_code` 129 / 130 / 143, `tostring(err)` the one-line message).
-- @tparam table opts job source (see `batch.jobs`), `workers` (default: cores; capped at
--   `MAX_WORKERS_PER_CORE` x the cores unless `force`, see `batch.worker_count`; the
--   report's `workers` is the number of worker processes actually run), `on_warning(text)`,
--   `timeout` (seconds per job), `report` (JSON report path, journaled while running),
--   `resume` (earlier report to skip finished jobs), `progress` (table of `progress.new`
--   options, or false for none), `lua` (worker interpreter), `signals` (false: leave
--   SIGINT/SIGTERM alone)
-- @treturn table `{entries = {...}, summary = {ok, failed, skipped}, exit_code = 0|1, seconds, workers}`
-- @return nil, message, exit_code (2 for a bad job file or option)
-- @return nil, err (`err.kind == "Interrupted"`), err.exit_code
local run_watched
function batch.run(opts)
  local watch <close> = opts.signals ~= false and core.proc_signal_watch() or nil
  return run_watched(opts, watch)
end

-- `batch.run` with the signal watch made (nil: none).
function run_watched(opts, watch)
  local t0 = core.proc_clock()
  local jobs, err = batch.jobs(opts)
  if not jobs then return nil, err, 2 end
  local which_shard = err
  local workers, warning = batch.worker_count(opts.workers, opts.force)
  if warning and opts.on_warning then opts.on_warning(warning) end
  local done = {}
  if opts.resume then
    done, err = resume.load(opts.resume)
    if not done then return nil, err, 2 end
  end
  local journal
  if opts.report then
    local owned, oerr = report.check_owner(opts.report)
    if not owned then return nil, oerr, 2 end
    -- resuming into the same report: its journal holds the earlier progress, keep it
    local same = opts.resume and outputs.canonical((opts.resume:gsub("%.journal$", "")))
      == outputs.canonical(opts.report)
    journal, err = report.journal(opts.report, { append = same })
    if not journal then return nil, err, 2 end
  end

  local entries, todo = {}, {}
  local by_index = {}
  local prog = opts.progress ~= false and progress.new(#jobs, opts.progress or {}) or nil
  -- journal group commit: one write + fsync per group of finished jobs (report.journal)
  local group_started
  local function commit()
    group_started = nil
    local ok, jerr = journal.commit()
    if not ok then io.stderr:write("batch: journal: ", tostring(jerr), "\n") end
  end
  local function record(job, result, tail, lazy)
    local e = report.entry(job, result)
    if tail then report.set_tail(e, tail, lazy) end
    by_index[job] = e
    entries[#entries + 1] = e
    if journal then
      journal.append(e)
      if journal.pending() >= report.GROUP then commit() end
    end
    if prog then prog.update(e) end
  end
  -- called by the pool once per wake-up: commits a group that is GROUP_SECONDS old
  local function tick(now)
    if not journal or journal.pending() == 0 then
      group_started = nil
      return nil
    end
    group_started = group_started or now
    if now - group_started >= report.GROUP_SECONDS then
      commit()
      return nil
    end
    return group_started + report.GROUP_SECONDS
  end
  local function stopped(sig)
    if journal then
      commit()
      journal.close(false)
    end
    if prog then prog.interrupt() end
    local e = interrupted(sig, opts, #entries, #jobs)
    return nil, e, e.exit_code
  end
  for _, job in ipairs(jobs) do
    local sig = watch and watch:read()
    if sig then return stopped(sig) end
    local prev = opts.resume and resume.skippable(done, job)
    if prev then
      local r = {}
      for k, v in pairs(prev) do r[k] = v end
      r.status, r.seconds, r.error, r.error_kind = "skipped", 0, nil, nil
      r.resumed_from = opts.resume
      record(job, r)
    else
      todo[#todo + 1] = job
    end
  end
  -- the skipped jobs are journaled before any work starts: a resume killed at any moment
  -- leaves a journal that still says they are done
  if journal then commit() end

  if opts.scan and opts.out_dir then
    local failed = make_output_dirs(todo)
    if next(failed) then
      local runnable = {}
      for _, job in ipairs(todo) do
        if failed[job] then record(job, failed[job]) else runnable[#runnable + 1] = job end
      end
      todo = runnable
    end
  end
  local stats = {}
  local ok, perr = pool.run(todo, {
    workers = workers,
    stats = stats,
    timeout = opts.timeout,
    depth = opts.depth,
    lua = opts.lua,
    on_done = record,
    on_tick = journal and tick or nil,
    signals = watch,
  })
  if not ok and type(perr) == "table" and perr.kind == "Interrupted" then return stopped(perr.signal) end
  if journal then commit() end
  if prog then prog.finish() end
  if not ok then
    if journal then journal.close(false) end
    return nil, perr, 1
  end
  -- the report lists jobs in job-file order, whatever order they finished in
  local ordered = {}
  for _, job in ipairs(jobs) do ordered[#ordered + 1] = by_index[job] end
  local summary = report.summary(ordered)
  local seconds = core.proc_clock() - t0
  if opts.report then
    local meta = { seconds = seconds, workers = stats.workers or 0 }
    if which_shard then meta.shard = which_shard end
    local wok, werr = report.write_file(opts.report, report.encode(ordered, meta))
    if not wok then
      journal.close(false)
      return nil, "report " .. opts.report .. ": " .. tostring(werr), 1
    end
    journal.close(true)
  end
  return {
    entries = ordered,
    summary = summary,
    seconds = seconds,
    workers = stats.workers or 0,
    exit_code = summary.failed == 0 and 0 or 1,
  }
end

--- Merges shard reports into one (see `report.merge`) and optionally writes it.
-- @tparam table paths report files
-- @tparam[opt] string out output report path (atomic write)
-- @treturn table `{entries, summary, exit_code, text}`
-- @return nil, message
function batch.merge(paths, out)
  local entries, err = report.merge(paths)
  if not entries then return nil, err end
  local text = report.encode(entries, { merged_from = paths })
  if out then
    local ok, werr = report.write_file(out, text)
    if not ok then return nil, werr end
  end
  local summary = report.summary(entries)
  return { entries = entries, summary = summary, exit_code = summary.failed == 0 and 0 or 1, text = text }
end

return batch
