/*
 * replay.c - the projection's tasks and runs in C, and the replay rules of the events
 * that change them (recovery.md 9.3 #0-#10, #14, #15; issue 15.5).
 *
 * A task is its id, created_at, canceled_at and its TaskSpec kept as the postcard bytes
 * of the WAL record (decoded only when a reader asks); a run is one struct with its
 * state history and attempt history as packed arrays.  Both live in arrays indexed by
 * open-addressing id maps: a 100,000-event WAL replays without one Lua value per event,
 * into about a fifth of the memory the Lua tables took.
 *
 * replay_state(config) -> ReplayState
 *   config = {states = {RunState names in wire order}, allowed = {{from, to}...},
 *             terminal = {names}, results = {AttemptResultKind names in wire order},
 *             variants = {WalEventType names in wire order},
 *             layouts = {[name] = "field,field,..."}} (recovery/state.lua builds it from
 *   the schema and statemachine.lua; a layout that differs from the one this file
 *   reads is an error, so a schema change cannot be misread silently).
 * ReplayState methods:
 *   handled() -> {variant names whose rule lives here}
 *   apply(payload) -> true | nil, kind, detail?, text?
 *     payload: a validated postcard WalEvent of a handled variant (its sequence is the
 *     caller's business).  Every precondition is checked before the first change
 *     (all-or-nothing).
 *   replay(st, iter, iter_state, opts) -> summary: the replay pass's loop (recovery/
 *     bootstrap.lua replay_pass): every frame of the `frames` iterator is skimmed
 *     (opts.decode(payload, opts.schema, opts.skim): the postcard validation), counted,
 *     and from the first record with sequence opts.target (at once when opts.started)
 *     applied: the handled variants here, the others by opts.other(st, payload, seq,
 *     variant) -> true | nil, err.  The first rejection stops the applying (not the
 *     scan); its error value is opts.error(kind, detail, text) (or other's err).
 *     st.latest is read at the start and written back.  Summary: {records,
 *     last_sequence, max_sequence, valid_bytes, started, applied, status = the
 *     iterator's final status table | decode_error = message, decode_offset,
 *     reducer_error = err}.
 *   seed_run(run_id, attempt_count, current_attempt_id?, history, attempts, lease?)
 *     hydration's direct seeding (recovery.md 5 step 4.4-4.6) of an existing run.
 *   counts() -> tasks, runs;  task_ids(), run_ids() -> sorted id lists;
 *   task(id) -> created_at, canceled_at?, spec bytes | nil;
 *   run(id) -> {instance, history, attempts, lease?, lease_meta?} | nil;
 *   runs_of_task(task_id) -> run ids in creation order;
 *   runs_by_state() -> {[state name] = n}.
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MT "actionqueue.storage.ReplayState"
#define NSTATES 16
#define NRESULTS 8
#define NONE 0xff

/* Variants whose rules live here, with the fields this file reads, in wire order. */
enum { V_TASK_CREATED, V_RUN_CREATED, V_STATE_CHANGED, V_ATTEMPT_STARTED,
       V_ATTEMPT_FINISHED, V_TASK_CANCELED, V_RUN_CANCELED, V_LEASE_ACQUIRED,
       V_LEASE_HEARTBEAT, V_LEASE_EXPIRED, V_LEASE_RELEASED, V_RUN_SUSPENDED,
       V_RUN_RESUMED, V_COUNT };

static const struct { const char *name, *layout; } VARIANTS[V_COUNT] = {
  {"TaskCreated", "task_spec,timestamp"},  /* task_spec must stay first (its span) */
  {"RunCreated", "run_instance"},
  {"RunStateChanged", "run_id,previous_state,new_state,timestamp"},
  {"AttemptStarted", "run_id,attempt_id,timestamp"},
  {"AttemptFinished", "run_id,attempt_id,result,error,output,timestamp"},
  {"TaskCanceled", "task_id,timestamp"},
  {"RunCanceled", "run_id,timestamp"},
  {"LeaseAcquired", "run_id,owner,expiry,timestamp"},
  {"LeaseHeartbeat", "run_id,owner,expiry,timestamp"},
  {"LeaseExpired", "run_id,owner,expiry,timestamp"},
  {"LeaseReleased", "run_id,owner,expiry,timestamp"},
  {"RunSuspended", "run_id,reason,timestamp"},
  {"RunResumed", "run_id,timestamp"},
};

/* The records the readers build, with their fields in schema order. */
enum { R_INSTANCE, R_HISTORY, R_ATTEMPT, R_LEASE, R_COUNT };
static const struct { const char *name, *layout; } RECORDS[R_COUNT] = {
  {"RunInstance", "id,task_id,state,current_attempt_id,attempt_count,created_at,"
                  "scheduled_at,effective_priority,last_state_change_at"},
  {"RunStateHistoryEntry", "from,to,timestamp"},
  {"AttemptHistoryEntry", "attempt_id,started_at,finished_at,result,error,output"},
  {"RunLease", "owner,expiry,acquired_at,updated_at"},
};

static const char *const LEASE_KIND[4] = {
  "lease acquire", "lease heartbeat", "lease expire", "lease release"
};

typedef struct {
  unsigned char from, to;  /* from: NONE when absent */
  uint64_t ts;
} hist_entry;

typedef struct {
  unsigned char id[16];
  unsigned char finished, result, has_error, has_output;  /* result: NONE when absent */
  uint64_t started_at, finished_at;
  char *error, *output;
  size_t error_len, output_len;
} attempt_entry;

typedef struct {
  unsigned char id[16], task_id[16], attempt_id[16];
  unsigned char state, has_attempt, has_lease;
  uint32_t attempt_count;
  int32_t priority;
  uint64_t created_at, scheduled_at, last_change;
  char *owner;
  size_t owner_len;
  uint64_t expiry, acquired_at, updated_at;
  hist_entry *hist;
  attempt_entry *att;
  uint32_t nhist, caphist, natt, capatt;
} run_rec;

typedef struct {
  unsigned char id[16];
  unsigned char canceled;
  uint64_t created_at, canceled_at;
  unsigned char *spec;
  size_t spec_len;
} task_rec;

typedef struct {
  uint32_t *slot;  /* index + 1, 0 = empty */
  uint32_t cap;    /* power of two (0 before the first insert) */
} id_map;

typedef struct {
  task_rec *tasks;
  run_rec *runs;
  uint32_t ntasks, captasks, nruns, capruns;
  id_map tmap, rmap;
  int nstates, nresults;
  unsigned char allowed[NSTATES][NSTATES], terminal[NSTATES];
  unsigned char st_scheduled, st_ready, st_leased, st_running, st_suspended, st_canceled;
  unsigned char res_success, res_failure, res_timeout, res_suspended;
  int variant_of[64];  /* wire index -> V_* or -1 */
  int nvariants;
  const jtype *task_spec;  /* TaskCreated's task_spec type (its span in a payload) */
} rstate;

/* ---- ids and maps ------------------------------------------------------------ */

/* All 16 bytes count (generated ids may differ only in their last bytes), mixed with
 * murmur3's 64-bit finaliser so that every input bit reaches the low bits the maps use. */
