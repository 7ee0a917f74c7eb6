/*
 * postcard.c - schema-driven postcard decoder/encoder (WAL payloads, wal-format.md 7-8).
 *
 * The codec walks the one compiled schema (schema.h, schema.c: compiled once per root
 * type table and cached, the same object the JSON codecs walk), so decoding a record
 * does no schema lookups in Lua.
 *
 * postcard_decode(bytes, type [, opts]) -> value, consumed | nil, message
 *   opts.features = {workflow = true} enables feature-gated variants;
 *   opts.offset = 1-based start position in bytes (default 1).
 *   Trailing bytes after the value are not an error (the caller sees `consumed`).
 *   Every failure (structure, varint overflow, UTF-8, option tag, UUID length,
 *   unknown variant, a record/variant `check` returning text) is a decode failure.
 *   opts.skim = true validates without building the value (only what a `check`
 *   needs is materialised) and returns consumed, then the root record's scalar
 *   fields and enum variant names: for WalEvent `consumed, sequence, "Variant"`.
 * postcard_encode(value, type [, opts]) -> string | nil, message
 *   opts.frame = version prepends the 12-byte frame header (version, length, CRC);
 *   opts.many = true encodes every element of the list `value` back to back and
 *   returns one string, or nil, message, index of the failing element.
 *
 * Never raises on bad input bytes; raises only on API misuse (not a schema table).
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MT "actionqueue.storage.PostcardBuffer"
#define MAX_DEPTH 64

/* ---- shared helpers ---------------------------------------------------------- */

typedef struct {
  lua_State *L;
  jschema *s;
  int refs;       /* stack index of the refs table */
  int strs;       /* stack index of the string cache table (decoding) or 0 */
  int features;   /* stack index of opts.features or 0 */
  const char *err;
  char errbuf[256];
} ctx;

static int fail(ctx *c, const char *msg) {
  if (!c->err) c->err = msg;
  return -1;
}

static int failf(ctx *c, const char *fmt, const char *a) {
  if (!c->err) {
    snprintf(c->errbuf, sizeof c->errbuf, fmt, a);
    c->err = c->errbuf;
  }
  return -1;
}

static void push_ref(ctx *c, int ref) { lua_rawgeti(c->L, c->refs, ref); }

static int feature_on(ctx *c, int feature) {
  int on;
  if (!feature) return 1;
  if (!c->features) return 0;
  push_ref(c, feature);
  lua_rawget(c->L, c->features);
  on = lua_toboolean(c->L, -1);
  lua_pop(c->L, 1);
  return on;
}

/* Runs check(value at top): 0 ok, -1 with the check's text as the error. */
static int run_check(ctx *c, int ref, const char *what) {
  lua_State *L = c->L;
  push_ref(c, ref);
  lua_pushvalue(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    failf(c, "check failed: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
    return -1;
  }
  if (lua_type(L, -1) == LUA_TSTRING) {
    snprintf(c->errbuf, sizeof c->errbuf, "%s: %s", what, lua_tostring(L, -1));
    if (!c->err) c->err = c->errbuf;
    lua_pop(L, 1);
    return -1;
  }
  lua_pop(L, 1);
  return 0;
}

/* ---- decoding ---------------------------------------------------------------- */

typedef struct {
  ctx c;
  const unsigned char *p, *end;
} dctx;

static const char E_END[] = "Hit the end of buffer, expected more data";
static const char E_VARINT[] = "Found a varint that didn't terminate. Is the usize too big?";
static const char E_UTF8[] = "Tried to decode invalid utf8";
static const char E_OPTION[] = "Found an Option discriminant that wasn't 0 or 1";
static const char E_BOOL[] = "Found a bool that wasn't 0 or 1";

/* Unsigned varint of at most maxb bytes whose last allowed byte is <= lastmax. */
static int get_varint(dctx *d, int maxb, unsigned lastmax, uint64_t *out) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < maxb; i++) {
    unsigned b;
    if (d->p >= d->end) return fail(&d->c, E_END);
    b = *d->p++;
    if (i == maxb - 1 && b > lastmax) return fail(&d->c, E_VARINT);
    v |= (uint64_t)(b & 0x7F) << (7 * i);
    if (!(b & 0x80)) { *out = v; return 0; }
  }
  return fail(&d->c, E_VARINT);
}

