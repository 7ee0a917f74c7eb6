-- End-to-end specs of the inspection commands of aqstore (verify, validate, inspect,
-- show, dump, build, diff, stats) on the shared fixtures and the bundled examples.
local cjson = require "cjson"
local fixtures = require "support.fixtures"
local run = require "support.aqstore_run"

local function fx(name) return fixtures.path("snapshot", name) end
local EX = fixtures.repo .. "/examples/"

describe("aqstore usage", function()
  it("lists the inspection commands, with exit code 0 for --help", function()
    local r = run.cli { "--help" }
    assert.equal(0, r.code)
    for _, c in ipairs { "verify", "validate", "inspect", "show", "dump", "build", "diff", "stats", "repl" } do
      assert.matches("\n   " .. c .. " ", r.out)
    end
  end)

  it("has --help with an example on every inspection command", function()
    for _, c in ipairs { "verify", "validate", "inspect", "show", "dump", "build", "diff", "stats", "repl" } do
      local r = run.cli { c, "--help" }
      assert.equal(0, r.code, c)
      assert.matches("Usage: aqstore " .. c, r.out)
      assert.matches("Example:\n  aqstore " .. c, r.out)
    end
  end)

  it("exits 2 on usage errors", function()
    assert.equal(2, run.cli({ "frobnicate" }).code)
    local r = run.cli { "show" }
    assert.equal(2, r.code)
    assert.matches("aqstore: error:", r.err)
    assert.equal(2, run.cli({ "validate", "--bogus", "x" }).code)
    assert.equal(2, run.cli({ "show", "x.snap", "runs[" }).code)
  end)
end)

describe("aqstore colours", function()
  local has_script = os.execute("command -v script >/dev/null 2>&1")
  local it_tty = has_script and it or pending
  local function on_tty(env)
    local cmd = string.format("%s lua5.4 %s validate %s", env, run.quote(run.aqstore),
      run.quote(fixtures.repo .. "/examples/broken.lua"))
    local p = io.popen("script -qec " .. run.quote(cmd) .. " /dev/null", "r")
    local out = p:read("a")
    p:close()
    return out
  end

  it_tty("colours output on a terminal", function()
    assert.matches("\27%[", on_tty("NO_COLOR="))
  end)

  it_tty("never colours with NO_COLOR, nor into a pipe", function()
    local out = on_tty("NO_COLOR=1")
    assert.matches("INVALID", out)
    assert.not_matches("\27%[", out)
    assert.not_matches("\27%[", run.cli({ "validate", fixtures.repo .. "/examples/broken.lua" }).out)
  end)
end)

local ready = run.snapshot_ready() and fixtures.available()
local describe_e2e = ready and describe or pending

