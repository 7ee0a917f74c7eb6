-- The transcoding rewrite (snapshot.rewrite, csrc/transcode.c: parser -> canonical emitter
-- -> atomic writer, no Lua tree) against the table path (load into Lua tables, then the
-- canonical encoder: rewrite.by_tables): the same result and the same bytes on every
-- golden fixture and on non-canonical spellings of them (keys shuffled at every depth,
-- whitespace, escapes, other UUID spellings, optional fields left out, unknown fields,
-- unit variants as objects, records as arrays), and the same error text with nothing
-- written on every error (truncations and bit flips of the variants, CRC recomputed).
local core = require "actionqueue.storage.core"
local rewrite = require "actionqueue.storage.snapshot.rewrite"
local load = require "actionqueue.storage.snapshot.load"
local fixtures = require "spec.support.fixtures"
local files = require "support.files"
local variants = require "support.json_variants"
local S = require "actionqueue.storage.schema.snapshot"

local tmpdir = files.tmpdir()
local IN, A, B = tmpdir .. "/in.snap", tmpdir .. "/a.snap", tmpdir .. "/b.snap"
local PREVIOUS = "previous content\n"

local function outcome(r, err, side)
  if r == false then return "NONE" end
  if r then return ("OK tasks=%d runs=%d"):format(r.tasks, r.runs) end
  return ("ERR %s %s %s %s"):format(side, err.kind, err.message,
    tostring(err.violation and err.violation.path))
end

-- Rewrites `input` both ways; asserts the same outcome and bytes; returns the outcome.
local function same(input, what)
  files.write(A, PREVIOUS)
  files.write(B, PREVIOUS)
  local a = outcome(rewrite.rewrite(input, A))
  local b = outcome(rewrite.by_tables(input, B))
  assert(a == b, ("%s: transcoded %q, by tables %q"):format(what, a, b))
  local ga, gb = files.read(A), files.read(B)
  assert(ga == gb, what .. ": the transcoded bytes differ from the table path's")
  if a:sub(1, 3) ~= "OK " then assert(ga == PREVIOUS, what .. ": written on error") end
  return a
end

local function payload_of(path)
  local d = files.read(path)
  return d and d:sub(13)
end

local function manifest()
  if not fixtures.available() then return nil end
  return fixtures.manifest("snapshot")
end

-- The names of the schema's fields that have a default (may be left out).
local DEFAULTED = {}
do
  local seen = {}
  local function walk(t)
    if type(t) ~= "table" or seen[t] then return end
    seen[t] = true
    for _, f in ipairs(t.fields or {}) do
      if f.default ~= nil then DEFAULTED[f.name] = true end
      walk(f.type)
    end
    for _, v in ipairs(t.variants or {}) do walk(v.type) end
    walk(t.of)
  end
  walk(S.root)
end

local SPELLINGS = {
  { name = "shuffled", shuffle = true },
  { name = "pretty", pretty = true },
  { name = "escaped", escape = true },
  { name = "uuids", uuids = true },
  { name = "optional fields left out", drop_null = true },
  { name = "unknown fields", unknown = true },
  { name = "unit variants as objects", unit_objects = true },
  { name = "records as arrays", arrays = true },
  { name = "all at once", all = true },
}

