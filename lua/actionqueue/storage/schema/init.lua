--- Schema descriptions: the single source of truth for every record and enum.
-- @module actionqueue.storage.schema
return {
  dsl = require "actionqueue.storage.schema.dsl",
  types = require "actionqueue.storage.schema.types",
  snapshot = require "actionqueue.storage.schema.snapshot",
  wal = require "actionqueue.storage.schema.wal",
}
