/*
 * lua_alloc.c - a small-object allocator for the Lua state that opens the C core.
 *
 * A snapshot loaded into Lua tables is millions of small blocks (tables, hash parts, short
 * strings such as 36-character ids). glibc malloc adds an 8-byte header and rounds every
 * block to 16 bytes: ~38 MB of the 259 MiB a 100k-task load peaked at. So requests of at
 * most SMALL_MAX bytes come from size-class slabs (8-byte classes, no per-block header)
 * carved from CHUNK-aligned mmap'd chunks; everything else goes to the allocator the state
 * had before (lua_getallocf), which this one wraps.
 *
 * Ownership: Lua passes the old size on free and realloc, so only a block whose old size
 * is within SMALL_MAX can be ours. Such a block may still belong to the previous allocator
 * (allocated before installation, or placed there when a chunk could not be mapped), so
 * its CHUNK-aligned base is looked up in a hash set of our chunk bases. A chunk's header
 * holds its size class, so a block's class never depends on the size Lua passes.
 *
 * Failure: growth may fail (NULL, Lua collects and retries); shrinking never does: a block
 * that cannot move to a smaller class stays where it is (the header knows its real size).
 *
 * Chunks: each keeps a count of live blocks; a chunk whose last block is freed goes to a
 * small stack of spare chunks (reused by any class) and beyond MAX_SPARE is unmapped.
 *
 * State: one SlabAlloc per lua_State, mmap'd (not malloc'd) so the few pages left after
 * lua_close (the struct, the hash set, the spare chunks) are not leak reports at exit:
 * lua_close frees every object through us and its own main block through the previous
 * allocator, but never tells an allocator that the state is gone. mmap/munmap are not
 * I/O (anonymous memory, like malloc's own), so they are not in io.c's syscall table.
 *
 * The module pins itself (RTLD_NODELETE): Lua unloads C modules before it frees the last
 * objects, which still come through this allocator. Without the pin: no slabs.
 *
 * Opt-out: AQS_LUA_ALLOC=system leaves the state's allocator alone; sanitizer builds default
 * to it, and so does any process with a sanitizer runtime loaded, so ASan/LSan keep seeing
 * Lua's objects (AQS_LUA_ALLOC=slab forces the slabs). The
 * allocator itself is exercised under ASan by core._alloc_selftest on a private instance.
 * mem_budget.c wraps whatever allocator is installed, so it wraps this one and restores it.
 */
#include "aqs.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_SHIFT 20
#define CHUNK ((size_t)1 << CHUNK_SHIFT)     /* 1 MiB, also the alignment */
#define CHUNK_HEADER 64                        /* bytes before the first slot */
#define GRAIN 8                                /* class step: Lua needs 8-byte alignment */
#define SMALL_MAX 256                          /* largest request served from slabs */
#define NCLASS (SMALL_MAX / GRAIN)
#define MAX_SPARE 4                            /* empty chunks kept mapped */
#define SET_MIN_BITS 9                         /* 512 entries: one page */

typedef struct Chunk {
  struct Chunk *next, *prev;  /* class list of chunks with room; `next` links spares */
  void *free;                 /* freed slots, linked through their first word */
  uint32_t bump;              /* offset of the first never-used slot */
  uint32_t size;              /* slot size */
  uint32_t live;              /* blocks handed out and not freed */
  uint32_t cls;
  int listed;                 /* on its class's list */
} Chunk;

typedef struct SlabAlloc {
  lua_Alloc prev_f;           /* the wrapped allocator: large blocks, fallbacks */
  void *prev_ud;
  Chunk *avail[NCLASS + 1];   /* per class: chunks with a free slot (head is used first) */
  Chunk *spare;               /* empty chunks (in the set), linked by next */
  unsigned nspare;
  uintptr_t *set;             /* open addressing, linear probing; 0 = empty */
  unsigned set_bits;
  size_t set_count;           /* chunks mapped (spares included) */
  size_t set_bytes;
  int refuse_map;             /* selftest: fail new chunk mappings */
} SlabAlloc;