static uint32_t id_hash(const unsigned char *id) {
  uint64_t a, b, h;
  memcpy(&a, id, 8);
  memcpy(&b, id + 8, 8);
  h = a * 0x9e3779b97f4a7c15ull ^ b;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return (uint32_t)h;
}

/* Index of id in the records (stride bytes apart, id at offset 0), or -1. */
static int64_t map_find(const id_map *m, const void *base, size_t stride, const unsigned char *id) {
  uint32_t mask, i;
  if (m->cap == 0) return -1;
  mask = m->cap - 1;
  for (i = id_hash(id) & mask; m->slot[i]; i = (i + 1) & mask) {
    uint32_t k = m->slot[i] - 1;
    if (memcmp((const unsigned char *)base + (size_t)k * stride, id, 16) == 0) return k;
  }
  return -1;
}

static void map_put(id_map *m, const void *base, size_t stride, uint32_t k) {
  uint32_t mask = m->cap - 1;
  uint32_t i = id_hash((const unsigned char *)base + (size_t)k * stride) & mask;
  while (m->slot[i]) i = (i + 1) & mask;
  m->slot[i] = k + 1;
}

/* Makes room for n + 1 entries (load <= 1/2); 0 or -1 out of memory. */
static int map_reserve(id_map *m, const void *base, size_t stride, uint32_t n) {
  uint32_t cap, k;
  uint32_t *slot;
  if ((uint64_t)(n + 1) * 2 <= m->cap) return 0;
  cap = m->cap ? m->cap * 2 : 64;
  if (cap == 0 || cap > (1u << 30)) return -1;
  slot = (uint32_t *)calloc(cap, sizeof *slot);
  if (!slot) return -1;
  free(m->slot);
  m->slot = slot;
  m->cap = cap;
  for (k = 0; k < n; k++) map_put(m, base, stride, k);
  return 0;
}

/* Grows an array of elements of size `size` to hold n + 1; 0 or -1. */
static int grow(void **arr, uint32_t *cap, uint32_t n, size_t size) {
  uint32_t c;
  void *p;
  if (n < *cap) return 0;
  c = *cap ? *cap * 2 : 4;
  if (c <= *cap || (size_t)c > (size_t)-1 / size) return -1;
  p = realloc(*arr, (size_t)c * size);
  if (!p) return -1;
  *arr = p;
  *cap = c;
  return 0;
}

static void push_id(lua_State *L, const unsigned char *b) {
  static const char hex[] = "0123456789abcdef";
  char s[36];
  int i, j = 0;
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s[j++] = '-';
    s[j++] = hex[b[i] >> 4];
    s[j++] = hex[b[i] & 15];
  }
  lua_pushlstring(L, s, 36);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Hyphenated UUID text (36 characters) -> 16 bytes; 0 or -1 when it is not one. */