describe_e2e("aqstore inspection commands (end to end)", function()
  local tmp = os.tmpname()
  local built = tmp .. ".queue.snap"
  local broken = tmp .. ".broken.snap"

  setup(function()
    local r = run.cli { "build", EX .. "queue.lua", built }
    assert.equal(0, r.code, r.err)
    -- a snapshot file with several violations (the writer refuses to write one)
    local build = require "actionqueue.storage.snapshot.build"
    local snapshot = require "actionqueue.storage.snapshot"
    local core = require "actionqueue.storage.core"
    local snap = assert(build.build(dofile(EX .. "broken.lua"), { validate = false }))
    local json = require "actionqueue.storage.inspect.json"
    local S = require "actionqueue.storage.schema.snapshot"
    local payload = snapshot.encode and snapshot.encode(snap) or json.encode_typed(snap, S.root)
    local f = assert(io.open(broken, "wb"))
    f:write(core.frame_encode(4, payload))
    f:close()
  end)

  teardown(function()
    os.remove(built); os.remove(broken); os.remove(tmp)
  end)

  describe("build", function()
    it("writes a valid snapshot from the Lua example", function()
      local r = run.cli { "build", EX .. "queue.lua", tmp .. ".b1" }
      assert.equal(0, r.code)
      assert.matches("wrote .* %(4 tasks, 5 runs, %d+ bytes%)", r.out)
      assert.equal(0, run.cli({ "validate", tmp .. ".b1" }).code)
      os.remove(tmp .. ".b1")
    end)

    it("builds the same snapshot from the JSON variant", function()
      local r = run.cli { "build", "--json", EX .. "queue.json", tmp .. ".b2" }
      assert.equal(0, r.code, r.err)
      assert.equal(5, cjson.decode(r.out).runs)
      assert.equal(0, run.cli({ "diff", built, tmp .. ".b2" }).code)
      os.remove(tmp .. ".b2")
    end)

    it("refuses an invalid source with the path of the problem, writing nothing", function()
      local r = run.cli { "build", EX .. "broken.lua", tmp .. ".b3" }
      assert.equal(1, r.code)
      assert.matches("broken.lua: ", r.err)
      assert.is_nil(io.open(tmp .. ".b3"))
    end)
  end)

  describe("verify", function()
    it("passes good frames and names the problem of bad ones", function()
      local r = run.cli { "verify", fx "valid_01_tasks.snap", fx "frame_03_bitflip_crc.snap" }
      assert.equal(1, r.code)
      assert.matches("OK  [^\n]*valid_01_tasks.snap: frame v4, payload %d+ bytes, crc 0x%x+", r.out)
      assert.matches("BAD [^\n]*frame_03_bitflip_crc.snap: crc_mismatch at offset %d+: Snapshot CRC%-32 mismatch: "
        .. "expected 0x93fae80f, actual 0x93fae88f", r.out)
      assert.equal(0, run.cli({ "verify", fx "valid_00_empty.snap" }).code)
    end)

    it("classifies every frame fixture as bad, in JSON too (payload not parsed)", function()
      for _, e in ipairs(fixtures.manifest("snapshot")) do
        if e.kind == "frame" and not e.expect:match("^ERR Decode error") then
          local r = run.cli { "verify", "--json", fx(e.file) }
          assert.equal(1, r.code, e.file)
          local doc = cjson.decode(r.out)
          assert.is_false(doc.ok)
          assert.not_equal("ok", doc.files[1].status)
          if e.expect:match("^ERR ") and doc.files[1].status ~= "short_payload" then
            assert.equal(e.expect:sub(5), doc.files[1].detail, e.file) -- the loader's text
          end
        end
      end
      -- garbage JSON with a correct CRC: the frame is fine
      assert.equal(0, run.cli({ "verify", fx "frame_13_garbage_json_crc_ok.snap" }).code)
    end)
  end)

  describe("validate", function()
    it("accepts valid files", function()
      local r = run.cli { "validate", fx "valid_02_runs_all_states.snap" }
      assert.equal(0, r.code)
      assert.matches("^VALID .* %(2 tasks, 25 runs%)", r.out)
    end)

    it("reports the violation of every mapping fixture with its path", function()
      for _, e in ipairs(fixtures.manifest("snapshot")) do
        if e.kind == "mapping" and e.validate_snapshot_display then
          local r = run.cli { "validate", "--all", "--json", fx(e.file) }
          assert.equal(1, r.code, e.file)
          local doc = cjson.decode(r.out)
          assert.is_false(doc.valid)
          local found = false
          for _, v in ipairs(doc.violations) do
            assert.is_string(v.path)
            -- decode-time checks reject some of them first: then the loader's text
            if v.message == e.validate_snapshot_display or "ERR " .. v.message == e.expect then found = true end
          end
          assert.is_true(found, e.file)
        end
      end
    end)

    it("lists every violation of a file with several, with paths (--all --json)", function()
      local r = run.cli { "validate", "--all", "--json", broken }
      assert.equal(1, r.code)
      local doc = cjson.decode(r.out)
      assert.equal(6, #doc.violations)
      local paths = {}
      for _, v in ipairs(doc.violations) do
        assert.is_string(v.kind)
        assert.is_string(v.message)
        paths[#paths + 1] = v.path
      end
      assert.same({ "metadata.task_count", "tasks[1].canceled_at", "runs[1].state_history[2]", "runs[2].lease",
                    "engine.paused_at", "budgets[1].task_id" }, paths)
    end)

    it("reports only the first violation without --all, in text", function()
      local r = run.cli { "validate", broken }
      assert.equal(1, r.code)
      assert.matches("^INVALID .*: 1 violation\n  metadata.task_count: snapshot task_count mismatch: "
        .. "declared 3, actual 2 %[TaskCountMismatch%]", r.out)
      r = run.cli { "validate", "--all", EX .. "broken.lua" }
      assert.equal(1, r.code)
      assert.matches("6 violations", r.out)
      assert.matches("  runs%[2%]%.lease: snapshot run c0000000%-0000%-4000%-8000%-000000000002 has lease "
        .. "metadata in invalid state Completed %[InvalidLeasePresence%]", r.out)
    end)

    it("reports unreadable files as one violation, exit 1", function()
      local r = run.cli { "validate", "--all", "--json", fx "frame_03_bitflip_crc.snap" }
      assert.equal(1, r.code)
      local doc = cjson.decode(r.out)
      assert.equal(1, #doc.violations)
      assert.equal("Snapshot CRC-32 mismatch: expected 0x93fae80f, actual 0x93fae88f", doc.violations[1].message)
      assert.is_false(doc.readable)
    end)
  end)

  describe("inspect", function()
    it("prints the summary", function()
      local r = run.cli { "inspect", fx "valid_02_runs_all_states.snap" }
      assert.equal(0, r.code)
      assert.matches("^ActionQueue snapshot", r.out)
      assert.matches("wal_sequence%s+177", r.out)
      assert.matches("runs%s+25: Scheduled 1, Ready 3, Leased 1, Running 3, RetryWait 1, Suspended 1, "
        .. "Completed 5, Failed 3, Canceled 7", r.out)
      assert.not_matches("\27%[", r.out)
    end)

    it("prints one JSON document with --json", function()
      local r = run.cli { "inspect", "--json", built }
      assert.equal(0, r.code)
      local doc = cjson.decode(r.out)
      assert.equal(4, doc.tasks)
      assert.equal(1, doc.runs_by_state.Running)
      assert.equal(1, doc.counts.ledger_entries)
      assert.equal("2026-01-01T02:00:00Z", doc.taken_at)
      assert.is_false(doc.engine.paused)
    end)

    it("exits 1 with the loader's message on a corrupt file", function()
      local r = run.cli { "inspect", fx "frame_03_bitflip_crc.snap" }
      assert.equal(1, r.code)
      assert.matches("frame_03_bitflip_crc.snap: Snapshot CRC%-32 mismatch", r.err)
      r = run.cli { "inspect", "--json", fx "mapping_14a_history_invalid_transition.snap" }
      assert.equal(1, r.code)
      assert.matches("^Mapping error: ", cjson.decode(r.out).error.message)
    end)
  end)

  describe("show", function()
    it("prints one part through the schema", function()
      local r = run.cli { "show", built, "runs[2].attempts" }
      assert.equal(0, r.code)
      assert.matches("^runs%[2%]%.attempts: 2 entries\n  %[1%] SnapshotAttemptHistoryEntry", r.out)
      assert.matches("result: Timeout", r.out)
      r = run.cli { "show", built, "tasks[3].task_spec.payload.bytes" }
      assert.matches("%(16 bytes%) hex 89504e47", r.out)
    end)

    it("prints the part as JSON with --json", function()
      local r = run.cli { "show", "--json", built, "engine" }
      assert.equal(0, r.code)
      local doc = cjson.decode(r.out)
      assert.equal("SnapshotEngineControl", doc.type)
      assert.equal(1767229200, doc.value.paused_at)
    end)

    it("exits 2 on a path that does not fit the schema, 1 on a bad file", function()
      local r = run.cli { "show", built, "runs[2].nope" }
      assert.equal(2, r.code)
      assert.matches('has no field "nope"', r.err)
      assert.equal(2, run.cli({ "show", built, "runs[99]" }).code)
      assert.equal(1, run.cli({ "show", fx "frame_00_empty_file.snap", "engine" }).code)
    end)
  end)

  describe("dump", function()
    it("prints indented JSON in schema order that compacts to the canonical payload", function()
      local r = run.cli { "dump", fx "valid_02_runs_all_states.snap" }
      assert.equal(0, r.code)
      assert.matches('^{\n  "version": 4,\n  "timestamp": 1700010000,\n  "metadata": {', r.out)
      local compact = run.cli { "dump", "--compact", fx "valid_09_big_numbers.snap" }
      local data = assert(fixtures.read(fx "valid_09_big_numbers.snap"))
      assert.equal(data:sub(13), (compact.out:gsub("\n$", "")))
    end)

    it("prints JSON that re-parses to the same value and re-encodes to the canonical payload", function()
      local core = require "actionqueue.storage.core"
      local S = require "actionqueue.storage.schema.snapshot"
      for _, name in ipairs { "valid_02_runs_all_states.snap", "valid_08_strings.snap", "valid_09_big_numbers.snap" } do
        local payload = assert(fixtures.read(fx(name))):sub(13)
        local r = run.cli { "dump", fx(name) }
        assert.equal(0, r.code, r.err)
        assert.equal("\n", r.out:sub(-1))
        local back = assert(core.json_decode(r.out, S.root))
        assert.same(assert(core.json_decode(payload, S.root)), back)
        assert.equal(payload, core.json_encode(back, S.root))
      end
    end)

    it("uses the reference's pretty layout (serde_json to_string_pretty)", function()
      local data = assert(fixtures.read(fx "compat_05_pretty_whitespace.snap"))
      local r = run.cli { "dump", fx "compat_05_pretty_whitespace.snap" }
      assert.equal(0, r.code, r.err)
      assert.equal(data:sub(13), (r.out:gsub("\n$", "")))
    end)
  end)

  describe("diff", function()
    it("exits 0 on identical snapshots and 1 with the changes otherwise", function()
      local r = run.cli { "diff", built, built }
      assert.equal(0, r.code)
      assert.matches("no differences", r.out)
      r = run.cli { "diff", fx "valid_04_engine_resumed.snap", fx "valid_05_engine_repaused.snap" }
      assert.equal(1, r.code)
      assert.matches("engine%.", r.out)
      r = run.cli { "diff", "--json", fx "valid_01_tasks.snap", fx "valid_02_runs_all_states.snap" }
      assert.equal(1, r.code)
      local doc = cjson.decode(r.out)
      assert.is_false(doc.identical)
      assert.equal(25, #doc.runs.added)
    end)
  end)

  describe("stats", function()
    it("prints sizes, counts, largest payloads and oldest runs", function()
      local r = run.cli { "stats", built }
      assert.equal(0, r.code)
      assert.matches("size%s+%d+ bytes %(payload %d+ bytes%)", r.out)
      assert.matches("runs by state%s+Scheduled 1, Ready 1, Running 1, Completed 1, Canceled 1", r.out)
      assert.matches("largest payloads", r.out)
      assert.matches("oldest unfinished runs", r.out)
      r = run.cli { "stats", "--json", fx "valid_02_runs_all_states.snap" }
      local doc = cjson.decode(r.out)
      assert.equal(25, doc.counts.runs)
      assert.equal(7, doc.runs_by_state.Canceled)
    end)
  end)
end)