static int lua_alloc_key;     /* registry: lightuserdata SlabAlloc, or false (system) */

static void *map_pages(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* A CHUNK-aligned CHUNK: map twice the size, trim both ends. */
static void *map_chunk(void) {
  char *p = (char *)map_pages(2 * CHUNK);
  uintptr_t a;
  size_t head;
  if (p == NULL) return NULL;
  a = ((uintptr_t)p + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1);
  head = (size_t)(a - (uintptr_t)p);
  if (head > 0) munmap(p, head);
  if (CHUNK - head > 0) munmap((char *)a + CHUNK, CHUNK - head);
  return (void *)a;
}

/* ---- the set of chunk bases ---- */

static size_t set_home(const SlabAlloc *A, uintptr_t base) {
  return (size_t)(((uint64_t)(base >> CHUNK_SHIFT) * UINT64_C(0x9E3779B97F4A7C15)) >>
                  (64 - A->set_bits));
}

static Chunk *set_find(const SlabAlloc *A, const void *p) {
  uintptr_t base = (uintptr_t)p & ~(uintptr_t)(CHUNK - 1);
  size_t mask = ((size_t)1 << A->set_bits) - 1, i = set_home(A, base);
  for (;; i = (i + 1) & mask) {
    uintptr_t e = A->set[i];
    if (e == base) return (Chunk *)base;
    if (e == 0) return NULL;
  }
}

static void set_put(SlabAlloc *A, uintptr_t *set, uintptr_t base) {
  size_t mask = ((size_t)1 << A->set_bits) - 1, i = set_home(A, base);
  while (set[i] != 0) i = (i + 1) & mask;
  set[i] = base;
}

/* 0 on success, -1 when the set had to grow and could not. */
static int set_add(SlabAlloc *A, uintptr_t base) {
  if ((A->set_count + 1) * 2 > ((size_t)1 << A->set_bits)) {
    unsigned old_bits = A->set_bits;
    uintptr_t *old = A->set, *set;
    size_t old_bytes = A->set_bytes, bytes = sizeof *set << (old_bits + 1), i;
    if ((set = (uintptr_t *)map_pages(bytes)) == NULL) return -1;
    A->set = set;
    A->set_bits = old_bits + 1;
    A->set_bytes = bytes;
    for (i = 0; i < ((size_t)1 << old_bits); i++)
      if (old[i] != 0) set_put(A, set, old[i]);
    munmap(old, old_bytes);
  }
  set_put(A, A->set, base);
  A->set_count++;
  return 0;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void set_remove(SlabAlloc *A, uintptr_t base) {
  size_t mask = ((size_t)1 << A->set_bits) - 1, i = set_home(A, base), j;
  while (A->set[i] != base) i = (i + 1) & mask;
  for (j = i;;) {
    size_t k;
    j = (j + 1) & mask;
    if (A->set[j] == 0) break;
    k = set_home(A, A->set[j]);
    /* the entry at j may move to i unless its home lies cyclically in (i, j] */
    if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
      A->set[i] = A->set[j];
      i = j;
    }
  }
  A->set[i] = 0;
  A->set_count--;
}

/* ---- chunks ---- */

static void list_push(SlabAlloc *A, Chunk *c) {
  Chunk *h = A->avail[c->cls];
  c->prev = NULL;
  c->next = h;
  if (h) h->prev = c;
  A->avail[c->cls] = c;
  c->listed = 1;
}

static void list_remove(SlabAlloc *A, Chunk *c) {
  if (c->prev) c->prev->next = c->next;
  else A->avail[c->cls] = c->next;
  if (c->next) c->next->prev = c->prev;
  c->listed = 0;
}

static Chunk *chunk_new(SlabAlloc *A, unsigned cls) {
  Chunk *c = A->spare;
  if (c != NULL) {
    A->spare = c->next;
    A->nspare--;
  } else {
    if (A->refuse_map || (c = (Chunk *)map_chunk()) == NULL) return NULL;
    if (set_add(A, (uintptr_t)c) != 0) {
      munmap(c, CHUNK);
      return NULL;
    }
  }
  c->free = NULL;
  c->bump = CHUNK_HEADER;
  c->size = cls * GRAIN;
  c->live = 0;
  c->cls = cls;
  list_push(A, c);
  return c;
}

static void chunk_release(SlabAlloc *A, Chunk *c) {
  list_remove(A, c);
  if (A->nspare < MAX_SPARE) {
    c->next = A->spare;
    A->spare = c;
    A->nspare++;
    return;
  }
  set_remove(A, (uintptr_t)c);
  munmap(c, CHUNK);
}

static void *slab_get(SlabAlloc *A, size_t n) {
  unsigned cls = (unsigned)((n + GRAIN - 1) / GRAIN);
  Chunk *c = A->avail[cls];
  void *p;
  if (c == NULL && (c = chunk_new(A, cls)) == NULL) return NULL;
  if (c->free != NULL) {
    p = c->free;
    c->free = *(void **)p;
  } else {
    p = (char *)c + c->bump;
    c->bump += c->size;
  }
  c->live++;
  if (c->free == NULL && c->bump > CHUNK - c->size) list_remove(A, c);
  return p;
}

static void slab_put(SlabAlloc *A, Chunk *c, void *p) {
  *(void **)p = c->free;
  c->free = p;
  if (!c->listed) list_push(A, c);
  if (--c->live == 0) chunk_release(A, c);
}

/* ---- the lua_Alloc ---- */

static void *slab_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  SlabAlloc *A = (SlabAlloc *)ud;
  Chunk *c;
  void *p;
  if (ptr == NULL) {  /* osize is a type tag */
    if (nsize - 1 < SMALL_MAX && (p = slab_get(A, nsize)) != NULL) return p;
    return A->prev_f(A->prev_ud, NULL, osize, nsize);
  }
  c = osize <= SMALL_MAX ? set_find(A, ptr) : NULL;
  if (c == NULL) {  /* the previous allocator's block */
    if (nsize - 1 < SMALL_MAX && (p = slab_get(A, nsize)) != NULL) {
      memcpy(p, ptr, osize < nsize ? osize : nsize);
      A->prev_f(A->prev_ud, ptr, osize, 0);
      return p;
    }
    return A->prev_f(A->prev_ud, ptr, osize, nsize);
  }
  if (nsize == 0) {
    slab_put(A, c, ptr);
    return NULL;
  }
  if (nsize <= c->size && nsize + GRAIN > c->size) return ptr;  /* same class */
  p = nsize <= SMALL_MAX ? slab_get(A, nsize) : NULL;
  if (p == NULL) p = A->prev_f(A->prev_ud, NULL, 0, nsize);
  if (p == NULL) return nsize <= c->size ? ptr : NULL;  /* a shrink never fails */
  memcpy(p, ptr, osize < nsize ? osize : nsize);
  slab_put(A, c, ptr);
  return p;
}

