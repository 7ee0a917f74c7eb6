-- docs/repl.md is real runs: every `$ ...` block must print exactly what the document says
-- (see spec/support/repl_docs.lua; regenerate with `lua5.4 spec/support/repl_docs.lua --write`).
local files = require "support.files"
local run = require "support.aqstore_run"
local docs = require "support.repl_docs"

local describe_docs = run.snapshot_ready() and describe or pending

describe_docs("docs/repl.md", function()
  local dir
  setup(function() dir = docs.workdir() end)
  teardown(function() files.rmtree(dir) end)

  local doc = assert(files.read(docs.DOC))
  local blocks = docs.blocks(doc)

  it("has runnable examples", function()
    assert.is_true(#blocks >= 10)
  end)

  for _, b in ipairs(blocks) do
    it("line " .. b.first .. ": " .. b.line:sub(1, 70), function()
      assert.equal(b.text, docs.run(dir, b.line, b.inputs))
    end)
  end
end)