static int parse_id(const char *s, size_t n, unsigned char *out) {
  size_t i, k = 0;
  if (n != 36) return -1;
  for (i = 0; i < 36;) {
    int hi, lo;
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return -1;
      i++;
      continue;
    }
    hi = hexval((unsigned char)s[i]);
    lo = hexval((unsigned char)s[i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[k++] = (unsigned char)(hi << 4 | lo);
    i += 2;
  }
  return 0;
}

/* The id at stack index idx: 0 with out set, -1 when it is not an id string. */
static int arg_id(lua_State *L, int idx, unsigned char *out) {
  size_t n;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return -1;
  s = lua_tolstring(L, idx, &n);
  return parse_id(s, n, out);
}

/* ---- payload reading (the record was validated by the postcard skim first) ---- */

typedef struct {
  const unsigned char *p, *end;
  int bad;
} rd;

static uint64_t rd_varint(rd *r) {
  uint64_t v = 0;
  int shift = 0;
  while (r->p < r->end && shift < 70) {
    unsigned b = *r->p++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
    shift += 7;
  }
  r->bad = 1;
  return 0;
}

static int rd_byte(rd *r) {
  if (r->p >= r->end) { r->bad = 1; return 0; }
  return *r->p++;
}

static void rd_id(rd *r, unsigned char *out) {
  if (r->end - r->p < 17 || r->p[0] != 16) {
    r->bad = 1;
    memset(out, 0, 16);
    return;
  }
  memcpy(out, r->p + 1, 16);
  r->p += 17;
}

static const unsigned char *rd_bytes(rd *r, size_t *n) {
  uint64_t len = rd_varint(r);
  const unsigned char *s = r->p;
  if (r->bad || len > (uint64_t)(r->end - r->p)) { r->bad = 1; *n = 0; return NULL; }
  r->p += len;
  *n = (size_t)len;
  return s;
}

/* Option tag: 1 Some, 0 None. */
static int rd_opt(rd *r) {
  int t = rd_byte(r);
  if (t > 1) r->bad = 1;
  return t == 1;
}

static unsigned rd_enum(rd *r, unsigned limit) {
  uint64_t v = rd_varint(r);
  if (v >= limit) { r->bad = 1; return 0; }
  return (unsigned)v;
}

/* names: stack index of the uservalue {states, results}. */
static void push_name(lua_State *L, int names, int which, unsigned i) {
  lua_rawgeti(L, names, which);
  lua_rawgeti(L, -1, (lua_Integer)i + 1);
  lua_remove(L, -2);
}

/* ---- rule outcomes --------------------------------------------------------------- */

/* nil, kind [, detail, text]: the reducer's error (recovery/reducer.lua wraps it). */
static int reject(lua_State *L, const char *kind) {
  lua_pushnil(L);
  lua_pushstring(L, kind);
  return 2;
}

static int reject_detail(lua_State *L, const char *kind, const char *detail, luaL_Buffer *b) {
  luaL_pushresult(b);      /* the text, on top */
  lua_pushnil(L);
  lua_pushstring(L, kind);
  lua_pushstring(L, detail);
  lua_rotate(L, -4, -1);   /* nil, kind, detail, text */
  return 4;
}

static void add_u64(luaL_Buffer *b, uint64_t v) {
  char s[24];
  int n = snprintf(s, sizeof s, "%llu", (unsigned long long)v);
  luaL_addlstring(b, s, (size_t)n);
}

static void add_id(lua_State *L, luaL_Buffer *b, const unsigned char *id) {
  push_id(L, id);
  luaL_addvalue(b);
}

/* ---- the state --------------------------------------------------------------------- */

static rstate *check_state(lua_State *L) {
  return (rstate *)luaL_checkudata(L, 1, STATE_MT);
}

static void free_run(run_rec *r) {
  uint32_t i;
  for (i = 0; i < r->natt; i++) {
    free(r->att[i].error);
    free(r->att[i].output);
  }
  free(r->att);
  free(r->hist);
  free(r->owner);
}

static int state_gc(lua_State *L) {
  rstate *s = check_state(L);
  uint32_t i;
  for (i = 0; i < s->ntasks; i++) free(s->tasks[i].spec);
  for (i = 0; i < s->nruns; i++) free_run(&s->runs[i]);
  free(s->tasks);
  free(s->runs);
  free(s->tmap.slot);
  free(s->rmap.slot);
  memset(s, 0, sizeof *s);
  return 0;
}

static run_rec *find_run(rstate *s, const unsigned char *id) {
  int64_t k = map_find(&s->rmap, s->runs, sizeof(run_rec), id);
  return k < 0 ? NULL : &s->runs[k];
}

static task_rec *find_task(rstate *s, const unsigned char *id) {
  int64_t k = map_find(&s->tmap, s->tasks, sizeof(task_rec), id);
  return k < 0 ? NULL : &s->tasks[k];
}

static char *dup_bytes(const void *p, size_t n) {
  char *d = (char *)malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

static int oom(lua_State *L) {
  return luaL_error(L, "not enough memory");
}

/* Room for one more history entry (before any change). */
static void reserve_hist(lua_State *L, run_rec *r) {
  if (grow((void **)&r->hist, &r->caphist, r->nhist, sizeof(hist_entry)) < 0) oom(L);
}

/* Effects of a state change (#2, #6, #14, #15); history room reserved by the caller. */
static void change_state(rstate *s, run_rec *r, unsigned prev, unsigned to, uint64_t ts) {
  hist_entry *h;
  r->state = (unsigned char)to;
  if (to != s->st_running) r->has_attempt = 0;
  r->last_change = ts;
  h = &r->hist[r->nhist++];
  h->from = (unsigned char)prev;
  h->to = (unsigned char)to;
  h->ts = ts;
  if (s->terminal[to]) {
    r->has_lease = 0;
    free(r->owner);
    r->owner = NULL;
    r->owner_len = 0;
  }
}

/* RunStateChanged's checks (9.3 #2 steps 1-6; step 4 cannot happen: the mirror is the
 * run's own state), then its effects. */
static int state_changed(lua_State *L, rstate *s, const unsigned char *run_id,
                         unsigned prev, unsigned to, uint64_t ts) {
  run_rec *r = find_run(s, run_id);
  if (!r || r->state != prev || !s->allowed[prev][to]) return reject(L, "InvalidTransition");
  if (r->has_attempt) {
    if (to == s->st_running) return reject(L, "InvalidTransition");
    if (prev == s->st_running && to != s->st_canceled) return reject(L, "InvalidTransition");
  }
  reserve_hist(L, r);
  change_state(s, r, prev, to, ts);
  lua_pushboolean(L, 1);
  return 1;
}

static int task_created(lua_State *L, rstate *s, rd *r) {
  unsigned char id[16];
  const unsigned char *spec = r->p;
  size_t spec_len;
  task_rec *t;
  uint64_t ts;
  if (aqs_postcard_span(s->task_spec, r->p, (size_t)(r->end - r->p), &spec_len) < 0)
    return luaL_error(L, "replay: malformed TaskCreated payload");
  rd_id(r, id);
  r->p = spec + spec_len;
  ts = rd_varint(r);
  if (r->bad) return luaL_error(L, "replay: malformed TaskCreated payload");
  if (find_task(s, id)) return reject(L, "DuplicateEvent");
  if (grow((void **)&s->tasks, &s->captasks, s->ntasks, sizeof(task_rec)) < 0 ||
      map_reserve(&s->tmap, s->tasks, sizeof(task_rec), s->ntasks) < 0)
    return oom(L);
  t = &s->tasks[s->ntasks];
  memset(t, 0, sizeof *t);
  if (!(t->spec = (unsigned char *)dup_bytes(spec, spec_len))) return oom(L);
  memcpy(t->id, id, 16);
  t->spec_len = spec_len;
  t->created_at = ts;
  map_put(&s->tmap, s->tasks, sizeof(task_rec), s->ntasks++);
  lua_pushboolean(L, 1);
  return 1;
}

static int run_created(lua_State *L, rstate *s, rd *r) {
  run_rec n;
  memset(&n, 0, sizeof n);
  rd_id(r, n.id);
  rd_id(r, n.task_id);
  n.state = (unsigned char)rd_enum(r, (unsigned)s->nstates);
  if (rd_opt(r)) {
    rd_id(r, n.attempt_id);
    n.has_attempt = 1;
  }
  n.attempt_count = (uint32_t)rd_varint(r);
  n.created_at = rd_varint(r);
  n.scheduled_at = rd_varint(r);
  {
    uint64_t z = rd_varint(r);
    n.priority = (int32_t)((z >> 1) ^ (~(z & 1) + 1));
  }
  n.last_change = rd_varint(r);
  if (r->bad) return luaL_error(L, "replay: malformed RunCreated payload");
  if (find_run(s, n.id)) return reject(L, "DuplicateEvent");
  if (n.state != s->st_scheduled) return reject(L, "InvalidTransition");
  if (grow((void **)&s->runs, &s->capruns, s->nruns, sizeof(run_rec)) < 0 ||
      map_reserve(&s->rmap, s->runs, sizeof(run_rec), s->nruns) < 0 ||
      grow((void **)&n.hist, &n.caphist, 0, sizeof(hist_entry)) < 0) {
    free(n.hist);
    return oom(L);
  }
  n.hist[0].from = NONE;
  n.hist[0].to = s->st_scheduled;
  n.hist[0].ts = n.created_at;
  n.nhist = 1;
  s->runs[s->nruns] = n;
  map_put(&s->rmap, s->runs, sizeof(run_rec), s->nruns++);
  lua_pushboolean(L, 1);
  return 1;
}

static int attempt_started(lua_State *L, rstate *s, rd *r) {
  unsigned char run_id[16], att_id[16];
  uint64_t ts;
  run_rec *run;
  attempt_entry *a;
  rd_id(r, run_id);
  rd_id(r, att_id);
  ts = rd_varint(r);
  if (r->bad) return luaL_error(L, "replay: malformed AttemptStarted payload");
  run = find_run(s, run_id);
  if (!run || run->state != s->st_running) return reject(L, "InvalidTransition");
  if (run->has_attempt) return reject(L, "InvalidTransition");
  if (run->attempt_count == 0xFFFFFFFFu) return reject(L, "CorruptedData");
  if (grow((void **)&run->att, &run->capatt, run->natt, sizeof(attempt_entry)) < 0) return oom(L);
  run->attempt_count++;
  memcpy(run->attempt_id, att_id, 16);
  run->has_attempt = 1;
  a = &run->att[run->natt++];
  memset(a, 0, sizeof *a);
  memcpy(a->id, att_id, 16);
  a->started_at = ts;
  a->result = NONE;
  lua_pushboolean(L, 1);
  return 1;
}

static int attempt_finished(lua_State *L, rstate *s, rd *r) {
  unsigned char run_id[16], att_id[16];
  const unsigned char *err = NULL, *out = NULL;
  size_t err_len = 0, out_len = 0;
  const char *dflt = NULL;
  int has_err, has_out;
  unsigned result;
  uint64_t ts;
  run_rec *run;
  attempt_entry *a = NULL;
  uint32_t i;
  char *e2 = NULL, *o2 = NULL;
  rd_id(r, run_id);
  rd_id(r, att_id);
  result = rd_enum(r, (unsigned)s->nresults);
  if ((has_err = rd_opt(r))) err = rd_bytes(r, &err_len);
  if ((has_out = rd_opt(r))) out = rd_bytes(r, &out_len);
  ts = rd_varint(r);
  if (r->bad) return luaL_error(L, "replay: malformed AttemptFinished payload");
  /* normalise (result, error, output) first (9.3 #4) */
  if (result == s->res_success || result == s->res_suspended) {
    if (has_err) has_err = has_out = 0;
  } else if (!(has_err && !has_out)) {
    has_out = 0;
    if (!has_err) {
      has_err = 1;
      dflt = result == s->res_failure ? "unknown failure" : "unknown timeout";
      err = (const unsigned char *)dflt;
      err_len = strlen(dflt);
    }
  }
  run = find_run(s, run_id);
  if (!run || run->state != s->st_running) return reject(L, "InvalidTransition");
  if (!run->has_attempt || memcmp(run->attempt_id, att_id, 16) != 0)
    return reject(L, "InvalidTransition");
  for (i = 0; i < run->natt; i++)
    if (memcmp(run->att[i].id, att_id, 16) == 0) { a = &run->att[i]; break; }
  if (!a || a->finished) return reject(L, "CorruptedData");
  if ((has_err && !(e2 = dup_bytes(err, err_len))) || (has_out && !(o2 = dup_bytes(out, out_len)))) {
    free(e2);
    return oom(L);
  }
  run->has_attempt = 0;
  a->finished = 1;
  a->finished_at = ts;
  a->result = (unsigned char)result;
  a->has_error = (unsigned char)has_err;
  a->error = e2;
  a->error_len = err_len;
  a->has_output = (unsigned char)has_out;
  a->output = o2;
  a->output_len = out_len;
  lua_pushboolean(L, 1);
  return 1;
}

static int task_canceled(lua_State *L, rstate *s, rd *r) {
  unsigned char id[16];
  uint64_t ts;
  task_rec *t;
  luaL_Buffer b;
  rd_id(r, id);
  ts = rd_varint(r);
  if (r->bad) return luaL_error(L, "replay: malformed TaskCanceled payload");
  t = find_task(s, id);
  if (!t) {
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "task canceled rejected: unknown task ");
    add_id(L, &b, id);
    return reject_detail(L, "Task", "UnknownTask", &b);
  }
  if (t->canceled) {
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "task canceled rejected for task ");
    add_id(L, &b, id);
    luaL_addstring(&b, ": already canceled at ");
    add_u64(&b, t->canceled_at);
    luaL_addstring(&b, ", duplicate timestamp ");
    add_u64(&b, ts);
    return reject_detail(L, "Task", "AlreadyCanceled", &b);
  }
  t->canceled = 1;
  t->canceled_at = ts;
  lua_pushboolean(L, 1);
  return 1;
}

