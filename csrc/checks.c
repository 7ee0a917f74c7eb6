/*
 * checks.c - the decode-time validations (snapshot-format.md 3.6, wal-format.md 8.4) of
 * TaskSpecWire, TaskConstraintsWire, RunInstanceWire and the Repeat run policy, once.
 *
 * The rules and their texts live only here.  Two kinds of callers fill the values a
 * check reads (checks.h):
 *   - the verdict's skim hooks (verdict.c), from the values captured while parsing;
 *   - core.schema_check(name): the native check function the schema names
 *     (dsl.native, schema/types.lua).  It reads the built Lua table, so every codec that
 *     builds values (json_decode.c, postcard.c through the schema's check refs) and
 *     snapshot.build (on the table it built) run these same functions.
 */
#include "checks.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char NIL_UUID[] = "00000000-0000-0000-0000-000000000000";

static int failf(char *msg, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, n, fmt, ap);
  va_end(ap);
  return -1;
}

int aqs_check_repeat(const aqs_repeat_vals *v, char *msg, size_t n) {
  if (v->count == 0) return failf(msg, n, "invalid repeat count: 0 (must be >= 1)");
  if (v->interval_secs == 0) return failf(msg, n, "invalid repeat interval_secs: 0 (must be >= 1)");
  return 0;
}

int aqs_check_constraints(const aqs_constraints_vals *v, char *msg, size_t n) {
  if (v->max_attempts_zero) return failf(msg, n, "invalid max_attempts value: 0 (must be >= 1)");
  if (v->has_timeout && v->timeout_secs == 0) return failf(msg, n, "timeout_secs must not be zero");
  if (v->has_key && v->key_len == 0) return failf(msg, n, "concurrency key must not be an empty string");
  if (v->has_caps) {
    if (v->ncaps == 0) return failf(msg, n, "required capabilities list must not be empty");
    if (v->empty_cap) return failf(msg, n, "required_capabilities contains an empty string");
  }
  return 0;
}

int aqs_check_taskspec(const aqs_taskspec_vals *v, char *msg, size_t n) {
  if (v->nil_id) return failf(msg, n, "invalid task identifier for task admission: %s", NIL_UUID);
  return 0;
}

/* An attempt only in Running also keeps it out of the terminal states. */
int aqs_check_runinst(const aqs_runinst_vals *v, char *msg, size_t n) {
  if (v->nil_run_id) return failf(msg, n, "run_id must not be nil");
  if (v->nil_task_id) return failf(msg, n, "task_id must not be nil");
  if (v->has_attempt && !v->running) return failf(msg, n, "active attempt_id is only valid in Running state");
  if (v->ready && v->created_at < v->scheduled_at)
    return failf(msg, n, "Ready state requires scheduled_at (%llu) <= created_at (%llu)",
                 (unsigned long long)v->scheduled_at, (unsigned long long)v->created_at);
  return 0;
}

/* ---- the native check functions on built Lua tables ------------------------------- */

/* Field `name` of the table at idx, pushed (ordinary indexing, like the Lua checks had). */
static int field(lua_State *L, int idx, const char *name) {
  return lua_getfield(L, idx, name);
}

/* The value on top is the number 0 (pops it). */
static int pop_is_zero(lua_State *L) {
  int z = lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == 0;
  lua_pop(L, 1);
  return z;
}

