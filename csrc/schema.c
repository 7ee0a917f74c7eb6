/*
 * schema.c - compiles a schema type table (schema/dsl.lua) into the one C type graph
 * (schema.h) that the JSON decoder, the JSON encoder and the postcard codec walk.
 * Compiled once per root table and cached in one weak-keyed registry table; the
 * userdata's user value 1 holds the interned field/variant names, feature names, default
 * values, check functions and enum name lookups, addressed by integer refs; user value 2
 * is postcard's short-string cache (schema.h sc_entry).
 *
 * schema(type) -> Schema userdata (the same object on every call for one root)
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char CACHE_KEY = 'j';

static void free_type(jtype *t) {
  int i;
  if (!t) return;
  for (i = 0; i < t->nall; i++) {
    free(t->items[i].name);
    free(t->items[i].feature);
  }
  free(t->items);
  free(t->wire);
  free(t->name);
  free(t->variant_list);
  free(t);
}

static int schema_gc(lua_State *L) {
  jschema *s = (jschema *)luaL_checkudata(L, 1, AQS_SCHEMA_MT);
  int i;
  for (i = 0; i < s->ntypes; i++) free_type(s->types[i]);
  free(s->types);
  s->types = NULL;
  s->ntypes = s->cap = 0;
  s->root = NULL;
  return 0;
}

static int schema_tostring(lua_State *L) {
  jschema *s = (jschema *)luaL_checkudata(L, 1, AQS_SCHEMA_MT);
  lua_pushfstring(L, "Schema(%s, %d types)", s->root ? s->root->name : "?", s->ntypes);
  return 1;
}

typedef struct {
  lua_State *L;
  jschema *s;
  int refs, memo, none, nrefs;
} compiler;

static int add_ref(compiler *c) {   /* pops the value on top */
  lua_rawseti(c->L, c->refs, ++c->nrefs);
  return c->nrefs;
}

static char *dupstr(lua_State *L, const char *s, size_t n) {
  char *p = (char *)malloc(n + 1);
  if (!p) luaL_error(L, "schema: out of memory");
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static void *xcalloc(lua_State *L, size_t n, size_t sz) {
  void *p = calloc(n ? n : 1, sz);
  if (!p) luaL_error(L, "schema: out of memory");
  return p;
}

static jtype *compile_type(compiler *c, int idx);

/* THE table of type kinds: every kind's name and, for the bounded integer kinds, its
 * range.  Every codec reads ranges (jtype.min/max) and kind names (aqs_kind_name) from
 * here, and dsl.lua's scalar types take their min/max from it (core.schema_kinds), so a
 * kind or a range is declared once.  u64 is unbounded: the full unsigned 64-bit range
 * (held in a Lua integer as the same bit pattern). */
static const struct {
  const char *name;
  int kind;           /* rows in JK_* order: KINDS[k].kind == k */
  int scalar;         /* a plain value type: dsl.lua makes dsl.<name> from the row */
  int bounded;        /* min/max below apply */
  int64_t min, max;
} KINDS[] = {
  {"u8", JK_U8, 1, 1, 0, 255},
  {"u16", JK_U16, 1, 1, 0, 65535},
  {"u32", JK_U32, 1, 1, 0, 4294967295LL},
  {"u64", JK_U64, 1, 0, 0, 0},
  {"i32", JK_I32, 1, 1, -2147483647LL - 1, 2147483647LL},
  {"bool", JK_BOOL, 1, 0, 0, 0},
  {"string", JK_STRING, 1, 0, 0, 0},
  {"bytes", JK_BYTES, 1, 0, 0, 0},
  {"id", JK_ID, 0, 0, 0, 0},
  {"option", JK_OPTION, 0, 0, 0, 0},
  {"list", JK_LIST, 0, 0, 0, 0},
  {"record", JK_RECORD, 0, 0, 0, 0},
  {"enum", JK_ENUM, 0, 0, 0, 0},
  {NULL, 0, 0, 0, 0, 0}
};

const char *aqs_kind_name(int kind) {
  /* the rows are in JK_* order (checked by aqs_schema_init) */
  return kind >= 0 && kind <= JK_ENUM ? KINDS[kind].name : "?";
}

/* schema_kinds() -> {u8 = {scalar = true, min = 0, max = 255}, ..., u64 = {scalar = true},
 * id = {}, record = {}, ...}: the kinds table for dsl.lua (min/max only for the bounded
 * integer kinds). */
int aqs_schema_kinds(lua_State *L) {
  int i;
  lua_createtable(L, 0, (int)(sizeof KINDS / sizeof KINDS[0]));
  for (i = 0; KINDS[i].name; i++) {
    lua_createtable(L, 0, 3);
    if (KINDS[i].scalar) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "scalar");
    }
    if (KINDS[i].bounded) {
      lua_pushinteger(L, (lua_Integer)KINDS[i].min);
      lua_setfield(L, -2, "min");
      lua_pushinteger(L, (lua_Integer)KINDS[i].max);
      lua_setfield(L, -2, "max");
    }
    lua_setfield(L, -2, KINDS[i].name);
  }
  return 1;
}