static int run_canceled(lua_State *L, rstate *s, rd *r) {
  unsigned char id[16];
  uint64_t ts;
  run_rec *run;
  rd_id(r, id);
  ts = rd_varint(r);
  if (r->bad) return luaL_error(L, "replay: malformed RunCanceled payload");
  run = find_run(s, id);
  if (!run || s->terminal[run->state]) return reject(L, "InvalidTransition");
  reserve_hist(L, run);
  change_state(s, run, run->state, s->st_canceled, ts);  /* terminal: lease removed */
  lua_pushboolean(L, 1);
  return 1;
}

/* "<kind> rejected for run <id>" into a fresh buffer (error texts only). */
static void lease_prefix(lua_State *L, luaL_Buffer *b, int which, const unsigned char *id) {
  luaL_buffinit(L, b);
  luaL_addstring(b, LEASE_KIND[which]);
  luaL_addstring(b, " rejected for run ");
  add_id(L, b, id);
}

/* #7-#10.  which: 0 acquire, 1 heartbeat, 2 expire, 3 release. */
static int lease_event(lua_State *L, rstate *s, rd *r, int which) {
  unsigned char id[16];
  const unsigned char *owner;
  size_t owner_len;
  uint64_t expiry, ts;
  run_rec *run;
  luaL_Buffer b;
  unsigned st;
  int ok_state;
  rd_id(r, id);
  owner = rd_bytes(r, &owner_len);
  expiry = rd_varint(r);
  ts = rd_varint(r);
  if (r->bad) return luaL_error(L, "replay: malformed lease payload");
  run = find_run(s, id);
  if (!run) {
    luaL_buffinit(L, &b);
    luaL_addstring(&b, LEASE_KIND[which]);
    luaL_addstring(&b, " rejected: unknown run ");
    add_id(L, &b, id);
    return reject_detail(L, "Lease", "UnknownRun", &b);
  }
  st = run->state;
  if (which == 0) ok_state = st == s->st_ready || st == s->st_leased;
  else if (which == 1) ok_state = st == s->st_leased || st == s->st_running;
  else ok_state = st == s->st_ready || st == s->st_leased || st == s->st_running;
  if (!ok_state) {
    lease_prefix(L, &b, which, id);
    luaL_addstring(&b, ": invalid state ");
    lua_getiuservalue(L, 1, 1);
    push_name(L, lua_gettop(L), 1, st);
    lua_remove(L, -2);
    luaL_addvalue(&b);
    return reject_detail(L, "Lease", "InvalidRunState", &b);
  }
  if (which == 0) {
    char *o;
    if (run->has_lease) {
      lease_prefix(L, &b, which, id);
      luaL_addstring(&b, ": lease already active");
      return reject_detail(L, "Lease", "LeaseAlreadyActive", &b);
    }
    if (!(o = dup_bytes(owner, owner_len))) return oom(L);
    free(run->owner);
    run->owner = o;
    run->owner_len = owner_len;
    run->has_lease = 1;
    run->expiry = expiry;
    run->acquired_at = run->updated_at = ts;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!run->has_lease) {
    lease_prefix(L, &b, which, id);
    luaL_addstring(&b, ": missing active lease");
    return reject_detail(L, "Lease", "MissingActiveLease", &b);
  }
  if (run->owner_len != owner_len || memcmp(run->owner, owner, owner_len) != 0) {
    lease_prefix(L, &b, which, id);
    luaL_addstring(&b, ": owner mismatch expected=");
    luaL_addlstring(&b, run->owner, run->owner_len);
    luaL_addstring(&b, " actual=");
    luaL_addlstring(&b, (const char *)owner, owner_len);
    return reject_detail(L, "Lease", "OwnerMismatch", &b);
  }
  if (which == 1) {
    if (expiry < run->expiry) {
      lease_prefix(L, &b, which, id);
      luaL_addstring(&b, ": expiry regression previous=");
      add_u64(&b, run->expiry);
      luaL_addstring(&b, " proposed=");
      add_u64(&b, expiry);
      return reject_detail(L, "Lease", "NonMonotonicHeartbeatExpiry", &b);
    }
    run->expiry = expiry;
    run->updated_at = ts;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (expiry != run->expiry) {
    lease_prefix(L, &b, which, id);
    luaL_addstring(&b, ": expiry mismatch expected=");
    add_u64(&b, run->expiry);
    luaL_addstring(&b, " actual=");
    add_u64(&b, expiry);
    return reject_detail(L, "Lease", "ExpiryMismatch", &b);
  }
  run->has_lease = 0;
  free(run->owner);
  run->owner = NULL;
  run->owner_len = 0;
  /* The reference's defect: Leased -> Ready without a history entry or a
   * last_state_change_at update (recovery.md 9.3 #9). */
  if (run->state == s->st_leased) run->state = s->st_ready;
  lua_pushboolean(L, 1);
  return 1;
}

/* Applies a validated WalEvent payload of a handled variant: pushes true, or nil, kind
 * [, detail, text]; returns the count. */
static int apply_payload(lua_State *L, rstate *s, const unsigned char *p, size_t n) {
  rd r;
  uint64_t vi;
  int v;
  unsigned char id[16];
  r.p = p;
  r.end = p + n;
  r.bad = 0;
  rd_varint(&r);  /* sequence: checked by the caller */
  vi = rd_varint(&r);
  if (r.bad || vi >= (uint64_t)s->nvariants || (v = s->variant_of[vi]) < 0)
    return luaL_error(L, "replay: not a payload of a variant handled by the replay state");
  switch (v) {
    case V_TASK_CREATED: return task_created(L, s, &r);
    case V_RUN_CREATED: return run_created(L, s, &r);
    case V_STATE_CHANGED: {
      unsigned prev, to;
      uint64_t ts;
      rd_id(&r, id);
      prev = rd_enum(&r, (unsigned)s->nstates);
      to = rd_enum(&r, (unsigned)s->nstates);
      ts = rd_varint(&r);
      if (r.bad) return luaL_error(L, "replay: malformed RunStateChanged payload");
      return state_changed(L, s, id, prev, to, ts);
    }
    case V_ATTEMPT_STARTED: return attempt_started(L, s, &r);
    case V_ATTEMPT_FINISHED: return attempt_finished(L, s, &r);
    case V_TASK_CANCELED: return task_canceled(L, s, &r);
    case V_RUN_CANCELED: return run_canceled(L, s, &r);
    case V_LEASE_ACQUIRED: case V_LEASE_HEARTBEAT: case V_LEASE_EXPIRED: case V_LEASE_RELEASED:
      return lease_event(L, s, &r, v - V_LEASE_ACQUIRED);
    case V_RUN_SUSPENDED: case V_RUN_RESUMED: {
      uint64_t ts;
      size_t rn;
      rd_id(&r, id);
      if (v == V_RUN_SUSPENDED && rd_opt(&r)) rd_bytes(&r, &rn);  /* the reason is discarded */
      ts = rd_varint(&r);
      if (r.bad) return luaL_error(L, "replay: malformed payload");
      if (v == V_RUN_SUSPENDED) return state_changed(L, s, id, s->st_running, s->st_suspended, ts);
      return state_changed(L, s, id, s->st_suspended, s->st_ready, ts);
    }
    default:
      return luaL_error(L, "replay: unhandled variant");
  }
}

static int l_apply(lua_State *L) {
  rstate *s = check_state(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  return apply_payload(L, s, (const unsigned char *)p, n);
}

/* ---- the replay pass ------------------------------------------------------------------ */

enum { RP_ST = 2, RP_ITER, RP_ISTATE, RP_OPTS, RP_DECODE, RP_SCHEMA, RP_SKIM, RP_OTHER,
       RP_ERROR, RP_TARGET, RP_STATUS, RP_DERR, RP_RERR, RP_BASE = RP_RERR };

static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

static int l_replay(lua_State *L) {
  rstate *s = check_state(L);
  uint64_t latest, last = 0, max = 0, valid = 0, target = 0, records = 0, applied = 0;
  uint64_t doffset = 0;
  int started, has_target, stopped = 0;
  luaL_checktype(L, RP_ST, LUA_TTABLE);
  luaL_checktype(L, RP_OPTS, LUA_TTABLE);
  lua_settop(L, RP_OPTS);
  luaL_checkstack(L, 32, "replay");
  lua_getfield(L, RP_OPTS, "decode");
  lua_getfield(L, RP_OPTS, "schema");
  lua_getfield(L, RP_OPTS, "skim");
  lua_getfield(L, RP_OPTS, "other");
  lua_getfield(L, RP_OPTS, "error");
  lua_getfield(L, RP_OPTS, "target");
  lua_pushnil(L);  /* RP_STATUS */
  lua_pushnil(L);  /* RP_DERR */
  lua_pushnil(L);  /* RP_RERR */
  luaL_checktype(L, RP_DECODE, LUA_TFUNCTION);
  luaL_checktype(L, RP_OTHER, LUA_TFUNCTION);
  luaL_checktype(L, RP_ERROR, LUA_TFUNCTION);
  lua_getfield(L, RP_OPTS, "started");
  started = lua_toboolean(L, -1);
  lua_pop(L, 1);
  has_target = lua_isinteger(L, RP_TARGET);
  if (has_target) target = (uint64_t)lua_tointeger(L, RP_TARGET);
  lua_getfield(L, RP_ST, "latest");
  latest = (uint64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  for (;;) {
    size_t n;
    const unsigned char *p;
    uint64_t offset, seq;
    lua_settop(L, RP_BASE);
    lua_pushvalue(L, RP_ITER);
    lua_pushvalue(L, RP_ISTATE);
    lua_pushnil(L);
    lua_call(L, 2, 3);               /* offset, version, payload | status */
    if (!lua_isinteger(L, -3)) {
      lua_pop(L, 2);
      lua_replace(L, RP_STATUS);
      break;
    }
    offset = (uint64_t)lua_tointeger(L, -3);
    p = (const unsigned char *)luaL_checklstring(L, -1, &n);
    lua_pushvalue(L, RP_DECODE);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, RP_SCHEMA);
    lua_pushvalue(L, RP_SKIM);
    lua_call(L, 3, 3);               /* consumed, sequence, variant | nil, message */
    if (lua_isnil(L, -3)) {
      lua_pushvalue(L, -2);
      lua_replace(L, RP_DERR);
      doffset = offset;
      break;
    }
    seq = (uint64_t)lua_tointeger(L, -2);
    records++;
    last = seq;
    if (max < seq) max = seq;
    valid = offset + AQS_HEADER_SIZE + n;
    if (stopped) continue;
    if (!started) {
      if (!has_target || seq != target) continue;
      started = 1;
    }
    {
      rd r;
      uint64_t vi;
      int k, ok;
      r.p = p;
      r.end = p + n;
      r.bad = 0;
      rd_varint(&r);
      vi = rd_varint(&r);
      if (!r.bad && vi < (uint64_t)s->nvariants && s->variant_of[vi] >= 0) {
        if (!(latest < seq)) {
          lua_pushvalue(L, RP_ERROR);
          lua_pushliteral(L, "InvalidTransition");
          lua_call(L, 1, 1);
          lua_replace(L, RP_RERR);
          stopped = 1;
          continue;
        }
        k = apply_payload(L, s, p, n);
        ok = lua_toboolean(L, -k);
        if (ok) {
          latest = seq;
          applied++;
          continue;
        }
        lua_pushvalue(L, RP_ERROR);
        lua_rotate(L, -(k + 1), 1);  /* error fn below nil, kind [, detail, text] */
        lua_remove(L, -k);           /* drop the nil */
        lua_call(L, k - 1, 1);
        lua_replace(L, RP_RERR);
        stopped = 1;
        continue;
      }
      /* a variant whose rule is in Lua: st.latest is its business meanwhile */
      lua_pushinteger(L, (lua_Integer)latest);
      lua_setfield(L, RP_ST, "latest");
      lua_pushvalue(L, RP_OTHER);
      lua_pushvalue(L, RP_ST);
      lua_pushvalue(L, RP_BASE + 3);  /* payload */
      lua_pushinteger(L, (lua_Integer)seq);
      lua_pushvalue(L, RP_BASE + 6);  /* variant name */
      lua_call(L, 4, 2);
      if (lua_toboolean(L, -2)) {
        applied++;
      } else {
        lua_replace(L, RP_RERR);
        stopped = 1;
      }
      lua_getfield(L, RP_ST, "latest");
      latest = (uint64_t)lua_tointeger(L, -1);
    }
  }
  lua_settop(L, RP_BASE);
  lua_pushinteger(L, (lua_Integer)latest);
  lua_setfield(L, RP_ST, "latest");
  lua_createtable(L, 0, 10);
  set_int(L, "records", records);
  set_int(L, "last_sequence", last);
  set_int(L, "max_sequence", max);
  set_int(L, "valid_bytes", valid);
  set_int(L, "applied", applied);
  set_bool(L, "started", started);
  lua_pushvalue(L, RP_STATUS);
  lua_setfield(L, -2, "status");
  if (!lua_isnil(L, RP_DERR)) {
    lua_pushvalue(L, RP_DERR);
    lua_setfield(L, -2, "decode_error");
    set_int(L, "decode_offset", doffset);
  }
  lua_pushvalue(L, RP_RERR);
  lua_setfield(L, -2, "reducer_error");
  return 1;
}

/* ---- readers ----------------------------------------------------------------------- */

static int l_counts(lua_State *L) {
  rstate *s = check_state(L);
  lua_pushinteger(L, s->ntasks);
  lua_pushinteger(L, s->nruns);
  return 2;
}

typedef struct { const unsigned char *base; size_t stride; } sort_ctx;

static int cmp_index(const void *a, const void *b, void *arg) {
  const sort_ctx *c = (const sort_ctx *)arg;
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return memcmp(c->base + (size_t)x * c->stride, c->base + (size_t)y * c->stride, 16);
}

/* Pushes the ids of n records (stride apart) as a list sorted by their bytes. */
static int push_sorted_ids(lua_State *L, const void *base, size_t stride, uint32_t n) {
  uint32_t *idx = (uint32_t *)malloc((n ? n : 1) * sizeof *idx);
  uint32_t i;
  sort_ctx sc;
  if (!idx) return oom(L);
  for (i = 0; i < n; i++) idx[i] = i;
  sc.base = (const unsigned char *)base;
  sc.stride = stride;
  qsort_r(idx, n, sizeof *idx, cmp_index, &sc);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    push_id(L, (const unsigned char *)base + (size_t)idx[i] * stride);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(idx);
  return 1;
}

static int l_task_ids(lua_State *L) {
  rstate *s = check_state(L);
  return push_sorted_ids(L, s->tasks, sizeof(task_rec), s->ntasks);
}

static int l_run_ids(lua_State *L) {
  rstate *s = check_state(L);
  return push_sorted_ids(L, s->runs, sizeof(run_rec), s->nruns);
}

static int l_task(lua_State *L) {
  rstate *s = check_state(L);
  unsigned char id[16];
  task_rec *t;
  if (arg_id(L, 2, id) < 0 || !(t = find_task(s, id))) return 0;
  lua_pushinteger(L, (lua_Integer)t->created_at);
  if (t->canceled) lua_pushinteger(L, (lua_Integer)t->canceled_at);
  else lua_pushnil(L);
  lua_pushlstring(L, (const char *)t->spec, t->spec_len);
  return 3;
}

static int l_run(lua_State *L) {
  rstate *s = check_state(L);
  unsigned char id[16];
  run_rec *r;
  uint32_t i;
  int names;
  if (arg_id(L, 2, id) < 0 || !(r = find_run(s, id))) return 0;
  lua_getiuservalue(L, 1, 1);
  names = lua_gettop(L);
  lua_createtable(L, 0, 5);
  lua_createtable(L, 0, 9);
  push_id(L, r->id);
  lua_setfield(L, -2, "id");
  push_id(L, r->task_id);
  lua_setfield(L, -2, "task_id");
  push_name(L, names, 1, r->state);
  lua_setfield(L, -2, "state");
  if (r->has_attempt) {
    push_id(L, r->attempt_id);
    lua_setfield(L, -2, "current_attempt_id");
  }
  set_int(L, "attempt_count", r->attempt_count);
  set_int(L, "created_at", r->created_at);
  set_int(L, "scheduled_at", r->scheduled_at);
  lua_pushinteger(L, r->priority);
  lua_setfield(L, -2, "effective_priority");
  set_int(L, "last_state_change_at", r->last_change);
  lua_setfield(L, -2, "instance");
  lua_createtable(L, (int)r->nhist, 0);
  for (i = 0; i < r->nhist; i++) {
    const hist_entry *h = &r->hist[i];
    lua_createtable(L, 0, 3);
    if (h->from != NONE) {
      push_name(L, names, 1, h->from);
      lua_setfield(L, -2, "from");
    }
    push_name(L, names, 1, h->to);
    lua_setfield(L, -2, "to");
    set_int(L, "timestamp", h->ts);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "history");
  lua_createtable(L, (int)r->natt, 0);
  for (i = 0; i < r->natt; i++) {
    const attempt_entry *a = &r->att[i];
    lua_createtable(L, 0, 6);
    push_id(L, a->id);
    lua_setfield(L, -2, "attempt_id");
    set_int(L, "started_at", a->started_at);
    if (a->finished) set_int(L, "finished_at", a->finished_at);
    if (a->result != NONE) {
      push_name(L, names, 2, a->result);
      lua_setfield(L, -2, "result");
    }
    if (a->has_error) {
      lua_pushlstring(L, a->error, a->error_len);
      lua_setfield(L, -2, "error");
    }
    if (a->has_output) {
      lua_pushlstring(L, a->output, a->output_len);
      lua_setfield(L, -2, "output");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "attempts");
  if (r->has_lease) {
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, r->owner, r->owner_len);
    lua_setfield(L, -2, "owner");
    set_int(L, "expiry", r->expiry);
    lua_setfield(L, -2, "lease");
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, r->owner, r->owner_len);
    lua_setfield(L, -2, "owner");
    set_int(L, "expiry", r->expiry);
    set_int(L, "acquired_at", r->acquired_at);
    set_int(L, "updated_at", r->updated_at);
    lua_setfield(L, -2, "lease_meta");
  }
  return 1;
}

static int l_runs_of_task(lua_State *L) {
  rstate *s = check_state(L);
  unsigned char id[16];
  uint32_t i;
  lua_Integer k = 0;
  int ok = arg_id(L, 2, id) == 0;
  lua_newtable(L);
  for (i = 0; ok && i < s->nruns; i++) {
    if (memcmp(s->runs[i].task_id, id, 16) == 0) {
      push_id(L, s->runs[i].id);
      lua_rawseti(L, -2, ++k);
    }
  }
  return 1;
}

static int l_runs_by_state(lua_State *L) {
  rstate *s = check_state(L);
  uint32_t count[NSTATES] = {0}, i;
  int names, k;
  for (i = 0; i < s->nruns; i++) count[s->runs[i].state]++;
  lua_getiuservalue(L, 1, 1);
  names = lua_gettop(L);
  lua_newtable(L);
  for (k = 0; k < s->nstates; k++) {
    if (!count[k]) continue;
    push_name(L, names, 1, (unsigned)k);
    lua_pushinteger(L, count[k]);
    lua_rawset(L, -3);
  }
  return 1;
}

/* ---- hydration seeding -------------------------------------------------------------- */

/* Index of the name at idx in list `which` of the names table, or -1. */
static int name_index(lua_State *L, int names, int which, int idx) {
  int i, n, found = -1;
  if (lua_type(L, idx) != LUA_TSTRING) return -1;
  lua_rawgeti(L, names, which);
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n && found < 0; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_rawequal(L, -1, idx)) found = i - 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return found;
}