#define GET_U16(d, o) get_varint(d, 3, 0x03, o)
#define GET_U32(d, o) get_varint(d, 5, 0x0F, o)
#define GET_U64(d, o) get_varint(d, 10, 0x01, o)

static int get_len(dctx *d, size_t *n) {
  uint64_t v;
  if (GET_U64(d, &v) < 0) return -1;
  if (v > (uint64_t)(d->end - d->p)) { d->p = d->end; return fail(&d->c, E_END); }
  *n = (size_t)v;
  return 0;
}

static void push_uuid(lua_State *L, const unsigned char *b) {
  char s[36];
  aqs_uuid_format(b, s);
  lua_pushlstring(L, s, 36);
}

/* Decoded short strings (<= SC_MAXLEN bytes) and formatted UUIDs, keyed by their wire
 * bytes: WAL records repeat the same ids and names (a run's id in every event of its
 * life), and a hit pushes the existing Lua string from the cache table (the compiled
 * schema's string table, aqs_schema_push_strings) instead of formatting, hashing and
 * interning it again.  Slot i of the schema's `sc` describes entry i + 1 of that table;
 * `used` = 0 is an empty slot. */
enum { SC_RAW, SC_UUID };

/* Pushes the string of n wire bytes at p: the bytes themselves (SC_RAW) or the
 * hyphenated UUID text of 16 bytes (SC_UUID), from the cache when it holds them. */
static void push_str(dctx *d, const unsigned char *p, size_t n, int kind) {
  lua_State *L = d->c.L;
  uint64_t h, w;
  size_t i;
  sc_entry *e;
  if (n > SC_MAXLEN || !d->c.strs) {
    if (kind == SC_UUID) push_uuid(L, p);
    else lua_pushlstring(L, (const char *)p, n);
    return;
  }
  h = (uint64_t)(n * 2 + (size_t)kind) * 0x9E3779B97F4A7C15u;
  for (i = 0; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x9E3779B97F4A7C15u;
    h ^= h >> 29;
  }
  if (i < n) {
    w = 0;
    memcpy(&w, p + i, n - i);
    h = (h ^ w) * 0x9E3779B97F4A7C15u;
  }
  i = (size_t)(h >> 56);   /* SC_SLOTS == 256 */
  e = &d->c.s->sc[i];
  if (e->used && e->kind == kind && e->len == n && memcmp(e->b, p, n) == 0) {
    lua_rawgeti(L, d->c.strs, (lua_Integer)i + 1);
    return;
  }
  if (kind == SC_UUID) push_uuid(L, p);
  else lua_pushlstring(L, (const char *)p, n);
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->c.strs, (lua_Integer)i + 1);
  e->used = 1;
  e->kind = (unsigned char)kind;
  e->len = (unsigned char)n;
  memcpy(e->b, p, n);
}

static int decode_node(dctx *d, const jtype *nd, int depth);

/* Reads an enum's variant index: the variant, or NULL with the error set (index out of
 * range, or a variant of a build feature that is not enabled). */
static const jitem *read_variant(dctx *d, const jtype *nd) {
  uint64_t v;
  const jitem *it;
  if (GET_U32(d, &v) < 0) return NULL;
  if (v >= (uint64_t)nd->nall) { fail(&d->c, "unknown variant index"); return NULL; }
  it = &nd->items[nd->wire[v]];
  if (it->feature_ref && !feature_on(&d->c, it->feature_ref)) {
    fail(&d->c, "unknown variant index (feature not enabled)");
    return NULL;
  }
  return it;
}