static SlabAlloc *slab_create(lua_Alloc f, void *ud) {
  SlabAlloc *A = (SlabAlloc *)map_pages(sizeof *A);
  if (A == NULL) return NULL;
  memset(A, 0, sizeof *A);
  A->prev_f = f;
  A->prev_ud = ud;
  A->set_bits = SET_MIN_BITS;
  A->set_bytes = sizeof *A->set << SET_MIN_BITS;
  if ((A->set = (uintptr_t *)map_pages(A->set_bytes)) == NULL) {
    munmap(A, sizeof *A);
    return NULL;
  }
  return A;
}

/* Unmaps everything; only for an instance no Lua state uses (the selftest's). */
static void slab_destroy(SlabAlloc *A) {
  size_t i;
  for (i = 0; i < ((size_t)1 << A->set_bits); i++)
    if (A->set[i] != 0) munmap((void *)A->set[i], CHUNK);
  munmap(A->set, A->set_bytes);
  munmap(A, sizeof *A);
}

static int want_slabs(void) {
  const char *mode = getenv("AQS_LUA_ALLOC");
  if (mode != NULL && strcmp(mode, "system") == 0) return 0;
  if (mode != NULL && strcmp(mode, "slab") == 0) return 1;
#if defined(__SANITIZE_ADDRESS__)
  return 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return 0;
#endif
#endif
  /* An uninstrumented build in a process with the sanitizer runtime preloaded (specs run
   * under make sanitize start aqstore with build/'s core): LeakSanitizer does not scan
   * the chunks, so the blocks they point at would be leak reports at os.exit. */
  return dlsym(RTLD_DEFAULT, "__asan_init") == NULL && dlsym(RTLD_DEFAULT, "__lsan_init") == NULL;
}

