--- The `test` batch job kind: exercises the runner's failure paths (crash, hang, failure,
-- error, slow atomic copies). Test code, not the library's: it is registered through the
-- library's hook (`kinds.register`) when this module is required.
--
-- * in a spec's own process: `require "support.batch_test_kind"`;
-- * in an `aqstore` process a spec starts: `H.TEST_KIND_ENV` (LUA_INIT_5_4 requires this
--   module before the CLI runs);
-- * in the workers: the registration names this module, so the pool has every worker
--   require it before its first job.
local fsutil = require "actionqueue.storage.fsutil"
local kinds = require "actionqueue.storage.batch.kinds"

local function run(job)
  local action = job.action or "ok"
  if action == "sleep" then
    os.execute(string.format("sleep %.3f", job.seconds or 1))
    return true
  elseif action == "hang" then
    -- blocks on the job pipe: the runner never writes to a busy worker
    io.stdin:read("a")
    return true
  elseif action == "copy" or action == "copy_crash" then
    -- reads the input and writes it to the output as one frame through the AtomicWriter,
    -- slowly when `seconds` is set (a stand-in for rewrite jobs in kill/resume specs);
    -- `copy_crash` exits the worker half way, leaving the writer's temp file behind
    local data = assert(fsutil.read_file(job.path))
    local core = require "actionqueue.storage.core"
    local w, err = core.atomic_writer(job.output_path)
    if not w then return nil, err, "IoError" end
    assert(w:begin_frame(4))
    local step = math.max(1, #data // 10)
    for i = 1, #data, step do
      assert(w:write(data:sub(i, i + step - 1)))
      if action == "copy_crash" and i > #data // 2 then os.exit(3, false) end
      if job.seconds then os.execute(string.format("sleep %.3f", job.seconds / 10)) end
    end
    assert(w:finish_frame())
    local ok, cerr = w:close()
    if not ok then return nil, cerr, "IoError" end
    return true
  elseif action == "fail" then
    return nil, "test failure", "TestFailure"
  elseif action == "crash" then
    os.exit(3, false)
  elseif action == "error" then
    error("test error")
  end
  return true
end

kinds.register({
  name = "test", output = "optional", run = run, module = "support.batch_test_kind",
  fields = { action = "string", seconds = "number" },
  does = "test only: action = ok | sleep | hang | copy | copy_crash | fail | crash | error",
})

return { run = run }
