/*
 * mem_budget.c - a memory budget for untrusted Lua chunks (job files, .lua build sources).
 *
 * A count hook cannot bound memory: one VM instruction (`s = s .. s`) or one C library
 * call (`("x"):rep(n)`) can allocate gigabytes between two hook calls. So while a budget
 * is active, the state's allocator is wrapped: every growth is counted and a request that
 * would take the net new memory past the limit fails. Lua then runs an emergency
 * collection, retries, and raises its ordinary "not enough memory" error, which the
 * sandbox's pcall turns into a budget error (`exceeded()` says why the error happened).
 *
 *   local b <close> = core.mem_budget(bytes [, total_bytes])   -- wraps the allocator now
 *   b:exceeded()  -> true when a request was refused
 *   b:used()      -> net bytes allocated since the budget started (may be negative)
 *   b:allocated() -> gross bytes allocated since then (total_bytes bounds it)
 *   b:release()   -- restores the allocator (also __close and __gc); idempotent
 *
 * Shrinking and freeing never fail (Lua requires it). Budgets do not nest: a second one
 * while one is active is API misuse.
 */
#include "aqs.h"

#define MEM_BUDGET_MT "actionqueue.storage.MemBudget"

typedef struct {
  lua_Alloc f;       /* the allocator the budget wraps (restored on release) */
  void *ud;
  long long limit;   /* net bytes allowed */
  long long used;    /* net bytes allocated since the start (frees count negative) */
  long long total;   /* gross bytes allocated since the start (frees do not count) */
  long long total_limit;  /* gross bytes allowed: bounds the copying a loop of big
                           * concatenations or string.rep calls does in C between two
                           * count-hook calls (freed at once, so the net limit never trips) */
  int active;
  int exceeded;
} MemBudget;

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  MemBudget *b = (MemBudget *)ud;
  /* With ptr == NULL, osize is the type of the new object, not a size. */
  long long old = ptr ? (long long)osize : 0;
  void *p;
  if (nsize > 0 && nsize > (size_t)old) {
    if (nsize > (size_t)b->limit || b->used > b->limit - ((long long)nsize - old) ||
        b->total > b->total_limit - ((long long)nsize - old)) {
      b->exceeded = 1;
      return NULL;
    }
  }
  p = b->f(b->ud, ptr, osize, nsize);
  if (nsize == 0) b->used -= old;
  else if (p != NULL) {
    b->used += (long long)nsize - old;
    if ((long long)nsize > old) b->total += (long long)nsize - old;
  }
  return p;
}

static void budget_release(lua_State *L, MemBudget *b) {
  void *ud = NULL;
  if (!b->active) return;
  /* Only unwrap our own wrapper: never install a stale allocator over another one. */
  if (lua_getallocf(L, &ud) == budget_alloc && ud == b) lua_setallocf(L, b->f, b->ud);
  b->active = 0;
}

static int active_key;  /* registry key: the active budget (lightuserdata address) */

int aqs_mem_budget(lua_State *L) {
  lua_Integer limit = luaL_checkinteger(L, 1);
  lua_Integer total_limit = luaL_optinteger(L, 2, LUA_MAXINTEGER);
  MemBudget *b;
  luaL_argcheck(L, limit > 0, 1, "budget must be positive");
  luaL_argcheck(L, total_limit > 0, 2, "total budget must be positive");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &active_key) != LUA_TNIL) {
    MemBudget *other = (MemBudget *)luaL_testudata(L, -1, MEM_BUDGET_MT);
    if (other && other->active) return luaL_error(L, "mem_budget: a budget is already active");
  }
  lua_pop(L, 1);
  b = (MemBudget *)lua_newuserdatauv(L, sizeof *b, 0);
  b->f = lua_getallocf(L, &b->ud);
  b->limit = (long long)limit;
  b->used = 0;
  b->total = 0;
  b->total_limit = (long long)total_limit;
  b->active = 1;
  b->exceeded = 0;
  luaL_setmetatable(L, MEM_BUDGET_MT);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &active_key);
  lua_setallocf(L, budget_alloc, b);
  return 1;
}

static MemBudget *check_budget(lua_State *L) {
  return (MemBudget *)luaL_checkudata(L, 1, MEM_BUDGET_MT);
}

static int mb_release(lua_State *L) {
  MemBudget *b = check_budget(L);
  budget_release(L, b);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &active_key) == LUA_TUSERDATA && lua_touserdata(L, -1) == b) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &active_key);
  }
  lua_pop(L, 1);
  return 0;
}

static int mb_exceeded(lua_State *L) {
  lua_pushboolean(L, check_budget(L)->exceeded);
  return 1;
}

static int mb_used(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_budget(L)->used);
  return 1;
}

static int mb_allocated(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_budget(L)->total);
  return 1;
}

static int mb_tostring(lua_State *L) {
  MemBudget *b = check_budget(L);
  lua_pushfstring(L, "MemBudget (%s, %I of %I bytes)", b->active ? "active" : "released",
                  (lua_Integer)b->used, (lua_Integer)b->limit);
  return 1;
}

static const luaL_Reg mb_methods[] = {
  {"allocated", mb_allocated},
  {"exceeded", mb_exceeded},
  {"release", mb_release},
  {"used", mb_used},
  {NULL, NULL}
};

void aqs_mem_budget_init(lua_State *L) {
  if (luaL_newmetatable(L, MEM_BUDGET_MT)) {
    luaL_newlib(L, mb_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, mb_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, mb_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, mb_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
