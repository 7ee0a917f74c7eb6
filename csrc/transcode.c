/*
 * transcode.c - the canonical emitter of the transcoding rewrite (issue 15.4): json_decode.c
 * in skim mode calls it for every value it accepts, and it writes the canonical encoding
 * (what json_encode.c writes for the value the building decoder would have made) to an
 * AtomicWriter, without a Lua tree.  See transcode.h.
 *
 * Layout.  `out` holds the bytes not yet handed to the writer; positions are absolute
 * (payload offsets), so a flush (which drops the front of `out`) moves nothing the open
 * records point at.  A record writes `"key":value` inline while its fields arrive in
 * schema order.  From the first field that arrives early (or a field it cannot place
 * yet), the record `holds`: every later field's value is written bare after the hold
 * position and its slot notes where; at the record's end the held region is rebuilt in
 * schema order (absent optionals as `null`, defaults as the decoder supplied them) and
 * copied back.  Bytes before the outermost hold are final and are flushed in chunks.
 */
#include "transcode.h"

#include <stdlib.h>
#include <string.h>

#define EMIT_MT "actionqueue.storage.Transcoder"
#define FLUSH 65536
#define NOHOLD UINT64_MAX

typedef struct {
  uint64_t off;         /* absolute position of the held value */
  size_t len;
  int present;
} tslot;

typedef struct {
  const jtype *t;
  uint64_t hold;        /* absolute position of the first held byte, NOHOLD = none */
  int next;             /* next field in schema order (while not holding) */
  int written;          /* fields written so far (for the commas) */
  size_t slots;         /* first slot (index into e->sl) */
} tframe;

struct jemit {
  lua_State *L;
  int writer;           /* registry ref of the AtomicWriter (the decoder runs in a pcall:
                           no stack index of the caller's is valid there) */
  int failed;           /* a write failed: nothing more is written */
  aqs_obuf out;         /* pending bytes; out.p[0] is at absolute position base */
  uint64_t base;
  aqs_obuf tmp;         /* a held region being rebuilt */
  tframe *fr;
  int nfr;
  size_t capfr;
  tslot *sl;
  size_t nsl, capsl;
};

static int emit_gc(lua_State *L) {
  jemit *e = (jemit *)lua_touserdata(L, 1);
  if (e->L) luaL_unref(L, LUA_REGISTRYINDEX, e->writer);
  free(e->out.p);
  free(e->tmp.p);
  free(e->fr);
  free(e->sl);
  memset(e, 0, sizeof *e);
  return 0;
}

jemit *aqs_tx_new(lua_State *L, int writer) {
  jemit *e = (jemit *)lua_newuserdatauv(L, sizeof(jemit), 0);
  memset(e, 0, sizeof *e);
  if (luaL_newmetatable(L, EMIT_MT)) {
    lua_pushcfunction(L, emit_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, writer);
  e->writer = luaL_ref(L, LUA_REGISTRYINDEX);
  e->L = L;
  return e;
}

static void *xgrow(jemit *e, void *p, size_t *cap, size_t need, size_t size) {
  size_t nc = *cap ? *cap : 16;
  void *q;
  if (need <= *cap) return p;
  while (nc < need) nc *= 2;
  q = realloc(p, nc * size);
  if (!q) luaL_error(e->L, "transcode: out of memory");
  *cap = nc;
  return q;
}

static inline void reserve(jemit *e, size_t extra) {
  if (e->out.len + extra > e->out.cap)
    e->out.p = (char *)xgrow(e, e->out.p, &e->out.cap, e->out.len + extra, 1);
}

static inline void put(jemit *e, const char *s, size_t n) {
  reserve(e, n);
  memcpy(e->out.p + e->out.len, s, n);
  e->out.len += n;
}

static inline uint64_t at(const jemit *e) {
  return e->base + e->out.len;
}

/* Hands n bytes to the writer (nothing more after a failure). */
static void sink(jemit *e, const char *p, size_t n) {
  lua_State *L = e->L;
  int r;
  if (e->failed || n == 0) return;
  luaL_checkstack(L, 4, "transcode");
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->writer);
  r = aqs_aw_write_raw(L, -1, p, n);
  if (r > 0) lua_pop(L, r);
  if (r) e->failed = 1;
  lua_pop(L, 1);
}