static int decode_node(dctx *d, const jtype *nd, int depth) {
  lua_State *L = d->c.L;
  uint64_t v;
  size_t n;
  if (depth > MAX_DEPTH) return fail(&d->c, "schema nesting too deep");
  /* each level pushes at most 3 values: reserve for 4 levels at a time */
  if ((depth & 3) == 0 && !lua_checkstack(L, 16)) return fail(&d->c, "out of Lua stack");
  switch (nd->kind) {
    case JK_U8:
      if (d->p >= d->end) return fail(&d->c, E_END);
      lua_pushinteger(L, *d->p++);
      return 0;
    case JK_BOOL:
      if (d->p >= d->end) return fail(&d->c, E_END);
      if (*d->p > 1) return fail(&d->c, E_BOOL);
      lua_pushboolean(L, *d->p++);
      return 0;
    case JK_U16:
      if (GET_U16(d, &v) < 0) return -1;
      lua_pushinteger(L, (lua_Integer)v);
      return 0;
    case JK_U32:
      if (GET_U32(d, &v) < 0) return -1;
      lua_pushinteger(L, (lua_Integer)v);
      return 0;
    case JK_U64:
      if (GET_U64(d, &v) < 0) return -1;
      lua_pushinteger(L, (lua_Integer)v);
      return 0;
    case JK_I32: {
      uint32_t z;
      if (GET_U32(d, &v) < 0) return -1;
      z = (uint32_t)v;
      lua_pushinteger(L, (lua_Integer)(int32_t)((z >> 1) ^ (0u - (z & 1u))));
      return 0;
    }
    case JK_STRING:
      if (get_len(d, &n) < 0) return -1;
      if (!aqs_utf8_valid(d->p, n)) return fail(&d->c, E_UTF8);
      push_str(d, d->p, n, SC_RAW);
      d->p += n;
      return 0;
    case JK_BYTES:
      if (get_len(d, &n) < 0) return -1;
      push_str(d, d->p, n, SC_RAW);
      d->p += n;
      return 0;
    case JK_ID:
      if (get_len(d, &n) < 0) return -1;
      if (n != 16) return fail(&d->c, "invalid UUID: byte string length must be 16");
      push_str(d, d->p, 16, SC_UUID);
      d->p += 16;
      return 0;
    case JK_OPTION:
      if (d->p >= d->end) return fail(&d->c, E_END);
      if (*d->p == 0) { d->p++; lua_pushnil(L); return 0; }
      if (*d->p != 1) return fail(&d->c, E_OPTION);
      d->p++;
      return decode_node(d, nd->of, depth + 1);
    case JK_LIST: {
      uint64_t count, i;
      size_t left;
      if (GET_U64(d, &count) < 0) return -1;
      left = (size_t)(d->end - d->p);
      /* every element takes at least one byte: a larger count cannot be satisfied */
      if (count > left) { d->p = d->end; return fail(&d->c, E_END); }
      lua_createtable(L, (int)count, 0);
      for (i = 0; i < count; i++) {
        if (decode_node(d, nd->of, depth + 1) < 0) { lua_pop(L, 1); return -1; }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      return 0;
    }
    case JK_RECORD: {
      int i;
      lua_createtable(L, 0, nd->nitems);
      for (i = 0; i < nd->nitems; i++) {
        const jitem *it = &nd->items[i];
        push_ref(&d->c, it->name_ref);
        if (decode_node(d, it->type, depth + 1) < 0) { lua_pop(L, 2); return -1; }
        /* only an Option decodes to nil (an absent field: no key) */
        if (it->type->kind == JK_OPTION && lua_isnil(L, -1)) { lua_pop(L, 2); continue; }
        lua_rawset(L, -3);
      }
      if (nd->check_ref && run_check(&d->c, nd->check_ref, "invalid value") < 0) { lua_pop(L, 1); return -1; }
      return 0;
    }
    case JK_ENUM: {
      const jitem *it;
      if (!(it = read_variant(d, nd))) return -1;
      if (it->type == NULL) { push_ref(&d->c, it->name_ref); return 0; }
      lua_createtable(L, 0, 1);
      push_ref(&d->c, it->name_ref);
      if (decode_node(d, it->type, depth + 1) < 0) { lua_pop(L, 2); return -1; }
      lua_rawset(L, -3);
      if (it->check_ref && run_check(&d->c, it->check_ref, "invalid value") < 0) { lua_pop(L, 1); return -1; }
      return 0;
    }
    default:
      return fail(&d->c, "unknown schema kind");
  }
}

/* Skimming: validates exactly like decode_node but materialises only the subtrees
 * a `check` function needs (a record with a check, a variant with a check); nothing
 * is left on the stack.  `pushname` (enums only) pushes the variant name. */
static int skim_node(dctx *d, const jtype *nd, int depth, int pushname) {
  lua_State *L = d->c.L;
  uint64_t v;
  size_t n;
  if (depth > MAX_DEPTH) return fail(&d->c, "schema nesting too deep");
  if (nd->check_ref) {
    if (decode_node(d, nd, depth) < 0) return -1;
    lua_pop(L, 1);
    return 0;
  }
  switch (nd->kind) {
    case JK_U8:
      if (d->p >= d->end) return fail(&d->c, E_END);
      d->p++;
      return 0;
    case JK_BOOL:
      if (d->p >= d->end) return fail(&d->c, E_END);
      if (*d->p > 1) return fail(&d->c, E_BOOL);
      d->p++;
      return 0;
    case JK_U16: return GET_U16(d, &v);
    case JK_U32: case JK_I32: return GET_U32(d, &v);
    case JK_U64: return GET_U64(d, &v);
    case JK_STRING:
      if (get_len(d, &n) < 0) return -1;
      if (!aqs_utf8_valid(d->p, n)) return fail(&d->c, E_UTF8);
      d->p += n;
      return 0;
    case JK_BYTES:
      if (get_len(d, &n) < 0) return -1;
      d->p += n;
      return 0;
    case JK_ID:
      if (get_len(d, &n) < 0) return -1;
      if (n != 16) return fail(&d->c, "invalid UUID: byte string length must be 16");
      d->p += 16;
      return 0;
    case JK_OPTION:
      if (d->p >= d->end) return fail(&d->c, E_END);
      if (*d->p == 0) { d->p++; return 0; }
      if (*d->p != 1) return fail(&d->c, E_OPTION);
      d->p++;
      return skim_node(d, nd->of, depth + 1, 0);
    case JK_LIST: {
      uint64_t count, i;
      if (GET_U64(d, &count) < 0) return -1;
      if (count > (uint64_t)(d->end - d->p)) { d->p = d->end; return fail(&d->c, E_END); }
      for (i = 0; i < count; i++)
        if (skim_node(d, nd->of, depth + 1, 0) < 0) return -1;
      return 0;
    }
    case JK_RECORD: {
      int i;
      for (i = 0; i < nd->nitems; i++)
        if (skim_node(d, nd->items[i].type, depth + 1, 0) < 0) return -1;
      return 0;
    }
    case JK_ENUM: {
      const jitem *it;
      if (!(it = read_variant(d, nd))) return -1;
      if (it->type != NULL) {
        if (it->check_ref) {
          if (!lua_checkstack(L, 8)) return fail(&d->c, "out of Lua stack");
          lua_createtable(L, 0, 1);
          push_ref(&d->c, it->name_ref);
          if (decode_node(d, it->type, depth + 1) < 0) { lua_pop(L, 2); return -1; }
          lua_rawset(L, -3);
          if (run_check(&d->c, it->check_ref, "invalid value") < 0) { lua_pop(L, 1); return -1; }
          lua_pop(L, 1);
        } else if (skim_node(d, it->type, depth + 1, 0) < 0) {
          return -1;
        }
      }
      if (pushname) push_ref(&d->c, it->name_ref);
      return 0;
    }
    default:
      return fail(&d->c, "unknown schema kind");
  }
}

/* Skims a root record: pushes its scalar fields and the variant names of its enum
 * fields (in field order); returns the number pushed or -1. */
static int skim_root(dctx *d) {
  lua_State *L = d->c.L;
  const jtype *nd = d->c.s->root;
  int i, pushed = 0;
  if (nd->kind != JK_RECORD || nd->check_ref) {
    if (skim_node(d, nd, 0, 0) < 0) return -1;
    return 0;
  }
  luaL_checkstack(L, nd->nitems + 4, "too many fields");
  for (i = 0; i < nd->nitems; i++) {
    const jtype *child = nd->items[i].type;
    int kind = child->kind;
    if (kind <= JK_ID) {
      if (decode_node(d, child, 1) < 0) { lua_pop(L, pushed); return -1; }
      pushed++;
    } else if (kind == JK_ENUM) {
      if (skim_node(d, child, 1, 1) < 0) { lua_pop(L, pushed); return -1; }
      pushed++;
    } else if (skim_node(d, child, 1, 0) < 0) {
      lua_pop(L, pushed);
      return -1;
    }
  }
  return pushed;
}

/* The compiled schema is at stack index 2 (aqs_schema_at put it there). */
static void setup_ctx(lua_State *L, ctx *c, jschema *s, int opts) {
  c->L = L;
  c->s = s;
  c->err = NULL;
  c->features = 0;
  c->strs = 0;
  aqs_schema_push_refs(L, 2);
  c->refs = lua_gettop(L);
  if (opts && lua_istable(L, opts)) {
    if (lua_getfield(L, opts, "features") == LUA_TTABLE) c->features = lua_gettop(L);
    else lua_pop(L, 1);
  }
}

/* Pushes opts.offset, opts.skim, opts.features (nil when absent).  A table without a
 * metatable is walked once with lua_next (an empty one costs a single call) instead
 * of three lua_getfield lookups of C strings; the values are the same. */
static void get_decode_opts(lua_State *L, int opts) {
  int base;
  if (lua_getmetatable(L, opts)) {
    lua_pop(L, 1);
    lua_getfield(L, opts, "offset");
    lua_getfield(L, opts, "skim");
    lua_getfield(L, opts, "features");
    return;
  }
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushnil(L);
  base = lua_gettop(L) - 2;
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      int slot = -1;
      if (kl == 6 && memcmp(k, "offset", 6) == 0) slot = 0;
      else if (kl == 4 && memcmp(k, "skim", 4) == 0) slot = 1;
      else if (kl == 8 && memcmp(k, "features", 8) == 0) slot = 2;
      if (slot >= 0) { lua_replace(L, base + slot); continue; }
    }
    lua_pop(L, 1);
  }
}