/* The value on top is the string s (byte for byte). */
static int is_str(lua_State *L, const char *s) {
  size_t n;
  const char *p;
  if (lua_type(L, -1) != LUA_TSTRING) return 0;
  p = lua_tolstring(L, -1, &n);
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* is_str, then pops the value. */
static int pop_is_str(lua_State *L, const char *s) {
  int eq = is_str(L, s);
  lua_pop(L, 1);
  return eq;
}

/* An unsigned 64-bit field (a u64 above 2^63-1 is held as the same bit pattern). */
static uint64_t pop_u64(lua_State *L) {
  uint64_t u = (uint64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return u;
}

static int read_repeat(lua_State *L, char *msg, size_t n) {
  aqs_repeat_vals v;
  field(L, 1, "Repeat");
  field(L, -1, "count");
  v.count = pop_is_zero(L) ? 0 : 1;
  field(L, -1, "interval_secs");
  v.interval_secs = pop_is_zero(L) ? 0 : 1;
  return aqs_check_repeat(&v, msg, n);
}

static int read_constraints(lua_State *L, char *msg, size_t n) {
  aqs_constraints_vals v;
  memset(&v, 0, sizeof v);
  field(L, 1, "max_attempts");
  v.max_attempts_zero = pop_is_zero(L);
  v.has_timeout = field(L, 1, "timeout_secs") != LUA_TNIL;
  v.timeout_secs = pop_is_zero(L) ? 0 : 1;
  v.has_key = field(L, 1, "concurrency_key") != LUA_TNIL;
  v.key_len = pop_is_str(L, "") ? 0 : 1;
  field(L, 1, "required_capabilities");
  v.has_caps = lua_toboolean(L, -1);
  if (v.has_caps) {
    lua_Integer i, len = luaL_len(L, -1);
    v.ncaps = (uint64_t)(len > 0 ? len : 0);
    for (i = 1; i <= len && !v.empty_cap; i++) {
      lua_geti(L, -1, i);
      v.empty_cap = pop_is_str(L, "");
    }
  }
  lua_pop(L, 1);
  return aqs_check_constraints(&v, msg, n);
}

static int read_taskspec(lua_State *L, char *msg, size_t n) {
  aqs_taskspec_vals v;
  field(L, 1, "id");
  v.nil_id = pop_is_str(L, NIL_UUID);
  return aqs_check_taskspec(&v, msg, n);
}

static int read_runinst(lua_State *L, char *msg, size_t n) {
  aqs_runinst_vals v;
  field(L, 1, "id");
  v.nil_run_id = pop_is_str(L, NIL_UUID);
  field(L, 1, "task_id");
  v.nil_task_id = pop_is_str(L, NIL_UUID);
  v.has_attempt = field(L, 1, "current_attempt_id") != LUA_TNIL;
  lua_pop(L, 1);
  field(L, 1, "state");
  v.running = is_str(L, "Running");
  v.ready = pop_is_str(L, "Ready");
  field(L, 1, "created_at");
  v.created_at = pop_u64(L);
  field(L, 1, "scheduled_at");
  v.scheduled_at = pop_u64(L);
  return aqs_check_runinst(&v, msg, n);
}

typedef int (*reader)(lua_State *L, char *msg, size_t n);

static const struct { const char *name; reader read; } NATIVE[AQS_CHECK_COUNT] = {
  {NULL, NULL},
  {"TaskSpec", read_taskspec},
  {"TaskConstraints", read_constraints},
  {"RunInstance", read_runinst},
  {"Repeat", read_repeat},
};

/* check(value) -> nil | text: the schema's check function of one native check. */
static int native_check(lua_State *L) {
  int id = (int)lua_tointeger(L, lua_upvalueindex(1));
  char msg[256];
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_checkstack(L, 8, "check");
  if (NATIVE[id].read(L, msg, sizeof msg) == 0) return 0;
  lua_pushstring(L, msg);
  return 1;
}

int aqs_check_native(lua_State *L, int idx) {
  int id = AQS_CHECK_NONE;
  idx = lua_absindex(L, idx);
  if (lua_tocfunction(L, idx) != native_check) return AQS_CHECK_NONE;
  if (lua_getupvalue(L, idx, 1)) {
    lua_Integer i = lua_tointeger(L, -1);
    if (i > AQS_CHECK_NONE && i < AQS_CHECK_COUNT) id = (int)i;
    lua_pop(L, 1);
  }
  return id;
}

/* schema_check(name) -> the native check function named name ("TaskSpec",
 * "TaskConstraints", "RunInstance", "Repeat"); raises on an unknown name. */
int aqs_schema_check(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int id;
  for (id = 1; id < AQS_CHECK_COUNT; id++) {
    if (strcmp(NATIVE[id].name, name) == 0) {
      lua_pushinteger(L, id);
      lua_pushcclosure(L, native_check, 1);
      return 1;
    }
  }
  return luaL_argerror(L, 1, lua_pushfstring(L, "no native check named %s", name));
}