/* The outermost holding frame (its hold pins the buffer), or -1. */
static int outermost_hold(const jemit *e) {
  int k;
  for (k = 0; k < e->nfr; k++) if (e->fr[k].hold != NOHOLD) return k;
  return -1;
}

/* Drops the first n bytes of out after handing them to the writer. */
static void drop(jemit *e, size_t n) {
  sink(e, e->out.p, n);
  memmove(e->out.p, e->out.p + n, e->out.len - n);
  e->out.len -= n;
  e->base += n;
}

/* Writes the final bytes (those before the outermost hold) to the writer once there are
 * enough of them. */
static void flush(jemit *e, int final) {
  int k = outermost_hold(e);
  size_t n = (size_t)((k < 0 ? at(e) : e->fr[k].hold) - e->base);
  if (n == 0 || (!final && n < FLUSH / 2)) return;
  drop(e, n);
}

static inline void maybe_flush(jemit *e) {
  if (e->out.len >= FLUSH) flush(e, 0);
}

int aqs_tx_finish(jemit *e) {
  flush(e, 1);
  return e->failed ? -1 : 0;
}

void aqs_tx_raw(jemit *e, const char *s, size_t n) {
  put(e, s, n);
}

void aqs_tx_string(jemit *e, const unsigned char *s, size_t n) {
  aqs_json_string_append(e->L, &e->out, s, n);
}

void aqs_tx_plain(jemit *e, const unsigned char *s, size_t n) {
  reserve(e, n + 2);
  e->out.p[e->out.len] = '"';
  memcpy(e->out.p + e->out.len + 1, s, n);
  e->out.p[e->out.len + n + 1] = '"';
  e->out.len += n + 2;
}

void aqs_tx_id(jemit *e, const char text[36]) {
  reserve(e, 38);
  e->out.p[e->out.len] = '"';
  memcpy(e->out.p + e->out.len + 1, text, 36);
  e->out.p[e->out.len + 37] = '"';
  e->out.len += 38;
}

void aqs_tx_list_begin(jemit *e) {
  put(e, "[", 1);
}

void aqs_tx_list_elem(jemit *e, uint64_t index) {
  if (index) put(e, ",", 1);
  maybe_flush(e);
}

void aqs_tx_list_end(jemit *e) {
  put(e, "]", 1);
}

void aqs_tx_record_begin(jemit *e, const jtype *t) {
  tframe *f;
  size_t n = (size_t)t->nitems;
  e->fr = (tframe *)xgrow(e, e->fr, &e->capfr, (size_t)e->nfr + 1, sizeof(tframe));
  e->sl = (tslot *)xgrow(e, e->sl, &e->capsl, e->nsl + n, sizeof(tslot));
  f = &e->fr[e->nfr++];
  f->t = t;
  f->hold = NOHOLD;
  f->next = 0;
  f->written = 0;
  f->slots = e->nsl;
  memset(e->sl + e->nsl, 0, n * sizeof(tslot));
  e->nsl += n;
  put(e, "{", 1);
}

static void key(jemit *e, aqs_obuf *b, tframe *f, const jitem *it) {
  size_t need = it->len + 4;
  if (b->len + need > b->cap) b->p = (char *)xgrow(e, b->p, &b->cap, b->len + need, 1);
  if (f->written++) b->p[b->len++] = ',';
  b->p[b->len++] = '"';
  memcpy(b->p + b->len, it->name, it->len);
  b->len += it->len;
  b->p[b->len++] = '"';
  b->p[b->len++] = ':';
}

void aqs_tx_field(jemit *e, int k) {
  tframe *f = &e->fr[e->nfr - 1];
  const jitem *it = &f->t->items[k];
  tslot *s;
  if (f->hold == NOHOLD && k == f->next && !it->skip_if_none) {
    key(e, &e->out, f, it);
    f->next++;
    return;
  }
  if (f->hold == NOHOLD) f->hold = at(e);
  s = &e->sl[f->slots + (size_t)k];
  s->present = 1;
  s->off = at(e);
  s->len = 0;
}

void aqs_tx_field_end(jemit *e, int k) {
  tframe *f = &e->fr[e->nfr - 1];
  tslot *s = &e->sl[f->slots + (size_t)k];
  if (s->present) s->len = (size_t)(at(e) - s->off);
}