static uint64_t field_u64(lua_State *L, int t, const char *k, int *present) {
  uint64_t v = 0;
  int ty = lua_getfield(L, t, k);
  if (present) *present = ty != LUA_TNIL;
  if (ty == LUA_TNUMBER && lua_isinteger(L, -1)) v = (uint64_t)lua_tointeger(L, -1);
  else if (ty != LUA_TNIL || !present) luaL_error(L, "seed_run: integer %s expected", k);
  lua_pop(L, 1);
  return v;
}

static void field_id(lua_State *L, int t, const char *k, unsigned char *out) {
  lua_getfield(L, t, k);
  if (arg_id(L, -1, out) < 0) luaL_error(L, "seed_run: id %s expected", k);
  lua_pop(L, 1);
}

/* The string field k (its type checked already): 1 with a malloc'd copy, 0 when nil,
 * -1 out of memory.  Never raises. */
static int field_str(lua_State *L, int t, const char *k, char **out, size_t *len) {
  const char *p;
  int r = 0;
  if (lua_getfield(L, t, k) == LUA_TSTRING) {
    p = lua_tolstring(L, -1, len);
    r = (*out = dup_bytes(p, *len)) ? 1 : -1;
  }
  lua_pop(L, 1);
  return r;
}

static void free_attempt_strings(attempt_entry *att, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; i++) {
    free(att[i].error);
    free(att[i].output);
    att[i].error = att[i].output = NULL;
  }
}

