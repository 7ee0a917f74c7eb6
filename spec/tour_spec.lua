-- docs/tour.md shows real output: every `$ aqstore ...` command of the tour, replayed in
-- order in a fresh directory, prints exactly the text that follows it (byte for byte),
-- REPL sessions included. After an intended output change:
--   lua5.4 spec/support/tour.lua --update
local fixtures = require "support.fixtures"
local files = require "support.files"
local tour = require "support.tour"

describe("docs/tour.md", function()
  local results
  lazy_setup(function()
    if not fixtures.available() then return end
    local dir = files.tmpdir()
    local text = assert(files.read(fixtures.repo .. "/docs/tour.md"))
    results = tour.replay(text, dir, files.abs(fixtures.repo), files.abs(fixtures.root))
    files.rmtree(dir)
  end)

  it("has commands to replay", function()
    if not results then pending("shared fixtures not found") return end
    assert.is_true(#results >= 10)
  end)

  it("every command prints what the tour shows (else: lua5.4 spec/support/tour.lua --update)", function()
    if not results then pending("shared fixtures not found") return end
    for _, r in ipairs(results) do
      assert.equal(r.want, r.got, "docs/tour.md:" .. (r.first - 1) .. ": $ " .. r.cmd)
    end
  end)
end)