static char *get_name(compiler *c, int idx, const char *what) {
  size_t n;
  const char *s;
  lua_getfield(c->L, idx, "name");
  s = lua_tolstring(c->L, -1, &n);
  if (!s) luaL_error(c->L, "schema: %s without a name", what);
  {
    char *p = dupstr(c->L, s, n);
    lua_pop(c->L, 1);
    return p;
  }
}

static void compile_record(compiler *c, jtype *t, int idx) {
  lua_State *L = c->L;
  int i, n;
  lua_getfield(L, idx, "fields");
  if (!lua_istable(L, -1)) luaL_error(L, "schema: record %s without fields", t->name);
  n = (int)lua_rawlen(L, -1);
  if (n > 64) luaL_error(L, "schema: record %s has more than 64 fields", t->name);
  t->items = (jitem *)xcalloc(L, (size_t)n, sizeof(jitem));
  for (i = 0; i < n; i++) {
    jitem *it = &t->items[i];
    int f;
    size_t len;
    const char *nm;
    lua_rawgeti(L, -1, i + 1);
    f = lua_gettop(L);
    lua_getfield(L, f, "name");
    nm = lua_tolstring(L, -1, &len);
    if (!nm) luaL_error(L, "schema: record %s: field without a name", t->name);
    it->name = dupstr(L, nm, len);
    it->len = len;
    t->nitems = t->nall = i + 1;
    it->name_ref = add_ref(c);
    lua_getfield(L, f, "type");
    it->type = compile_type(c, lua_gettop(L));
    lua_pop(L, 1);
    lua_getfield(L, f, "skip_if_none");
    it->skip_if_none = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, f, "default");
    if (lua_isnil(L, -1)) { it->dkind = JD_NONE; lua_pop(L, 1); }
    else if (c->none && lua_rawequal(L, -1, c->none)) { it->dkind = JD_ABSENT; lua_pop(L, 1); }
    else if (lua_isfunction(L, -1)) { it->dkind = JD_FUNC; it->dref = add_ref(c); }
    else { it->dkind = JD_VALUE; it->dref = add_ref(c); }
    lua_pop(L, 1);   /* field */
  }
  lua_pop(L, 1);     /* fields */
  lua_getfield(L, idx, "check");
  if (lua_isfunction(L, -1)) t->check_ref = add_ref(c); else lua_pop(L, 1);
}