int aqs_postcard_decode(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  lua_Integer start = 1;
  jschema *s;
  dctx d;
  int base, skim = 0, features = 0;
  if (!lua_isnoneornil(L, 3)) {
    int o;
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    get_decode_opts(L, 3);
    o = lua_gettop(L) - 2;
    if (!lua_isnil(L, o)) start = luaL_checkinteger(L, o);
    skim = lua_toboolean(L, o + 1);
    if (lua_type(L, o + 2) == LUA_TTABLE) features = o + 2;
  }
  luaL_argcheck(L, start >= 1 && (size_t)(start - 1) <= n, 3, "offset outside the string");
  s = aqs_schema_at(L, 2);
  setup_ctx(L, &d.c, s, 0);
  d.c.features = features;
  aqs_schema_push_strings(L, 2);
  if (lua_type(L, -1) == LUA_TTABLE) d.c.strs = lua_gettop(L);
  base = lua_gettop(L);
  d.p = (const unsigned char *)p + (start - 1);
  d.end = (const unsigned char *)p + n;
  if (skim) {
    int k = skim_root(&d);
    if (k < 0) {
      lua_settop(L, base);
      lua_pushnil(L);
      lua_pushstring(L, d.c.err ? d.c.err : "decode error");
      return 2;
    }
    lua_pushinteger(L, (lua_Integer)(d.p - ((const unsigned char *)p + (start - 1))));
    lua_insert(L, -(k + 1));
    return k + 1;
  }
  if (decode_node(&d, d.c.s->root, 0) < 0) {
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushstring(L, d.c.err ? d.c.err : "decode error");
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)(d.p - ((const unsigned char *)p + (start - 1))));
  return 2;
}