static int has_lease_arg(lua_State *L) { return lua_istable(L, 7); }

/* 1 when the lease table at 7 lacks a string owner or an integer expiry/acquired_at/
 * updated_at (checked before anything is allocated). */
static int lease_invalid(lua_State *L) {
  static const char *const ints[] = {"expiry", "acquired_at", "updated_at"};
  int i, bad = lua_getfield(L, 7, "owner") != LUA_TSTRING;
  lua_pop(L, 1);
  for (i = 0; i < 3 && !bad; i++) {
    lua_getfield(L, 7, ints[i]);
    bad = !lua_isinteger(L, -1);
    lua_pop(L, 1);
  }
  return bad;
}

/* seed_run(run_id, attempt_count, current_attempt_id?, history, attempts, lease?) */
static int l_seed_run(lua_State *L) {
  rstate *s = check_state(L);
  unsigned char id[16];
  run_rec *r;
  hist_entry *hist = NULL;
  attempt_entry *att = NULL;
  uint32_t nh, na, i;
  int names;
  if (arg_id(L, 2, id) < 0 || !(r = find_run(s, id))) return luaL_argerror(L, 2, "unknown run");
  luaL_checkinteger(L, 3);
  luaL_checktype(L, 5, LUA_TTABLE);
  luaL_checktype(L, 6, LUA_TTABLE);
  lua_settop(L, 7);
  lua_getiuservalue(L, 1, 1);
  names = lua_gettop(L);
  nh = (uint32_t)lua_rawlen(L, 5);
  na = (uint32_t)lua_rawlen(L, 6);
  /* Build everything into new arrays first; a bad value raises (API misuse) before the
   * run is touched.  The arrays are anchored in a userdata so a raise frees them. */
  hist = (hist_entry *)lua_newuserdatauv(L, (nh ? nh : 1) * sizeof *hist, 0);
  for (i = 0; i < nh; i++) {
    int from, to, e;
    lua_rawgeti(L, 5, (lua_Integer)i + 1);
    e = lua_gettop(L);
    luaL_checktype(L, e, LUA_TTABLE);
    lua_getfield(L, e, "from");
    from = lua_isnil(L, -1) ? NONE : name_index(L, names, 1, lua_gettop(L));
    lua_getfield(L, e, "to");
    to = name_index(L, names, 1, lua_gettop(L));
    if (from < 0 || to < 0) return luaL_error(L, "seed_run: history state name expected");
    hist[i].from = (unsigned char)from;
    hist[i].to = (unsigned char)to;
    hist[i].ts = field_u64(L, e, "timestamp", NULL);
    lua_settop(L, e - 1);
  }
  att = (attempt_entry *)lua_newuserdatauv(L, (na ? na : 1) * sizeof *att, 0);
  memset(att, 0, (na ? na : 1) * sizeof *att);
  for (i = 0; i < na; i++) {
    int e, present, res;
    attempt_entry *a = &att[i];
    lua_rawgeti(L, 6, (lua_Integer)i + 1);
    e = lua_gettop(L);
    luaL_checktype(L, e, LUA_TTABLE);
    field_id(L, e, "attempt_id", a->id);
    a->started_at = field_u64(L, e, "started_at", NULL);
    a->finished_at = field_u64(L, e, "finished_at", &present);
    a->finished = (unsigned char)present;
    lua_getfield(L, e, "result");
    res = lua_isnil(L, -1) ? NONE : name_index(L, names, 2, lua_gettop(L));
    if (res < 0) return luaL_error(L, "seed_run: result name expected");
    a->result = (unsigned char)res;
    if (lua_getfield(L, e, "error") > LUA_TNIL && lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "seed_run: string error expected");
    if (lua_getfield(L, e, "output") > LUA_TNIL && lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "seed_run: string output expected");
    lua_settop(L, e - 1);
  }
  /* strings last: nothing can raise after the first copy but out of memory */
  if (has_lease_arg(L) && lease_invalid(L)) return luaL_error(L, "seed_run: lease owner expected");
  for (i = 0; i < na; i++) {
    int he, ho;
    lua_rawgeti(L, 6, (lua_Integer)i + 1);
    he = field_str(L, lua_gettop(L), "error", &att[i].error, &att[i].error_len);
    ho = field_str(L, lua_gettop(L), "output", &att[i].output, &att[i].output_len);
    lua_pop(L, 1);
    if (he < 0 || ho < 0) {
      free_attempt_strings(att, i + 1);
      return oom(L);
    }
    att[i].has_error = (unsigned char)he;
    att[i].has_output = (unsigned char)ho;
  }
  {
    hist_entry *h2;
    attempt_entry *a2;
    char *owner = NULL;
    size_t owner_len = 0;
    uint64_t expiry = 0, acq = 0, upd = 0;
    int has_lease = lua_istable(L, 7);
    if (has_lease) {
      expiry = field_u64(L, 7, "expiry", NULL);
      acq = field_u64(L, 7, "acquired_at", NULL);
      upd = field_u64(L, 7, "updated_at", NULL);
    }
    h2 = (hist_entry *)malloc((nh ? nh : 1) * sizeof *h2);
    a2 = (attempt_entry *)malloc((na ? na : 1) * sizeof *a2);
    if (!h2 || !a2 || (has_lease && field_str(L, 7, "owner", &owner, &owner_len) < 0)) {
      free(h2);
      free(a2);
      free(owner);
      free_attempt_strings(att, na);
      return oom(L);
    }
    memcpy(h2, hist, nh * sizeof *h2);
    memcpy(a2, att, na * sizeof *a2);
    for (i = 0; i < r->natt; i++) { free(r->att[i].error); free(r->att[i].output); }
    free(r->hist);
    free(r->att);
    free(r->owner);
    r->hist = h2;
    r->nhist = r->caphist = nh;
    if (nh == 0) r->caphist = 1;
    r->att = a2;
    r->natt = r->capatt = na;
    if (na == 0) r->capatt = 1;
    r->attempt_count = (uint32_t)lua_tointeger(L, 3);
    r->has_attempt = 0;
    if (!lua_isnil(L, 4)) {
      if (arg_id(L, 4, r->attempt_id) == 0) r->has_attempt = 1;
    }
    r->has_lease = (unsigned char)has_lease;
    r->owner = owner;
    r->owner_len = owner_len;
    r->expiry = expiry;
    r->acquired_at = acq;
    r->updated_at = upd;
  }
  return 0;
}

