--- Worker pool: long-lived `lua5.4` worker processes fed batches of jobs over pipes.
-- A job that crashes its worker or passes its deadline fails alone: the worker is
-- killed (SIGKILL) and reaped, the worker's temp sibling of the job's output (`OUTPUT.tmp.<pid>.<hex>`) is
-- removed, and a fresh worker takes the jobs queued behind it.
--
-- The runner is kept cheap so that it does not limit the speed-up of many small jobs:
-- each worker gets a small batch of jobs in one write (sized from the measured job time:
-- about `QUEUE_SECONDS` of work, 2..`MAX_DEPTH` jobs, fewer near the end so the last jobs
-- are spread over the workers) and is refilled when half of it is done; workers send one
-- compact line per finished job, with the report entry already encoded; and the runner
-- wakes at most every `WAKE_SECONDS` while every worker has enough queued work, reading
-- all the results that arrived meanwhile at once.
-- @module actionqueue.storage.batch.pool
local core = require "actionqueue.storage.core"
local cjson = require "cjson"
local plain = require "actionqueue.storage.cjson_plain"
local fsutil = require "actionqueue.storage.fsutil"
local jobfile = require "actionqueue.storage.batch.jobfile"
local kinds = require "actionqueue.storage.batch.kinds"

local pool = {}

pool.QUEUE_SECONDS = 0.02
pool.WAKE_SECONDS = 0.004
pool.MAX_DEPTH = 128
-- the runner sleeps between wake-ups only while every worker has this many jobs queued
pool.DOZE_MIN_QUEUED = 8
-- never queue more job text than this per worker: a write to its pipe can then not block
pool.MAX_QUEUED_BYTES = 32768

--- The Lua interpreter running this process (lowest negative index of `arg`), or "lua5.4".
function pool.interpreter()
  if type(arg) == "table" then
    local i = -1
    while arg[i - 1] ~= nil do i = i - 1 end
    local exe = arg[i]
    if type(exe) == "string" and exe:match("lua") and not exe:match("busted") then return exe end
  end
  return "lua5.4"
end

-- The worker's command line; `modules` are required first (kinds registered outside the
-- library, see `kinds.register`), each name passed as a quoted Lua string.
local function worker_argv(lua, modules)
  local pre = {}
  for i, m in ipairs(modules or {}) do pre[i] = string.format("require(%q) ", m) end
  local boot = string.format("package.path=%q package.cpath=%q %s"
    .. "require('actionqueue.storage.batch.worker').main()", package.path, package.cpath, table.concat(pre))
  return { lua, "-e", boot }
end

local function describe_exit(status)
  if status == nil then return "worker died" end
  if type(status) ~= "table" then return "worker died" end
  if status.signaled then return string.format("worker crashed (signal %d)", status.signal) end
  return string.format("worker exited with code %d", status.code or -1)
end

-- The job as sent to a worker (its wire fields, `jobfile.wire_fields`), encoded once per job.
local wired = setmetatable({}, { __mode = "k" })
local function wire_job(job, fields)
  local text = wired[job]
  if not text then
    local t = {}
    for _, k in ipairs(fields) do t[k] = job[k] end
    text = cjson.encode(t)
    wired[job] = text
  end
  return text
end

local function decode_result(tail)
  return (plain.decode("{" .. tail .. "}"))
end

-- The pool: workers, the jobs not yet given to one, and the loop that feeds them.
-- Each worker `w` has `pid`, `wfd` (jobs in), `rfd` (results out), `queue` (sent jobs,
-- the head is running), `qbytes`, `buf` (a partial result line) and `broken` (its pipe
-- failed). Timeouts live in `expire`, crashes in `requeue`, interrupts in `stop`.
local Pool = {}
Pool.__index = Pool

