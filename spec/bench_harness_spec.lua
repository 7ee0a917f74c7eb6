-- The benchmark harness's parsing helpers (bench/lib/harness.lua). Timings themselves are
-- never tested: `make bench` prints them.
local H = dofile("bench/lib/harness.lua")

-- A report of GNU time 1.9 `-v` (trimmed to the lines the harness reads and a few more).
local TIME_V = [[
	Command being timed: "lua5.4 scripts/aqstore check bench/data/scaled_10.snap"
	User time (seconds): 0.08
	System time (seconds): 0.02
	Percent of CPU this job got: 96%
	Elapsed (wall clock) time (h:mm:ss or m:ss): 0:00.11
	Maximum resident set size (kbytes): 4196
	Exit status: 0
]]

describe("bench harness", function()
  it("reads wall, CPU and peak RSS from /usr/bin/time -v", function()
    local t = H.parse_time_v("some output of the command\n" .. TIME_V)
    assert.near(0.11, t.wall, 1e-9)
    assert.near(0.10, t.cpu, 1e-9)
    assert.near(4196 / 1024, t.rss_mib, 1e-9)
    assert.equal(0, t.status)
  end)

  it("reads wall clock times of an hour and more, and exit statuses", function()
    local long = TIME_V:gsub("0:00%.11", "1:02:03.50"):gsub("Exit status: 0", "Exit status: 3")
    local t = H.parse_time_v(long)
    assert.near(3723.5, t.wall, 1e-9)
    assert.equal(3, t.status)
    assert.near(62.25, H.parse_time_v(TIME_V:gsub("0:00%.11", "1:02.25")).wall, 1e-9)
  end)

  it("returns nil when the report is missing or cut short", function()
    assert.is_nil(H.parse_time_v("lua5.4: cannot open file"))
    assert.is_nil(H.parse_time_v((TIME_V:gsub("\tMaximum resident[^\n]*\n", ""))))
  end)

  it("reads callgrind's instruction count in either spelling", function()
    assert.equal(247123456, H.parse_callgrind("==12== Events    : Ir\n==12== Collected : 247123456\n"))
    assert.equal(1116529161, H.parse_callgrind("==9== I   refs:      1,116,529,161\n"))
    assert.is_nil(H.parse_callgrind("valgrind: command not found"))
  end)

  it("reads the last AQS_BENCH line a child printed", function()
    local c = H.parse_child("AQS_BENCH build_wall=9 x=1\nnoise\n"
      .. "AQS_BENCH build_wall=0.8123 build_cpu=0.75 tasks=100000\n")
    assert.same({ build_wall = 0.8123, build_cpu = 0.75, tasks = 100000 }, c)
    assert.same({}, H.parse_child("no such line"))
  end)

  it("picks the child figures of the fastest run", function()
    local c = H.best_child({ { build_wall = 1.2, build_cpu = 1.0 }, {}, { build_wall = 0.9, build_cpu = 1.1 } },
      "build_wall")
    assert.same({ build_wall = 0.9, build_cpu = 1.1 }, c)
    assert.same({}, H.best_child({ {}, {} }, "build_wall"))
  end)

  it("states ratios and whether the target is met", function()
    assert.equal("0.50x (<= 0.7 met)", H.ratio_text(0.05, 0.1, 0.7))
    assert.equal("1.30x (<= 1 NOT met)", H.ratio_text(0.13, 0.1, 1.0))
    assert.equal("2.00x", H.ratio_text(2, 1))
    assert.equal("-", H.ratio_text(nil, 1, 1))
    assert.equal("-", H.ratio_text(1, nil, 1))
    assert.equal("247M", H.mega(247123456))
    assert.equal("-", H.mega(nil))
    assert.equal("1.5", H.num(1.5))
  end)

  it("quotes words for the shell", function()
    assert.equal("'it'\\''s'", H.q("it's"))
  end)

  it("makes issue 15 item 6's friendly input", function()
    local f = H.friendly_snapshot(4)
    assert.equal(4, #f.tasks)
    assert.equal(4, #f.runs)
    assert.equal("Once", f.tasks[2].run_policy)
    assert.same({ Repeat = { count = 3, interval_secs = 60 } }, f.tasks[1].run_policy)
    assert.same({ task = 3, state = "Ready" }, f.runs[3])
  end)
end)