/* ---- construction ----------------------------------------------------------------------- */

static int l_handled(lua_State *L) {
  int i;
  check_state(L);
  lua_createtable(L, V_COUNT, 0);
  for (i = 0; i < V_COUNT; i++) {
    lua_pushstring(L, VARIANTS[i].name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Index of the string s in the list at idx (0-based), or -1. */
static int list_index(lua_State *L, int idx, const char *s) {
  int i, n = (int)lua_rawlen(L, idx), found = -1;
  for (i = 1; i <= n && found < 0; i++) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), s) == 0) found = i - 1;
    lua_pop(L, 1);
  }
  return found;
}

static unsigned char state_named(lua_State *L, int states, const char *name) {
  int k = list_index(L, states, name);
  if (k < 0) luaL_error(L, "replay_state: no state %s", name);
  return (unsigned char)k;
}

static unsigned char result_named(lua_State *L, int results, const char *name) {
  int k = list_index(L, results, name);
  if (k < 0) luaL_error(L, "replay_state: no attempt result %s", name);
  return (unsigned char)k;
}

static void check_layout(lua_State *L, int layouts, const char *name, const char *want) {
  lua_getfield(L, layouts, name);
  if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), want) != 0)
    luaL_error(L, "replay_state: the schema's %s is {%s}, replay.c reads {%s}", name,
               lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?", want);
  lua_pop(L, 1);
}