/* lua_close runs the CLIBS finalizer (dlclose of this module) before it frees the objects,
 * and those frees come through slab_alloc: the module must stay mapped until exit. */
static int pin_module(void) {
  Dl_info info;
  if (dladdr(&lua_alloc_key, &info) == 0 || info.dli_fname == NULL) return 0;
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
}

void aqs_lua_alloc_install(lua_State *L) {
  SlabAlloc *A = NULL;
  lua_Alloc f;
  void *ud;
  int done = lua_rawgetp(L, LUA_REGISTRYINDEX, &lua_alloc_key) != LUA_TNIL;
  lua_pop(L, 1);
  if (done) return;  /* once per state: a second wrapper would own blocks the first frees */
  if (want_slabs() && (pin_module() || 1)) {
    f = lua_getallocf(L, &ud);
    if ((A = slab_create(f, ud)) != NULL) lua_setallocf(L, slab_alloc, A);
  }
  if (A != NULL) lua_pushlightuserdata(L, A);
  else lua_pushboolean(L, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lua_alloc_key);
}

/* core._alloc_stats() -> {mode = "slab"|"system", chunks = n, spare = n} */
int aqs_alloc_stats(lua_State *L) {
  SlabAlloc *A;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lua_alloc_key);
  A = (SlabAlloc *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, A ? "slab" : "system");
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, A ? (lua_Integer)A->set_count : 0);
  lua_setfield(L, -2, "chunks");
  lua_pushinteger(L, A ? (lua_Integer)A->nspare : 0);
  lua_setfield(L, -2, "spare");
  return 1;
}

/* ---- selftest: a private instance driven like Lua drives it, with refusals ---- */

typedef struct {
  lua_Alloc f;       /* the state's allocator: the instance's previous allocator */
  void *ud;
  int refuse;        /* fail growth requests */
} Refusing;

static void *refusing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  Refusing *r = (Refusing *)ud;
  if (r->refuse && nsize > (ptr ? osize : 0)) return NULL;
  return r->f(r->ud, ptr, osize, nsize);
}

typedef struct {
  unsigned char *p;
  size_t n;
  unsigned char seed;
  int prev_owned;    /* allocated straight from the previous allocator */
} Block;

#define NBLOCK 512