void aqs_tx_default(jemit *e, int k, int idx) {
  tframe *f = &e->fr[e->nfr - 1];
  aqs_tx_field(e, k);
  if (aqs_json_encode_append(e->L, idx, f->t->items[k].type, &e->out))
    luaL_error(e->L, "transcode: default of %s.%s: %s", f->t->name, f->t->items[k].name,
               lua_tostring(e->L, -1));
  aqs_tx_field_end(e, k);
}

/* An absent field (not supplied, no default): an optional one is `null`, or left out
 * when the schema says skip_if_none (like json_encode.c for a nil value). */
static void absent(jemit *e, aqs_obuf *b, tframe *f, const jitem *it) {
  if (it->skip_if_none) return;
  key(e, b, f, it);
  if (b->len + 4 > b->cap) b->p = (char *)xgrow(e, b->p, &b->cap, b->len + 4, 1);
  memcpy(b->p + b->len, "null", 4);
  b->len += 4;
}

/* A held value that is left out: an absent skip_if_none field or one that is null. */
static int left_out(const jemit *e, const jitem *it, const tslot *s) {
  return !s->present || (it->skip_if_none && s->len == 4 && memcmp(e->out.p + (s->off - e->base), "null", 4) == 0);
}

/* The record's held region is large and nothing outside it holds: its fields go to the
 * writer in schema order straight from their slots (no second copy of the region). */
static void release(jemit *e, tframe *f) {
  const jtype *t = f->t;
  aqs_obuf *b = &e->tmp;
  uint64_t written = 0;
  int j;
  drop(e, (size_t)(f->hold - e->base));   /* out now starts at the hold */
  b->len = 0;
  for (j = f->next; j < t->nitems; j++) {
    const jitem *it = &t->items[j];
    const tslot *s = &e->sl[f->slots + (size_t)j];
    if (left_out(e, it, s)) {
      absent(e, b, f, it);
      continue;
    }
    key(e, b, f, it);
    if (s->len >= FLUSH || b->len + s->len > 2 * FLUSH) {
      sink(e, b->p, b->len);
      written += b->len;
      b->len = 0;
      sink(e, e->out.p + (s->off - e->base), s->len);
      written += s->len;
    } else {
      if (b->len + s->len > b->cap) b->p = (char *)xgrow(e, b->p, &b->cap, b->len + s->len, 1);
      memcpy(b->p + b->len, e->out.p + (s->off - e->base), s->len);
      b->len += s->len;
    }
  }
  sink(e, b->p, b->len);
  written += b->len;
  e->out.len = 0;
  e->base = f->hold + written;
  f->hold = NOHOLD;
}

void aqs_tx_record_end(jemit *e) {
  tframe *f = &e->fr[e->nfr - 1];
  const jtype *t = f->t;
  int j;
  if (f->hold != NOHOLD && at(e) - f->hold >= FLUSH && outermost_hold(e) == e->nfr - 1) {
    release(e, f);
  } else if (f->hold == NOHOLD) {
    for (j = f->next; j < t->nitems; j++) absent(e, &e->out, f, &t->items[j]);
  } else {
    aqs_obuf *b = &e->tmp;
    b->len = 0;
    for (j = f->next; j < t->nitems; j++) {
      const jitem *it = &t->items[j];
      const tslot *s = &e->sl[f->slots + (size_t)j];
      const char *v;
      if (left_out(e, it, s)) {
        absent(e, b, f, it);
        continue;
      }
      key(e, b, f, it);
      if (b->len + s->len > b->cap) b->p = (char *)xgrow(e, b->p, &b->cap, b->len + s->len, 1);
      v = e->out.p + (s->off - e->base);
      memcpy(b->p + b->len, v, s->len);
      b->len += s->len;
    }
    e->out.len = (size_t)(f->hold - e->base);
    put(e, b->p, b->len);
  }
  put(e, "}", 1);
  e->nsl = f->slots;
  e->nfr--;
  maybe_flush(e);
}

void aqs_tx_variant_begin(jemit *e, const jitem *v) {
  reserve(e, v->len + 4);
  e->out.p[e->out.len++] = '{';
  e->out.p[e->out.len++] = '"';
  memcpy(e->out.p + e->out.len, v->name, v->len);
  e->out.len += v->len;
  e->out.p[e->out.len++] = '"';
  e->out.p[e->out.len++] = ':';
}

void aqs_tx_variant_end(jemit *e) {
  put(e, "}", 1);
}
