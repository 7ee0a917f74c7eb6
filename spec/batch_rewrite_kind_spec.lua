-- The batch `rewrite` kind is `snapshot.rewrite`: the input is transcoded straight into
-- the output's atomic writer (issue 15.4), with no Lua tree, the same bytes as
-- `aqstore rewrite`, and the loader's or the writer's error naming the right side.
local core = require "actionqueue.storage.core"
local kinds = require "actionqueue.storage.batch.kinds"
local rewrite = require "actionqueue.storage.snapshot.rewrite"
local fixtures = require "spec.support.fixtures"
local files = require "support.files"
local variants = require "support.json_variants"

local tmpdir = files.tmpdir()
local IN, OUT, REF = tmpdir .. "/in.snap", tmpdir .. "/out.snap", tmpdir .. "/ref.snap"

local function job(input, output)
  return { kind = "rewrite", path = input, input = input, output = output, output_path = output }
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function payload_of(path)
  local r = core.frame_decode(read(path))
  return r.payload
end

describe("batch rewrite kind", function()
  teardown(function() files.rmtree(tmpdir) end)

  it("transcodes without a Lua tree: same bytes as snapshot.rewrite's table path", function()
    local src = fixtures.path("snapshot", "valid_12_medium_1000.snap")
    if not io.open(src) then pending("shared fixtures not found") return end
    local tree = variants.parse(payload_of(src))
    files.write(IN, core.frame_encode(4, variants.write(tree, { seed = 7, shuffle = true, pretty = true })))
    tree = nil   -- luacheck: ignore 311
    collectgarbage("collect")
    collectgarbage("stop")
    -- the runner alone (kinds.run around it also CRCs the input and output in chunks,
    -- which is garbage, not a tree)
    local run, res = kinds.get("rewrite").run, {}
    local before = collectgarbage("count")
    local ok, err = run(job(IN, OUT), res)
    local grown = collectgarbage("count") - before
    collectgarbage("restart")
    assert.is_true(ok, err)
    assert.equal(1000, res.tasks)
    -- loading the document into Lua tables first (the old runner) grows the heap by MiBs
    assert.is_true(grown < 512, ("the Lua heap grew by %.0f KiB"):format(grown))
    assert(rewrite.by_tables(IN, REF))
    assert.equal(read(REF), read(OUT))
  end)

  it("reports the input's loader error and leaves the output as it was", function()
    files.write(IN, core.frame_encode(4, '{"version":8,"tasks":[],"runs":['))
    files.write(OUT, "previous\n")
    local res = kinds.run(job(IN, OUT))
    assert.equal("failed", res.status)
    assert.equal("DecodeError", res.error_kind)
    assert.equal("previous\n", read(OUT))
  end)

  it("names the output when the output cannot be written", function()
    local src = fixtures.path("snapshot", "valid_12_medium_1000.snap")
    if not io.open(src) then pending("shared fixtures not found") return end
    local res = kinds.run(job(src, tmpdir .. "/missing-dir/out.snap"))
    assert.equal("failed", res.status)
    assert.matches("missing%-dir", res.error)
  end)

  it("says no snapshot for a missing input", function()
    local res = kinds.run(job(tmpdir .. "/nothing.snap", OUT))
    assert.equal("failed", res.status)
    assert.equal("NoSnapshot", res.error_kind)
  end)
end)
