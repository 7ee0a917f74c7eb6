--- Worker pool: long-lived `lua5.4` worker processes fed batches of jobs over pipes.
-- A job that crashes its worker or passes its deadline fails alone: the worker is
-- killed (SIGKILL) and reaped, the temp sibling of the job's output (`OUTPUT.tmp`) is
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
local cjson_safe = require "cjson.safe"

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

local function worker_argv(lua)
  local boot = string.format("package.path=%q package.cpath=%q "
    .. "require('actionqueue.storage.batch.worker').main()", package.path, package.cpath)
  return { lua, "-e", boot }
end

local function spawn(self)
  local pid, wfd, rfd = core.proc_spawn(worker_argv(self.lua))
  if not pid then return nil, wfd end
  local w = { pid = pid, wfd = wfd, rfd = rfd, buf = "", queue = {}, qbytes = 0 }
  self.by_fd[rfd] = w
  self.workers[#self.workers + 1] = w
  return w
end

local function retire(self, w, sig)
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

local function describe_exit(status)
  if status == nil then return "worker died" end
  if type(status) ~= "table" then return "worker died" end
  if status.signaled then return string.format("worker crashed (signal %d)", status.signal) end
  return string.format("worker exited with code %d", status.code or -1)
end

-- The job as sent to a worker (only plain fields), encoded once per job.
local wired = setmetatable({}, { __mode = "k" })
local function wire_job(job)
  local text = wired[job]
  if not text then
    text = cjson.encode({
      kind = job.kind, input = job.input, path = job.path, output = job.output,
      output_path = job.output_path, timestamp = job.timestamp, action = job.action,
      seconds = job.seconds,
    })
    wired[job] = text
  end
  return text
end

local function decode_result(tail)
  local r = cjson_safe.decode("{" .. tail .. "}")
  if type(r) ~= "table" then return nil end
  for k, v in pairs(r) do
    if v == cjson.null then
      r[k] = nil
    elseif math.type(v) == "float" then
      r[k] = math.tointeger(v) or v
    end
  end
  return r
end

--- Runs `jobs` on `n` workers.
-- Each worker has a small batch of jobs in flight (see the module text; `opts.depth` fixes
-- the batch size instead). The job at the head of a worker's queue is the one running; its
-- deadline starts when the runner sees the previous job's result. When a worker crashes or
-- times out, only its running job fails (and its output's temp sibling is removed); the
-- jobs queued behind it go back to the pending list.
-- @tparam table jobs normalised jobs
-- @tparam table opts `workers` (count), `timeout` (seconds, default none), `depth`,
--   `lua` (interpreter), `on_done(job, result, tail, lazy)` called as each job finishes, in
--   finishing order (`tail`: the worker's encoding of the entry from `status` on, when the
--   result came from a worker; `lazy`: `result` has only `status`, `seconds` and `bytes`,
--   the rest is in `tail`, see `report.set_tail`), `on_tick(now)` called once per wake-up, returns the time
--   it next wants to be called (or nil)
-- @treturn boolean true
-- @return nil, message when no worker could be started
function pool.run(jobs, opts)
  opts = opts or {}
  core.proc_ignore_sigpipe()
  local clock = core.proc_clock
  local self = { workers = {}, by_fd = {}, lua = opts.lua or pool.interpreter() }
  local nworkers = math.max(1, math.min(opts.workers or 1, #jobs))
  local fixed_depth = opts.depth and math.max(1, opts.depth)
  local pending = {} -- stack of jobs to run again (queued behind a failed job), taken first
  local next_job, remaining, next_id = 1, #jobs, 0
  local avg -- moving average of the job seconds reported by workers
  if remaining == 0 then return true end

  local function unassigned() return #pending + (#jobs - next_job + 1) end
  local function has_work() return #pending > 0 or next_job <= #jobs end
  local function take()
    if #pending > 0 then return table.remove(pending) end
    local job = jobs[next_job]
    next_job = next_job + 1
    return job
  end

  local function depth()
    if fixed_depth then return fixed_depth end
    local d = 2
    if avg then d = math.max(2, math.min(pool.MAX_DEPTH, math.ceil(pool.QUEUE_SECONDS / math.max(avg, 1e-6)))) end
    -- near the end, spread what is left over the workers
    local share = math.ceil(unassigned() / nworkers) + 1
    return math.max(2, math.min(d, share))
  end

  local function start_head(w, now)
    local head = w.queue[1]
    if not head then return end
    head.started = now
    local t = head.job.timeout or opts.timeout
    head.deadline = t and (now + t) or nil
  end

  local function finish(job, result, tail, lazy)
    remaining = remaining - 1
    if opts.on_done then opts.on_done(job, result, tail, lazy) end
  end

  -- The worker is gone: its running job fails with `result`, the queued ones are retried.
  -- The running job may have been killed inside the AtomicWriter: remove its temp file.
  local function lost(w, result, sig, now)
    local status = retire(self, w, sig)
    if result.error == nil then result.error = describe_exit(status) end
    local head = table.remove(w.queue, 1)
    for k = #w.queue, 1, -1 do pending[#pending + 1] = w.queue[k].job end
    w.queue, w.qbytes = {}, 0
    if head then
      if head.job.output_path then os.remove(head.job.output_path .. ".tmp") end
      result.seconds = (now or clock()) - (head.started or now or clock())
      finish(head.job, result)
    end
  end

  local function dispatch(w, now)
    if w.broken then return false end
    local want = fixed_depth or depth()
    if #w.queue > 0 and #w.queue > want // 2 then return true end
    local lines = {}
    local was_empty = #w.queue == 0
    while #w.queue < want and has_work() and (#w.queue == 0 or w.qbytes < pool.MAX_QUEUED_BYTES) do
      local job = take()
      next_id = next_id + 1
      local line = next_id .. "\t" .. wire_job(job) .. "\n"
      w.queue[#w.queue + 1] = { job = job, id = next_id, bytes = #line }
      w.qbytes = w.qbytes + #line
      lines[#lines + 1] = line
    end
    if #lines == 0 then return true end
    if was_empty then start_head(w, now or clock()) end
    local ok, err = core.proc_write(w.wfd, table.concat(lines))
    if not ok then
      -- the worker is gone (EPIPE): put the unsent jobs back; reading its pipe reports the exit
      for _ = 1, #lines do
        local q = table.remove(w.queue)
        w.qbytes = w.qbytes - q.bytes
        pending[#pending + 1] = q.job
      end
      w.broken = err
      return false
    end
    return true
  end

  local function fill(now)
    for i = #self.workers, 1, -1 do
      local w = self.workers[i]
      if w.broken and #w.queue == 0 then
        retire(self, w)
      elseif has_work() then
        dispatch(w, now)
      end
    end
    while #self.workers < nworkers and has_work() do
      local w, err = spawn(self)
      if not w then
        if #self.workers == 0 then return nil, err end
        break
      end
      dispatch(w, now)
    end
    return true
  end

  -- Reads what worker `w` sent; returns false when its pipe is closed (the worker died).
  local function drain(w, now)
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
        start_head(w, now)
        -- a worker's first job pays for loading modules: not a measure of the jobs
        local s = result.seconds
        if s and w.seen then avg = avg and (avg * 0.8 + s * 0.2) or s end
        w.seen = true
        finish(head.job, result, tail, lazy)
      end
      pos = nl + 1
    end
    w.buf = pos > #buf and "" or buf:sub(pos)
    return true
  end

  -- How long the runner may sleep between wake-ups without starving a worker: at most
  -- WAKE_SECONDS, and half the (estimated) work queued behind each running job; not at all
  -- when a worker has fewer than DOZE_MIN_QUEUED jobs queued (long jobs: few wake-ups anyway).
  local function doze_seconds()
    if fixed_depth or not avg then return 0 end
    local s = pool.WAKE_SECONDS
    for _, w in ipairs(self.workers) do
      local n = #w.queue - 1 -- queued behind the running job
      if n >= 0 then
        if n < pool.DOZE_MIN_QUEUED then return 0 end
        local q = n * avg / 2
        if q < s then s = q end
      end
    end
    return s
  end

  local now = clock()
  local ok, err = fill(now)
  if not ok then return nil, err end
  local tick_at = opts.on_tick and opts.on_tick(now)
  local last_wake = now
  while remaining > 0 do
    now = clock()
    -- the nearest deadline (job timeouts and the tick)
    local due = tick_at
    for _, w in ipairs(self.workers) do
      local d = w.queue[1] and w.queue[1].deadline
      if d and (not due or d < due) then due = d end
    end
    local dz = doze_seconds()
    if dz >= 0.001 and now - last_wake < dz then
      local until_t = last_wake + dz
      if due and due < until_t then until_t = due end
      local ms = math.ceil((until_t - now) * 1000)
      if ms > 0 then core.proc_poll({}, ms) end
      now = clock()
    end
    local wait = -1
    if due then wait = math.max(0, math.ceil((due - now) * 1000)) end
    local fds = {}
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
    for _, fd in ipairs(ready) do
      local w = self.by_fd[fd]
      if w and not drain(w, now) then
        lost(w, { status = "failed", error_kind = "WorkerCrash" }, nil, now)
      end
    end
    for i = #self.workers, 1, -1 do
      local w = self.workers[i]
      local head = w and w.queue[1]
      if head and head.deadline and now >= head.deadline then
        -- results may be waiting in the pipe: read them before blaming the head job
        local alive = true
        repeat
          local r = core.proc_poll({ w.rfd }, 0)
          local more = r and #r > 0
          if more then alive = drain(w, now) end
        until not more or not alive
        if not alive then
          lost(w, { status = "failed", error_kind = "WorkerCrash" }, nil, now)
        else
          head = w.queue[1]
          if head and head.deadline and now >= head.deadline then
            lost(w, { status = "failed", error_kind = "Timeout",
              error = string.format("timed out after %gs", head.deadline - head.started) }, 9, now)
          end
        end
      end
    end
    if opts.on_tick and (tick_at == nil or now >= tick_at) then tick_at = opts.on_tick(now) end
    ok, err = fill(now)
    if not ok and remaining > 0 then
      -- no worker could be started: fail the rest instead of spinning
      while has_work() do
        local job = take()
        remaining = remaining - 1
        if opts.on_done then
          opts.on_done(job, { status = "failed", error = tostring(err), error_kind = "WorkerCrash", seconds = 0 })
        end
      end
    end
  end
  for i = #self.workers, 1, -1 do retire(self, self.workers[i]) end
  return true
end

return pool