static void compile_enum(compiler *c, jtype *t, int idx) {
  lua_State *L = c->L;
  int i, n, pass, k = 0, lookup;
  luaL_Buffer b;
  lua_getfield(L, idx, "variants");
  if (!lua_istable(L, -1)) luaL_error(L, "schema: enum %s without variants", t->name);
  n = (int)lua_rawlen(L, -1);
  t->items = (jitem *)xcalloc(L, (size_t)n, sizeof(jitem));
  t->wire = (int *)xcalloc(L, (size_t)n, sizeof(int));
  lua_createtable(L, 0, n);   /* variant name -> position in items */
  lua_insert(L, -2);
  lookup = lua_gettop(L) - 1;
  /* pass 0: the default build's variants (items[0 .. nitems-1], all the decoder sees);
   * pass 1: the feature-gated ones after them (items[nitems .. nall-1], encoder only) */
  for (pass = 0; pass < 2; pass++) {
    for (i = 0; i < n; i++) {
      jitem *it = &t->items[k];
      int v;
      size_t len;
      const char *nm, *feature;
      lua_rawgeti(L, -1, i + 1);
      v = lua_gettop(L);
      lua_getfield(L, v, "feature");
      if (lua_isnil(L, -1) == pass) { lua_pop(L, 2); continue; }
      t->nall = k + 1;   /* slot k is filled from here on (free_type frees it on an error) */
      if (pass) {
        feature = lua_tolstring(L, -1, &len);
        if (!feature) luaL_error(L, "schema: enum %s: variant feature must be a string", t->name);
        it->feature = dupstr(L, feature, len);
        it->feature_ref = add_ref(c);
      } else {
        lua_pop(L, 1);
      }
      lua_getfield(L, v, "name");
      nm = lua_tolstring(L, -1, &len);
      if (!nm) luaL_error(L, "schema: enum %s: variant without a name", t->name);
      it->name = dupstr(L, nm, len);
      it->len = len;
      it->index = i;
      t->wire[i] = k;
      t->nall = ++k;
      if (!pass) t->nitems = k;
      lua_pushvalue(L, -1);
      lua_pushinteger(L, t->wire[i]);
      lua_rawset(L, lookup);
      it->name_ref = add_ref(c);
      lua_getfield(L, v, "type");
      it->type = lua_isnil(L, -1) ? NULL : compile_type(c, lua_gettop(L));
      lua_pop(L, 1);
      lua_getfield(L, v, "check");
      if (lua_isfunction(L, -1)) it->check_ref = add_ref(c); else lua_pop(L, 1);
      lua_pop(L, 1);   /* variant */
    }
  }
  lua_pop(L, 1);   /* variants */
  t->lookup_ref = add_ref(c);
  k = t->nitems;
  /* the serde "expected ..." list of variant names */
  luaL_buffinit(L, &b);
  if (k == 0) luaL_addstring(&b, "there are no variants");
  else if (k == 1) { luaL_addchar(&b, '`'); luaL_addstring(&b, t->items[0].name); luaL_addchar(&b, '`'); }
  else if (k == 2) {
    luaL_addchar(&b, '`'); luaL_addstring(&b, t->items[0].name); luaL_addstring(&b, "` or `");
    luaL_addstring(&b, t->items[1].name); luaL_addchar(&b, '`');
  } else {
    luaL_addstring(&b, "one of ");
    for (i = 0; i < k; i++) {
      if (i) luaL_addstring(&b, ", ");
      luaL_addchar(&b, '`'); luaL_addstring(&b, t->items[i].name); luaL_addchar(&b, '`');
    }
  }
  luaL_pushresult(&b);
  {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    t->variant_list = dupstr(L, s, len);
  }
  lua_pop(L, 1);
}

/* A new type of the given kind (its range from KINDS), owned by the compiled schema. */
static jtype *new_type(compiler *c, int kind) {
  jtype *t;
  if (c->s->ntypes == c->s->cap) {
    int ncap = c->s->cap ? c->s->cap * 2 : 32;
    jtype **nt = (jtype **)realloc(c->s->types, (size_t)ncap * sizeof(jtype *));
    if (!nt) luaL_error(c->L, "schema: out of memory");
    c->s->types = nt;
    c->s->cap = ncap;
  }
  t = (jtype *)xcalloc(c->L, 1, sizeof(jtype));
  c->s->types[c->s->ntypes++] = t;
  t->kind = kind;
  t->min = KINDS[kind].min;
  t->max = KINDS[kind].max;
  return t;
}