/* The type of the field or variant `name` of a record or enum type, or NULL. */
static const jtype *item_type(const jtype *t, const char *name) {
  int i, n;
  if (!t || (t->kind != JK_RECORD && t->kind != JK_ENUM)) return NULL;
  n = t->kind == JK_ENUM ? t->nall : t->nitems;
  for (i = 0; i < n; i++)
    if (strcmp(t->items[i].name, name) == 0) return t->items[i].type;
  return NULL;
}

static int get_list(lua_State *L, const char *k) {
  if (lua_getfield(L, 1, k) != LUA_TTABLE) luaL_error(L, "replay_state: config.%s expected", k);
  return lua_gettop(L);
}

int aqs_replay_state(lua_State *L) {
  rstate *s;
  int states, results, variants, allowed, terminal, layouts, i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  states = get_list(L, "states");
  results = get_list(L, "results");
  variants = get_list(L, "variants");
  allowed = get_list(L, "allowed");
  terminal = get_list(L, "terminal");
  layouts = get_list(L, "layouts");
  s = (rstate *)lua_newuserdatauv(L, sizeof *s, 2);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, STATE_MT);
  {
    const jschema *js;
    const jtype *t;
    lua_getfield(L, 1, "schema");
    js = (const jschema *)luaL_checkudata(L, -1, AQS_SCHEMA_MT);
    t = item_type(item_type(item_type(js->root, "event"), "TaskCreated"), "task_spec");
    if (!t) return luaL_error(L, "replay_state: config.schema has no event.TaskCreated.task_spec");
    s->task_spec = t;
    lua_setiuservalue(L, -2, 2);  /* keeps the compiled schema alive */
  }
  s->nstates = (int)lua_rawlen(L, states);
  s->nresults = (int)lua_rawlen(L, results);
  s->nvariants = (int)lua_rawlen(L, variants);
  if (s->nstates < 1 || s->nstates > NSTATES || s->nresults < 1 || s->nresults > NRESULTS ||
      s->nvariants > 64)
    return luaL_error(L, "replay_state: too many states, results or variants");
  for (i = 0; i < 64; i++) s->variant_of[i] = -1;
  for (i = 0; i < V_COUNT; i++) {
    int k = list_index(L, variants, VARIANTS[i].name);
    if (k < 0) return luaL_error(L, "replay_state: no variant %s", VARIANTS[i].name);
    s->variant_of[k] = i;
    check_layout(L, layouts, VARIANTS[i].name, VARIANTS[i].layout);
  }
  for (i = 0; i < R_COUNT; i++) check_layout(L, layouts, RECORDS[i].name, RECORDS[i].layout);
  n = (int)lua_rawlen(L, allowed);
  for (i = 1; i <= n; i++) {
    int from, to;
    lua_rawgeti(L, allowed, i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    from = lua_type(L, -2) == LUA_TSTRING ? list_index(L, states, lua_tostring(L, -2)) : -1;
    to = lua_type(L, -1) == LUA_TSTRING ? list_index(L, states, lua_tostring(L, -1)) : -1;
    if (from < 0 || to < 0) return luaL_error(L, "replay_state: bad allowed pair %d", i);
    s->allowed[from][to] = 1;
    lua_pop(L, 3);
  }
  n = (int)lua_rawlen(L, terminal);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, terminal, i);
    s->terminal[state_named(L, states, luaL_checkstring(L, -1))] = 1;
    lua_pop(L, 1);
  }
  s->st_scheduled = state_named(L, states, "Scheduled");
  s->st_ready = state_named(L, states, "Ready");
  s->st_leased = state_named(L, states, "Leased");
  s->st_running = state_named(L, states, "Running");
  s->st_suspended = state_named(L, states, "Suspended");
  s->st_canceled = state_named(L, states, "Canceled");
  s->res_success = result_named(L, results, "Success");
  s->res_failure = result_named(L, results, "Failure");
  s->res_timeout = result_named(L, results, "Timeout");
  s->res_suspended = result_named(L, results, "Suspended");
  /* uservalue 1: {states, results} (the names the readers push) */
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, states);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, results);
  lua_rawseti(L, -2, 2);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int state_tostring(lua_State *L) {
  rstate *s = check_state(L);
  lua_pushfstring(L, "ReplayState (%d tasks, %d runs)", (int)s->ntasks, (int)s->nruns);
  return 1;
}

void aqs_replay_init(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"apply", l_apply},
    {"counts", l_counts},
    {"replay", l_replay},
    {"handled", l_handled},
    {"run", l_run},
    {"run_ids", l_run_ids},
    {"runs_by_state", l_runs_by_state},
    {"runs_of_task", l_runs_of_task},
    {"seed_run", l_seed_run},
    {"task", l_task},
    {"task_ids", l_task_ids},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, STATE_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, state_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