--- Makes a pool for `jobs` (see `pool.run` for `opts`).
-- @tparam table jobs
-- @tparam[opt] table opts
-- @treturn table pool
function pool.new(jobs, opts)
  opts = opts or {}
  return setmetatable({
    jobs = jobs, opts = opts, lua = opts.lua or pool.interpreter(),
    workers = {}, by_fd = {},
    nworkers = math.max(1, math.min(opts.workers or 1, #jobs)),
    fixed_depth = opts.depth and math.max(1, opts.depth),
    pending = {}, -- stack of jobs to run again (queued behind a failed job), taken first
    next_job = 1, remaining = #jobs, next_id = 0,
    avg = nil, -- moving average of the job seconds reported by workers
    wire = jobfile.wire_fields(), modules = kinds.modules(),
  }, Pool)
end

function Pool:unassigned() return #self.pending + (#self.jobs - self.next_job + 1) end
function Pool:has_work() return #self.pending > 0 or self.next_job <= #self.jobs end

function Pool:take()
  if #self.pending > 0 then return table.remove(self.pending) end
  local job = self.jobs[self.next_job]
  self.next_job = self.next_job + 1
  return job
end

--- Starts one worker process.
-- @return worker | nil, message
function Pool:spawn()
  local pid, wfd, rfd = core.proc_spawn(worker_argv(self.lua, self.modules))
  if not pid then return nil, wfd end
  local w = { pid = pid, wfd = wfd, rfd = rfd, buf = "", queue = {}, qbytes = 0 }
  self.by_fd[rfd] = w
  self.workers[#self.workers + 1] = w
  local stats = self.opts.stats
  if stats and #self.workers > (stats.workers or 0) then stats.workers = #self.workers end
  return w
end

-- Ends worker `w` (with signal `sig` first, if given) and forgets it; returns its status.
function Pool:retire(w, sig)
  if sig then core.proc_kill(w.pid, sig) end
  core.proc_close(w.wfd)
  core.proc_close(w.rfd)
  local status = core.proc_wait(w.pid)
  self.by_fd[w.rfd] = nil
  for i, x in ipairs(self.workers) do
    if x == w then table.remove(self.workers, i) break end
  end
  return status
end

-- How many jobs a worker should have queued.
function Pool:depth()
  if self.fixed_depth then return self.fixed_depth end
  local d = 2
  if self.avg then
    d = math.max(2, math.min(pool.MAX_DEPTH, math.ceil(pool.QUEUE_SECONDS / math.max(self.avg, 1e-6))))
  end
  -- near the end, spread what is left over the workers
  local share = math.ceil(self:unassigned() / self.nworkers) + 1
  return math.max(2, math.min(d, share))
end

-- The head of `w`'s queue starts running now: its deadline starts.
function Pool:start_head(w, now)
  local head = w.queue[1]
  if not head then return end
  head.started = now
  local t = head.job.timeout or self.opts.timeout
  head.deadline = t and (now + t) or nil
end

-- Job `job` is over: reported to `on_done`.
function Pool:done(job, result, tail, lazy)
  self.remaining = self.remaining - 1
  if self.opts.on_done then self.opts.on_done(job, result, tail, lazy) end
end

--- The worker is gone (crashed, or killed for a timeout): its running job fails with
-- `result` (its temp files removed), the jobs queued behind it go back to the pending list.
function Pool:requeue(w, result, sig, now)
  local status = self:retire(w, sig)
  if result.error == nil then result.error = describe_exit(status) end
  local head = table.remove(w.queue, 1)
  for k = #w.queue, 1, -1 do self.pending[#self.pending + 1] = w.queue[k].job end
  w.queue, w.qbytes = {}, 0
  if head then
    -- the killed writer's own temp, OUTPUT.tmp.<pid>.<hex> (docs/safety.md): nobody else's
    if head.job.output_path then fsutil.remove_temps_of(head.job.output_path, w.pid) end
    now = now or core.proc_clock()
    result.seconds = now - (head.started or now)
    self:done(head.job, result)
  end
end

--- Sends worker `w` a batch of jobs when half of its queue is done; false when its pipe failed.
function Pool:feed(w, now)
  if w.broken then return false end
  local want = self.fixed_depth or self:depth()
  if #w.queue > 0 and #w.queue > want // 2 then return true end
  local lines = {}
  local was_empty = #w.queue == 0
  while #w.queue < want and self:has_work() and (#w.queue == 0 or w.qbytes < pool.MAX_QUEUED_BYTES) do
    local job = self:take()
    self.next_id = self.next_id + 1
    local line = self.next_id .. "\t" .. wire_job(job, self.wire) .. "\n"
    w.queue[#w.queue + 1] = { job = job, id = self.next_id, bytes = #line }
    w.qbytes = w.qbytes + #line
    lines[#lines + 1] = line
  end
  if #lines == 0 then return true end
  if was_empty then self:start_head(w, now or core.proc_clock()) end
  local ok, err = core.proc_write(w.wfd, table.concat(lines))
  if not ok then
    -- the worker is gone (EPIPE): put the unsent jobs back; reading its pipe reports the exit
    for _ = 1, #lines do
      local q = table.remove(w.queue)
      w.qbytes = w.qbytes - q.bytes
      self.pending[#self.pending + 1] = q.job
    end
    w.broken = err
    return false
  end
  return true
end

--- Feeds every worker and starts workers up to the pool size while there is work.
-- @return true | nil, message (no worker could be started at all)
function Pool:fill(now)
  for i = #self.workers, 1, -1 do
    local w = self.workers[i]
    if w.broken and #w.queue == 0 then
      self:retire(w)
    elseif self:has_work() then
      self:feed(w, now)
    end
  end
  while #self.workers < self.nworkers and self:has_work() do
    local w, err = self:spawn()
    if not w then
      if #self.workers == 0 then return nil, err end
      break
    end
    self:feed(w, now)
  end
  return true
end

--- Reads the results worker `w` sent; false when its pipe is closed (the worker died).
function Pool:collect(w, now)
  local data = core.proc_read(w.rfd, 65536)
  if data == nil or data == "" then return false end
  local buf = w.buf .. data
  local pos = 1
  while #w.queue > 0 do
    local nl = buf:find("\n", pos, true)
    if not nl then break end
    local head = w.queue[1]
    -- ID TAB STATUS TAB SECONDS TAB BYTES TAB TAIL (see worker)
    local id, status, secs, bytes, t = buf:match("^(%d+)\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t()", pos)
    if id and t <= nl and tonumber(id) == head.id then
      local tail = buf:sub(t, nl - 1)
      local result, lazy
      if status == "ok" then
        -- the common case: the entry's other fields stay encoded until someone reads them
        result, lazy = { status = "ok", seconds = tonumber(secs) or 0, bytes = math.tointeger(tonumber(bytes)) or 0 },
          true
      else
        result = decode_result(tail)
      end
      if not result then
        result, tail = { status = "failed", error = "bad result from worker", error_kind = "InternalError",
          seconds = 0 }, nil
      end
      table.remove(w.queue, 1)
      w.qbytes = w.qbytes - head.bytes
      self:start_head(w, now)
      -- a worker's first job pays for loading modules: not a measure of the jobs
      local s = result.seconds
      if s and w.seen then self.avg = self.avg and (self.avg * 0.8 + s * 0.2) or s end
      w.seen = true
      self:done(head.job, result, tail, lazy)
    end
    pos = nl + 1
  end
  w.buf = pos > #buf and "" or buf:sub(pos)
  return true
end

-- Collects every result already waiting in `w`'s pipe; false when the worker died.
function Pool:collect_waiting(w, now)
  repeat
    local r = core.proc_poll({ w.rfd }, 0)
    local more = r and #r > 0
    if more and not self:collect(w, now) then return false end
  until not more
  return true
end

--- Fails the running job of every worker past its deadline (the worker is killed).
function Pool:expire(now)
  for i = #self.workers, 1, -1 do
    local w = self.workers[i]
    local head = w and w.queue[1]
    if head and head.deadline and now >= head.deadline then
      -- results may be waiting in the pipe: read them before blaming the head job
      if not self:collect_waiting(w, now) then
        self:requeue(w, { status = "failed", error_kind = "WorkerCrash" }, nil, now)
      else
        head = w.queue[1]
        if head and head.deadline and now >= head.deadline then
          self:requeue(w, { status = "failed", error_kind = "Timeout",
            error = string.format("timed out after %gs", head.deadline - head.started) }, 9, now)
        end
      end
    end
  end
end

--- Stops on a signal: the results already sent are collected, then every worker is killed
-- and the temp files of the jobs they were running removed. Jobs not finished are not
-- reported (a resume runs them).
-- @treturn table error `{kind = "Interrupted", signal = N, unfinished = N}`
function Pool:stop(sig, now)
  for i = #self.workers, 1, -1 do
    local w = self.workers[i]
    self:collect_waiting(w, now)
    local head = w.queue[1]
    self:retire(w, 9)
    if head and head.job.output_path then fsutil.remove_temps_of(head.job.output_path, w.pid) end
  end
  return { kind = "Interrupted", signal = sig, unfinished = self.remaining }
end

-- How long the runner may sleep between wake-ups without starving a worker: at most
-- WAKE_SECONDS, and half the (estimated) work queued behind each running job; not at all
-- when a worker has fewer than DOZE_MIN_QUEUED jobs queued (long jobs: few wake-ups anyway).
function Pool:doze_seconds()
  if self.fixed_depth or not self.avg then return 0 end
  local s = pool.WAKE_SECONDS
  for _, w in ipairs(self.workers) do
    local n = #w.queue - 1 -- queued behind the running job
    if n >= 0 then
      if n < pool.DOZE_MIN_QUEUED then return 0 end
      local q = n * self.avg / 2
      if q < s then s = q end
    end
  end
  return s
end

--- Runs the pool until every job is reported or a signal arrives.
-- @return true | nil, message | nil, `{kind = "Interrupted", ...}`
function Pool:run()
  if self.remaining == 0 then return true end
  core.proc_ignore_sigpipe()
  local opts, clock = self.opts, core.proc_clock
  local sigfd = opts.signals and opts.signals:fd()
  local idle_fds = { sigfd }
  local now = clock()
  local ok, err = self:fill(now)
  if not ok then return nil, err end
  local tick_at = opts.on_tick and opts.on_tick(now)
  local last_wake = now
  while self.remaining > 0 do
    now = clock()
    -- the nearest deadline (job timeouts and the tick)
    local due = tick_at
    for _, w in ipairs(self.workers) do
      local d = w.queue[1] and w.queue[1].deadline
      if d and (not due or d < due) then due = d end
    end
    local dz = self:doze_seconds()
    if dz >= 0.001 and now - last_wake < dz then
      local until_t = last_wake + dz
      if due and due < until_t then until_t = due end
      local ms = math.ceil((until_t - now) * 1000)
      if ms > 0 then core.proc_poll(idle_fds, ms) end
      now = clock()
    end
    local wait = -1
    if due then wait = math.max(0, math.ceil((due - now) * 1000)) end
    local fds = { sigfd }
    for _, w in ipairs(self.workers) do
      if #w.queue > 0 then fds[#fds + 1] = w.rfd end
    end
    local ready = {}
    if #fds > 0 then
      ready, err = core.proc_poll(fds, wait)
      if not ready then return nil, err end
    elseif wait > 0 then
      core.proc_poll({}, wait)
    end
    now = clock()
    last_wake = now
    -- the signal descriptor is read only when poll says a signal is pending (no syscall per wake-up)
    local sig
    if sigfd then
      for _, fd in ipairs(ready) do
        if fd == sigfd then sig = opts.signals:read() end
      end
    end
    if sig then
      local info = self:stop(sig, now)
      if opts.on_tick then opts.on_tick(now) end
      return nil, info
    end
    for _, fd in ipairs(ready) do
      local w = self.by_fd[fd]
      if w and not self:collect(w, now) then
        self:requeue(w, { status = "failed", error_kind = "WorkerCrash" }, nil, now)
      end
    end
    self:expire(now)
    if opts.on_tick and (tick_at == nil or now >= tick_at) then tick_at = opts.on_tick(now) end
    ok, err = self:fill(now)
    if not ok and self.remaining > 0 then
      -- no worker could be started: fail the rest instead of spinning
      while self:has_work() do
        self:done(self:take(), { status = "failed", error = tostring(err), error_kind = "WorkerCrash", seconds = 0 })
      end
    end
  end
  self:finish()
  return true
end

--- Ends every worker (their queues are empty when the pool is done).
function Pool:finish()
  for i = #self.workers, 1, -1 do self:retire(self.workers[i]) end
end

--- Runs `jobs` on `opts.workers` workers.
-- Each worker has a small batch of jobs in flight (see the module text; `opts.depth` fixes
-- the batch size instead). The job at the head of a worker's queue is the one running; its
-- deadline starts when the runner sees the previous job's result. When a worker crashes or
-- times out, only its running job fails (and its output's temp files are removed); the
-- jobs queued behind it go back to the pending list.
-- @tparam table jobs normalised jobs
-- @tparam table opts `workers` (count), `timeout` (seconds, default none), `depth`,
--   `lua` (interpreter), `on_done(job, result, tail, lazy)` called as each job finishes, in
--   finishing order (`tail`: the worker's encoding of the entry from `status` on, when the
--   result came from a worker; `lazy`: `result` has only `status`, `seconds` and `bytes`,
--   the rest is in `tail`, see `report.set_tail`), `on_tick(now)` called once per wake-up,
--   returns the time it next wants to be called (or nil), `signals` (a
--   `core.proc_signal_watch()`: when it fires the pool stops, see `Pool:stop`), `stats` (a
--   table: `stats.workers` is set to the most workers alive at once)
-- @treturn boolean true
-- @return nil, message when no worker could be started
-- @return nil, `{kind = "Interrupted", signal = N, unfinished = N}` on SIGINT/SIGTERM
function pool.run(jobs, opts)
  return pool.new(jobs, opts):run()
end

return pool