/* ---- spans (replay.c) ---------------------------------------------------------- */

/* Walks the structure of a value the decoder has accepted already: no check function,
 * no feature gate, no Lua value; only the bytes it takes. */
static int span_node(dctx *d, const jtype *nd, int depth) {
  uint64_t v;
  size_t n;
  if (depth > MAX_DEPTH) return fail(&d->c, "schema nesting too deep");
  switch (nd->kind) {
    case JK_U8: case JK_BOOL:
      if (d->p >= d->end) return fail(&d->c, E_END);
      d->p++;
      return 0;
    case JK_U16: return GET_U16(d, &v);
    case JK_U32: case JK_I32: return GET_U32(d, &v);
    case JK_U64: return GET_U64(d, &v);
    case JK_STRING: case JK_BYTES: case JK_ID:
      if (get_len(d, &n) < 0) return -1;
      d->p += n;
      return 0;
    case JK_OPTION:
      if (d->p >= d->end) return fail(&d->c, E_END);
      if (*d->p == 0) { d->p++; return 0; }
      if (*d->p != 1) return fail(&d->c, E_OPTION);
      d->p++;
      return span_node(d, nd->of, depth + 1);
    case JK_LIST: {
      uint64_t count, i;
      if (GET_U64(d, &count) < 0) return -1;
      if (count > (uint64_t)(d->end - d->p)) return fail(&d->c, E_END);
      for (i = 0; i < count; i++)
        if (span_node(d, nd->of, depth + 1) < 0) return -1;
      return 0;
    }
    case JK_RECORD: {
      int i;
      for (i = 0; i < nd->nitems; i++)
        if (span_node(d, nd->items[i].type, depth + 1) < 0) return -1;
      return 0;
    }
    case JK_ENUM: {
      const jitem *it;
      if (GET_U32(d, &v) < 0) return -1;
      if (v >= (uint64_t)nd->nall) return fail(&d->c, "unknown variant index");
      it = &nd->items[nd->wire[v]];
      return it->type ? span_node(d, it->type, depth + 1) : 0;
    }
    default:
      return fail(&d->c, "unknown schema kind");
  }
}