static uint32_t next_rand(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

static size_t random_size(uint32_t *s) {
  uint32_t r = next_rand(s);
  switch (r % 8) {
    case 6: return 1 + next_rand(s) % 64;
    case 7: return SMALL_MAX + 1 + next_rand(s) % 2000;
    default: return 1 + next_rand(s) % SMALL_MAX;
  }
}

static void fill(Block *b) {
  size_t i;
  for (i = 0; i < b->n; i++) b->p[i] = (unsigned char)(b->seed + i * 31);
}

static int intact(const Block *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (b->p[i] != (unsigned char)(b->seed + i * 31)) return 0;
  return 1;
}

static const char *selftest_run(SlabAlloc *A, Refusing *r, Block *blk, lua_Integer nops,
                                uint32_t *rng, lua_Integer *counts) {
  lua_Integer op;
  for (op = 0; op < nops; op++) {
    Block *b = &blk[next_rand(rng) % NBLOCK];
    int refusing = next_rand(rng) % 16 == 0;
    size_t n = random_size(rng);
    unsigned char *p;
    r->refuse = A->refuse_map = refusing;
    if (b->p == NULL) {
      p = (unsigned char *)slab_alloc(A, NULL, LUA_TSTRING, n);
      if (p == NULL && !refusing) return "allocation failed without a refusal";
      if (p != NULL) {
        b->p = p;
        b->n = n;
        b->seed = (unsigned char)next_rand(rng);
        b->prev_owned = 0;
        fill(b);
      } else counts[1]++;
    } else if (!intact(b, b->n)) {
      return "block contents changed";
    } else if (next_rand(rng) % 3 == 0) {
      if (slab_alloc(A, b->p, b->n, 0) != NULL) return "free returned a block";
      b->p = NULL;
    } else {
      p = (unsigned char *)slab_alloc(A, b->p, b->n, n);
      if (p == NULL) {
        if (n <= b->n) return "a shrink failed";
        if (!refusing) return "growth failed without a refusal";
        counts[1]++;
        continue;
      }
      b->p = p;
      if (!intact(b, n < b->n ? n : b->n)) return "realloc lost contents";
      if (b->prev_owned) counts[2]++;
      b->prev_owned = 0;
      b->n = n;
      fill(b);
    }
    counts[0]++;
  }
  r->refuse = A->refuse_map = 0;
  return NULL;
}

/* core._alloc_selftest(n, seed) -> {ops=, refused=, adopted=, chunks_peak=}: n random
 * allocations, reallocations and frees through a private instance (blocks of the previous
 * allocator among them, refused growth on 1 in 16), contents checked after each move;
 * raises on the first inconsistency. Every block is freed and the instance unmapped. */
int aqs_alloc_selftest(lua_State *L) {
  lua_Integer nops = luaL_checkinteger(L, 1);
  uint32_t rng = (uint32_t)luaL_optinteger(L, 2, 1) * 2654435761u | 1u;
  lua_Integer counts[3] = {0, 0, 0};  /* ops done, refused, adopted prev blocks */
  Refusing r;
  SlabAlloc *A;
  Block *blk;
  const char *err = NULL;
  size_t i, peak;
  luaL_argcheck(L, nops >= 0, 1, "count must be >= 0");
  r.f = lua_getallocf(L, &r.ud);
  r.refuse = 0;
  blk = (Block *)lua_newuserdatauv(L, sizeof *blk * NBLOCK, 0);
  memset(blk, 0, sizeof *blk * NBLOCK);
  if ((A = slab_create(refusing_alloc, &r)) == NULL) return luaL_error(L, "alloc_selftest: no memory");
  /* Blocks from before installation: small sizes Lua will free through the instance. */
  for (i = 0; i < NBLOCK / 8; i++) {
    Block *b = &blk[i * 8];
    b->n = 1 + next_rand(&rng) % SMALL_MAX;
    b->p = (unsigned char *)r.f(r.ud, NULL, LUA_TTABLE, b->n);
    if (b->p == NULL) {
      err = "no memory";
      break;
    }
    b->seed = (unsigned char)i;
    b->prev_owned = 1;
    fill(b);
  }
  if (err == NULL) err = selftest_run(A, &r, blk, nops, &rng, counts);
  peak = A->set_count;
  r.refuse = A->refuse_map = 0;
  for (i = 0; i < NBLOCK; i++) {
    Block *b = &blk[i];
    if (b->p == NULL) continue;
    if (err == NULL && !intact(b, b->n)) err = "block contents changed";
    slab_alloc(A, b->p, b->n, 0);
    b->p = NULL;
  }
  if (err == NULL && A->set_count != A->nspare) err = "a chunk outlived its blocks";
  for (i = 0; err == NULL && i <= NCLASS; i++)
    if (A->avail[i] != NULL) err = "a class list outlived its blocks";
  slab_destroy(A);
  if (err != NULL) return luaL_error(L, "alloc_selftest: %s", err);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, counts[0]);
  lua_setfield(L, -2, "ops");
  lua_pushinteger(L, counts[1]);
  lua_setfield(L, -2, "refused");
  lua_pushinteger(L, counts[2]);
  lua_setfield(L, -2, "adopted");
  lua_pushinteger(L, (lua_Integer)peak);
  lua_setfield(L, -2, "chunks_peak");
  return 1;
}