describe("snapshot.rewrite transcodes", function()
  teardown(function() files.rmtree(tmpdir) end)

  it("like the table path on every golden fixture, byte for byte", function()
    local m = manifest()
    if not m then pending("shared fixtures not found") return end
    local oks, errs = 0, 0
    for _, c in ipairs(m) do
      local got = same(fixtures.path("snapshot", c.file), c.file)
      if got:sub(1, 3) == "OK " then oks = oks + 1 else errs = errs + 1 end
    end
    assert.is_true(oks > 30 and errs > 40, ("%d ok, %d errors"):format(oks, errs))
  end)

  it("a non-canonical payload (compat fixtures) comes out as the reference writes it", function()
    if not manifest() then pending("shared fixtures not found") return end
    for _, name in ipairs { "compat_01_serde_default_fields_omitted", "compat_03_unknown_fields_ignored",
                            "compat_05_pretty_whitespace", "compat_06_uuid_uppercase" } do
      assert.is_false(load.verdict_result(fixtures.path("snapshot", name .. ".snap")).canonical, name)
      same(fixtures.path("snapshot", name .. ".snap"), name)
      assert.equal(files.read(fixtures.path("snapshot", name .. ".canonical.snap")), files.read(A), name)
    end
  end)

  it("copies a canonical payload and gives a copy of any other up early", function()
    if not manifest() then pending("shared fixtures not found") return end
    local function copy_status(path)
      local w = assert(core.atomic_writer(A))
      assert(w:begin_frame(4))
      local r = load.verdict_result(path, w)
      w:abort()
      return r.status
    end
    assert.equal("ok", copy_status(fixtures.path("snapshot", "valid_02_runs_all_states.snap")))
    for _, name in ipairs { "compat_05_pretty_whitespace", "compat_06_uuid_uppercase" } do
      assert.equal("not_canonical", copy_status(fixtures.path("snapshot", name .. ".snap")), name)
      -- without a writer the verdict judges the whole payload as before
      assert.equal("ok", load.verdict_result(fixtures.path("snapshot", name .. ".snap")).status, name)
    end
  end)

  for _, sp in ipairs(SPELLINGS) do
    it("like the table path on " .. sp.name .. " spellings of the valid fixtures", function()
      local m = manifest()
      if not m then pending("shared fixtures not found") return end
      local n, ok, noncanon = 0, 0, 0
      for _, c in ipairs(m) do
        -- one spelling at a time on the valid and compat files; all at once also on the
        -- mapping ones (the rules judge the transcoded values)
        local tree = (c.kind == "valid" or c.kind == "compat" or (sp.all and c.kind == "mapping"))
          and variants.parse(payload_of(fixtures.path("snapshot", c.file)) or "")
        if tree then
          for seed = 1, sp.all and 2 or 1 do
            local opts = { seed = seed * 7919 + #c.file, defaulted = DEFAULTED }
            for k, v in pairs(sp) do opts[k] = v end
            local text = variants.write(tree, opts)
            files.write(IN, core.frame_encode(4, text))
            local got = same(IN, ("%s (%s, seed %d)"):format(c.file, sp.name, opts.seed))
            n = n + 1
            if got:sub(1, 3) == "OK " then ok = ok + 1 end
            if not load.verdict_result(IN).canonical then noncanon = noncanon + 1 end
          end
        end
      end
      assert.is_true(n > 20 and ok > n / 4 and noncanon > n / 2,
        ("%d variants, %d ok, %d non-canonical"):format(n, ok, noncanon))
    end)
  end

  it("reports the loader's errors and writes nothing on truncations and bit flips of the variants", function()
    local m = manifest()
    if not m then pending("shared fixtures not found") return end
    local n, errs = 0, 0
    for i, c in ipairs(m) do
      local tree = c.kind == "valid" and variants.parse(payload_of(fixtures.path("snapshot", c.file)) or "")
      if tree then
        local text = variants.write(tree, { seed = i, all = true, defaulted = DEFAULTED })
        for k = 1, 3 do
          local cut = text:sub(1, (#text * k) // 4)
          local at = (#text * k) // 4 + 1
          local flipped = text:sub(1, at - 1) .. string.char(text:byte(at) ~ (1 << (k % 7))) .. text:sub(at + 1)
          for _, bad in ipairs { cut, flipped } do
            files.write(IN, core.frame_encode(4, bad))
            local got = same(IN, ("%s (variant %d, case %d)"):format(c.file, i, k))
            n = n + 1
            if got:sub(1, 4) == "ERR " then errs = errs + 1 end
          end
        end
      end
    end
    assert.is_true(n >= 60 and errs > n / 2, ("%d cases, %d errors"):format(n, errs))
  end)

  it("builds no Lua tree: a shuffled, pretty 1000-task document larger than the window", function()
    if not manifest() then pending("shared fixtures not found") return end
    local tree = variants.parse(payload_of(fixtures.path("snapshot", "valid_12_medium_1000.snap")))
    files.write(IN, core.frame_encode(4, variants.write(tree, { seed = 5, shuffle = true, pretty = true })))
    tree = nil   -- luacheck: ignore 311
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    local r = rewrite.rewrite(IN, A)
    local grown = collectgarbage("count") - before
    collectgarbage("restart")
    assert.equal(1000, r.tasks)
    -- the table path builds the document: ~2.5 MiB of Lua tables and strings here
    assert.is_true(grown < 256, ("the Lua heap grew by %.0f KiB"):format(grown))
    assert.equal("OK tasks=1000 runs=1000", same(IN, "medium, shuffled and pretty"))
  end)
end)