static jtype *compile_type(compiler *c, int idx) {
  lua_State *L = c->L;
  jtype *t;
  const char *kind;
  int i;
  if (!lua_istable(L, idx)) luaL_error(L, "schema: type table expected, got %s", luaL_typename(L, idx));
  luaL_checkstack(L, 16, "schema");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, c->memo) == LUA_TLIGHTUSERDATA) {
    t = (jtype *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return t;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "kind");
  kind = lua_tostring(L, -1);
  if (!kind) luaL_error(L, "schema: type without a kind");
  for (i = 0; KINDS[i].name; i++)
    if (strcmp(KINDS[i].name, kind) == 0) break;
  if (!KINDS[i].name) luaL_error(L, "schema: unknown kind '%s'", kind);
  lua_pop(L, 1);
  t = new_type(c, KINDS[i].kind);
  /* memoise before recursing (shared and recursive types) */
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, t);
  lua_rawset(L, c->memo);
  switch (t->kind) {
    case JK_OPTION: case JK_LIST:
      t->name = dupstr(L, "", 0);
      lua_getfield(L, idx, "of");
      t->of = compile_type(c, lua_gettop(L));
      lua_pop(L, 1);
      break;
    case JK_RECORD:
      t->name = get_name(c, idx, "record");
      compile_record(c, t, idx);
      break;
    case JK_ENUM:
      t->name = get_name(c, idx, "enum");
      compile_enum(c, t, idx);
      break;
    case JK_ID:
      t->name = get_name(c, idx, "id");
      break;
    case JK_BYTES:
      /* JSON writes a byte string as a list of u8: its element type */
      t->name = dupstr(L, "", 0);
      t->of = new_type(c, JK_U8);
      t->of->name = dupstr(L, "", 0);
      break;
    default:
      t->name = dupstr(L, "", 0);
      break;
  }
  return t;
}

static void push_none(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "actionqueue.storage.schema.dsl");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "actionqueue.storage.schema.dsl");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
      lua_pop(L, 2);
      lua_pushnil(L);
      return;
    }
  }
  lua_getfield(L, -1, "NONE");
  lua_remove(L, -2);
  lua_remove(L, -2);
}

/* Compiles the type table at idx (absolute); pushes the userdata. */
static void compile_root(lua_State *L, int idx) {
  compiler c;
  jschema *s;
  luaL_checkstack(L, 40, "schema");
  s = (jschema *)lua_newuserdatauv(L, sizeof(jschema), 2);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, AQS_SCHEMA_MT);
  lua_createtable(L, SC_SLOTS, 0);
  lua_setiuservalue(L, -2, 2);   /* postcard's short-string cache (sc_entry) */
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, -3, 1);
  c.L = L; c.s = s; c.refs = lua_gettop(L); c.nrefs = 0;
  lua_newtable(L);
  c.memo = lua_gettop(L);
  push_none(L);
  c.none = lua_isnil(L, -1) ? 0 : lua_gettop(L);
  s->root = compile_type(&c, idx);
  lua_settop(L, c.refs - 1);   /* leaves the userdata */
}

jschema *aqs_schema_at(lua_State *L, int idx) {
  jschema *s = (jschema *)luaL_testudata(L, idx, AQS_SCHEMA_MT);
  idx = lua_absindex(L, idx);
  if (s) return s;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &CACHE_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CACHE_KEY);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    compile_root(L, idx);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  s = (jschema *)lua_touserdata(L, -1);
  lua_replace(L, idx);
  lua_pop(L, 1);
  return s;
}

void aqs_schema_push_refs(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);
}

void aqs_schema_push_strings(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 2);
}

/* schema(type) -> Schema userdata (compiled once per root type table; the JSON and the
 * postcard codecs get this same object for that table). */
int aqs_schema(lua_State *L) {
  lua_settop(L, 1);
  aqs_schema_at(L, 1);
  return 1;
}

void aqs_schema_init(lua_State *L) {
  int i;
  for (i = 0; KINDS[i].name; i++)
    if (KINDS[i].kind != i) luaL_error(L, "schema.c: KINDS row %d out of JK_* order", i);
  if (luaL_newmetatable(L, AQS_SCHEMA_MT)) {
    lua_pushcfunction(L, schema_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, schema_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