int aqs_postcard_span(const struct jtype *t, const unsigned char *p, size_t n, size_t *used) {
  dctx d;
  memset(&d, 0, sizeof d);
  d.p = p;
  d.end = p + n;
  if (span_node(&d, t, 0) < 0) return -1;
  *used = (size_t)(d.p - p);
  return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

typedef struct {
  unsigned char *p;
  size_t n, cap;
} pc_buf;

static int buf_gc(lua_State *L) {
  pc_buf *b = (pc_buf *)luaL_checkudata(L, 1, BUF_MT);
  free(b->p);
  b->p = NULL;
  return 0;
}

typedef struct {
  ctx c;
  pc_buf *b;
} ectx;

static int reserve(ectx *e, size_t k) {
  pc_buf *b = e->b;
  if (b->cap - b->n < k) {
    size_t cap = b->cap ? b->cap : 256;
    unsigned char *q;
    while (cap - b->n < k) {
      if (cap > ((size_t)-1) / 2) return fail(&e->c, "out of memory");
      cap *= 2;
    }
    q = (unsigned char *)realloc(b->p, cap);
    if (!q) return fail(&e->c, "out of memory");
    b->p = q;
    b->cap = cap;
  }
  return 0;
}

static int put_byte(ectx *e, unsigned v) {
  if (reserve(e, 1) < 0) return -1;
  e->b->p[e->b->n++] = (unsigned char)v;
  return 0;
}

static int put_varint(ectx *e, uint64_t v) {
  if (reserve(e, 10) < 0) return -1;
  while (v >= 0x80) {
    e->b->p[e->b->n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  e->b->p[e->b->n++] = (unsigned char)v;
  return 0;
}

static int put_raw(ectx *e, const void *p, size_t n) {
  if (put_varint(e, n) < 0 || reserve(e, n) < 0) return -1;
  memcpy(e->b->p + e->b->n, p, n);
  e->b->n += n;
  return 0;
}

static int get_int(ectx *e, lua_Integer *v, int kind) {
  int isnum;
  *v = lua_tointegerx(e->c.L, -1, &isnum);
  if (!isnum || lua_type(e->c.L, -1) != LUA_TNUMBER)
    return failf(&e->c, "expected an integer (%s)", aqs_kind_name(kind));
  return 0;
}

static int encode_node(ectx *e, const jtype *nd, int depth);

/* Encodes the value on top of the stack (left there). */
static int encode_node(ectx *e, const jtype *nd, int depth) {
  lua_State *L = e->c.L;
  lua_Integer v;
  size_t n;
  const char *s;
  if (depth > MAX_DEPTH) return fail(&e->c, "value nesting too deep");
  if (!lua_checkstack(L, 8)) return fail(&e->c, "out of Lua stack");
  switch (nd->kind) {
    case JK_U8: case JK_U16: case JK_U32: case JK_U64: case JK_I32:
      if (get_int(e, &v, nd->kind) < 0) return -1;
      if (nd->kind != JK_U64 && (v < nd->min || v > nd->max))
        return failf(&e->c, "%s out of range", aqs_kind_name(nd->kind));
      if (nd->kind == JK_U8) return put_byte(e, (unsigned)v);
      if (nd->kind == JK_I32) {
        int32_t x = (int32_t)v;
        return put_varint(e, (uint32_t)(((uint32_t)x << 1) ^ (uint32_t)(x >> 31)));
      }
      return put_varint(e, (uint64_t)v);
    case JK_BOOL:
      if (!lua_isboolean(L, -1)) return fail(&e->c, "expected a boolean");
      return put_byte(e, (unsigned)lua_toboolean(L, -1));
    case JK_STRING:
      if (lua_type(L, -1) != LUA_TSTRING) return fail(&e->c, "expected a string");
      s = lua_tolstring(L, -1, &n);
      if (!aqs_utf8_valid((const unsigned char *)s, n)) return fail(&e->c, "string is not valid UTF-8");
      return put_raw(e, s, n);
    case JK_BYTES:
      if (lua_type(L, -1) != LUA_TSTRING) return fail(&e->c, "expected a byte string");
      s = lua_tolstring(L, -1, &n);
      return put_raw(e, s, n);
    case JK_ID: {
      unsigned char u[16];
      if (lua_type(L, -1) != LUA_TSTRING) return fail(&e->c, "expected a UUID string");
      s = lua_tolstring(L, -1, &n);
      if (!aqs_uuid_bytes(s, n, u)) return fail(&e->c, "invalid UUID text");
      return put_raw(e, u, 16);
    }
    case JK_OPTION:
      /* Always written, also for CronPolicy.max_occurrences (wal-format.md 11.1). */
      if (lua_isnil(L, -1)) return put_byte(e, 0);
      if (put_byte(e, 1) < 0) return -1;
      return encode_node(e, nd->of, depth + 1);
    case JK_LIST: {
      lua_Integer i, count;
      if (!lua_istable(L, -1)) return fail(&e->c, "expected a list");
      count = (lua_Integer)lua_rawlen(L, -1);
      if (put_varint(e, (uint64_t)count) < 0) return -1;
      for (i = 1; i <= count; i++) {
        lua_rawgeti(L, -1, i);
        if (encode_node(e, nd->of, depth + 1) < 0) { lua_pop(L, 1); return -1; }
        lua_pop(L, 1);
      }
      return 0;
    }
    case JK_RECORD: {
      int i;
      if (!lua_istable(L, -1)) return fail(&e->c, "expected a record table");
      for (i = 0; i < nd->nitems; i++) {
        const jitem *it = &nd->items[i];
        push_ref(&e->c, it->name_ref);
        lua_rawget(L, -2);
        if (lua_isnil(L, -1) && it->type->kind != JK_OPTION) {
          lua_pop(L, 1);
          if (it->dkind != JD_VALUE && it->dkind != JD_FUNC) {
            push_ref(&e->c, it->name_ref);
            failf(&e->c, "missing field `%s`", lua_tostring(L, -1));
            lua_pop(L, 1);
            return -1;
          }
          push_ref(&e->c, it->dref);
          if (lua_isfunction(L, -1) && lua_pcall(L, 0, 1, 0) != LUA_OK) {
            lua_pop(L, 1);
            return fail(&e->c, "default value function failed");
          }
        }
        if (encode_node(e, it->type, depth + 1) < 0) { lua_pop(L, 1); return -1; }
        lua_pop(L, 1);
      }
      return 0;
    }
    case JK_ENUM: {
      const jitem *it;
      int vi, t = lua_type(L, -1), pushed = 0;
      if (t == LUA_TSTRING) {
        lua_pushvalue(L, -1);
      } else if (t == LUA_TTABLE) {
        lua_pushnil(L);
        if (!lua_next(L, -2)) return fail(&e->c, "empty enum table");
        lua_pop(L, 1);   /* keep the key */
        lua_pushvalue(L, -1);
        if (lua_next(L, -3)) { lua_pop(L, 3); return fail(&e->c, "enum table with more than one key"); }
        pushed = 1;
      } else {
        return fail(&e->c, "expected an enum value (string or one-key table)");
      }
      /* stack: ... value key */
      push_ref(&e->c, nd->lookup_ref);
      lua_pushvalue(L, -2);
      if (lua_rawget(L, -2) != LUA_TNUMBER) {
        lua_pop(L, 2);
        failf(&e->c, "unknown variant `%s`", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        return -1;
      }
      vi = (int)lua_tointeger(L, -1);
      lua_pop(L, 2);
      it = &nd->items[vi];
      if (it->feature_ref && !feature_on(&e->c, it->feature_ref)) {
        failf(&e->c, "variant `%s` needs a build feature that is not enabled", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
      }
      if (put_varint(e, (uint64_t)it->index) < 0) { lua_pop(L, 1); return -1; }
      if (it->type == NULL) { lua_pop(L, 1); return 0; }
      if (!pushed) { lua_pop(L, 1); return fail(&e->c, "data-carrying variant given as a string"); }
      lua_rawget(L, -2);
      if (encode_node(e, it->type, depth + 1) < 0) { lua_pop(L, 1); return -1; }
      lua_pop(L, 1);
      return 0;
    }
    default:
      return fail(&e->c, "unknown schema kind");
  }
}

/* Encodes the value on top of the stack, framed (12-byte header: version, length, CRC
 * of the payload) when frame >= 0.  0 ok, -1 error. */
static int encode_one(ectx *e, lua_Integer frame) {
  size_t start = e->b->n, len;
  if (frame >= 0) {
    if (reserve(e, 12) < 0) return -1;
    e->b->n += 12;
  }
  if (encode_node(e, e->c.s->root, 0) < 0) return -1;
  if (frame >= 0) {
    unsigned char *h = e->b->p + start;
    len = e->b->n - start - 12;
    if (len > 0xFFFFFFFFu) return fail(&e->c, "payload too large");
    aqs_put_u32le(h, (uint32_t)frame);
    aqs_put_u32le(h + 4, (uint32_t)len);
    aqs_put_u32le(h + 8, aqs_crc32_update(0, h + 12, len));
  }
  return 0;
}

int aqs_postcard_encode(lua_State *L) {
  jschema *s;
  ectx e;
  int base, many = 0;
  lua_Integer frame = -1, i = 0, count = 0;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "frame") != LUA_TNIL) {
      frame = luaL_checkinteger(L, -1);
      luaL_argcheck(L, frame >= 0 && frame <= 0xFFFFFFFFLL, 3, "opts.frame must be a u32 version");
    }
    if (lua_getfield(L, 3, "many") != LUA_TNIL) many = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  if (many) luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  e.b = (pc_buf *)lua_newuserdatauv(L, sizeof(pc_buf), 0);   /* 4: buffer box */
  memset(e.b, 0, sizeof *e.b);
  luaL_setmetatable(L, BUF_MT);
  s = aqs_schema_at(L, 2);
  setup_ctx(L, &e.c, s, lua_isnil(L, 3) ? 0 : 3);
  base = lua_gettop(L);
  if (many) {
    count = (lua_Integer)lua_rawlen(L, 1);
    for (i = 1; i <= count; i++) {
      lua_rawgeti(L, 1, i);
      if (encode_one(&e, frame) < 0) break;
      lua_pop(L, 1);
    }
  } else {
    lua_pushvalue(L, 1);
    if (encode_one(&e, frame) == 0) i = count + 1;
  }
  if (i <= count) {
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushstring(L, e.c.err ? e.c.err : "encode error");
    if (!many) return 2;
    lua_pushinteger(L, i);
    return 3;
  }
  lua_pushlstring(L, e.b->p ? (const char *)e.b->p : "", e.b->n);
  free(e.b->p);
  e.b->p = NULL;
  return 1;
}

void aqs_postcard_init(lua_State *L) {
  luaL_newmetatable(L, BUF_MT);
  lua_pushcfunction(L, buf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
