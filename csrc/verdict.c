/*
 * verdict.c - the streamed snapshot verdict (issue 15.2): is a snapshot file good, and if
 * not, the loader's first error, without building a Lua value.
 *
 * The payload is read in chunks and parsed by json_decode.c in skim mode; the CRC is
 * computed on the same pass.  The hooks below see every record the rules need and run
 * the decode-time checks (snapshot-format.md 3.6) and the 27 mapping rules (section 6)
 * while parsing, keeping only what the cross-record rules need: the id sets, the runs'
 * task ids, the references' ids and the current run's history.  The verdict comes in
 * the loader's order: frame, short payload, CRC (a mismatch wins over a decode error
 * found earlier in the stream), decode, then the first mapping violation in the engine's
 * rule order (section 6.1).
 *
 * verdict_plan(schema, sm) -> VerdictPlan
 *   schema: compiled Schema (core.schema) / type table of the snapshot root;
 *   sm = {schema_version = 8, states = {names in wire order}, allowed = {{from, to}...},
 *         lease_states = {names}} (from statemachine.lua: one source of the transitions).
 * snapshot_verdict(path, plan [, opts]) -> result table
 *   every frame_read status but "ok" as frame_read gives it (missing, empty, short_header,
 *   bad_version, too_long, short_payload, crc_mismatch, io_error);
 *   {status = "decode_error", message, line, column};
 *   {status = "mapping_error", kind, path, message};
 *   {status = "ok", tasks, runs, version, length, crc}.
 * snapshot_read(path, plan [, opts]) -> the same, but the snapshot is built (status =
 *   "ok", value) from the streamed payload; the hooks judge the rules while it is built.
 * snapshot_rules(payload, plan [, all]) -> {violation...} | nil, msg, line, col: the rules
 *   on a JSON payload (snapshot.validate of a Lua table, through its encoding), only
 *   the decode-time checks no rule repeats; all = every violation in the engine's order, each with its
 *   document path, else at most the first.  The rules exist only here.
 *   opts = {version = 4, max_length = 268435456}.  "ok" also has `canonical` (the payload
 *   is byte for byte its canonical encoding) and `json_version` (the document's version).
 *   A 4th argument, an AtomicWriter inside begin_frame, receives a copy of the payload,
 *   or with opts.transcode = true its canonical encoding (transcode.c: aqstore rewrite;
 *   the caller finishes or aborts it).  A copy is given up at the first list element
 *   after something non-canonical: {status = "not_canonical"}, nothing judged.
 */
#include "checks.h"
#include "json.h"
#include "io.h"
#include "transcode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_MT "actionqueue.storage.VerdictPlan"
#define VSTATE_MT "actionqueue.storage.VerdictState"

/* Hook ids (jtype.vk / jitem.vk) and the fields each hook reads (jtype.vf). */
enum { VK_NONE, VK_METADATA, VK_TASK, VK_TASKSPEC, VK_CONSTRAINTS, VK_RUNINST, VK_HIST,
       VK_ATTEMPT, VK_RUN, VK_ENGINE, VK_DEP, VK_BUDGET, VK_SUB, VK_REPEAT, VK_ROOT, VK_COUNT };

static const struct { const char *record; const char *fields[8]; } HOOKS[VK_COUNT] = {
  {NULL, {NULL}},
  {"SnapshotMetadata", {"schema_version", "task_count", "run_count", NULL}},
  {"SnapshotTask", {"created_at", "canceled_at", NULL}},
  {"TaskSpecWire", {"id", NULL}},
  {"TaskConstraintsWire", {"max_attempts", "timeout_secs", "concurrency_key", "required_capabilities", NULL}},
  {"RunInstanceWire", {"id", "task_id", "state", "current_attempt_id", "attempt_count",
                       "created_at", "scheduled_at", NULL}},
  {"SnapshotRunStateHistoryEntry", {"from", "to", "timestamp", NULL}},
  {"SnapshotAttemptHistoryEntry", {"attempt_id", "finished_at", NULL}},
  {"SnapshotRun", {"lease", NULL}},
  {"SnapshotEngineControl", {"paused", "paused_at", "resumed_at", NULL}},
  {"SnapshotDependencyDeclaration", {"task_id", NULL}},
  {"SnapshotBudget", {"task_id", "dimension", NULL}},
  {"SnapshotSubscription", {"subscription_id", "task_id", NULL}},
  {"RunPolicyWire::Repeat", {"count", "interval_secs", NULL}},   /* variant Repeat */
  {"Snapshot", {"version", NULL}},
};

#define NSTATES 32

typedef struct {
  int compiled;                 /* the schema's types carry the hook ids */
  uint32_t schema_version;
  int nstates;
  char names[NSTATES][24];      /* RunState variant names (wire order) */
  unsigned char allowed[NSTATES][NSTATES];
  unsigned char lease[NSTATES];
  int st_scheduled, st_ready, st_running, st_canceled;
  const jtype *dimension;       /* BudgetDimension enum (names for the texts) */
} vplan;

/* ---- id sets ------------------------------------------------------------------------ */

typedef struct { unsigned char b[16]; unsigned char x; } vkey;   /* 17 bytes: x = a budget's dimension */

typedef struct {
  vkey *keys;
  uint32_t *slot;               /* 0 = empty, else key index + 1 */
  size_t n, cap, mask;
} idset;

typedef struct { unsigned char b[16]; } vid;

typedef struct { unsigned char *p; size_t len, cap; } vbuf;   /* growable array of bytes */

typedef struct { signed char from, to; uint64_t ts; } vhist;
typedef struct { uint64_t at; unsigned char rid[16], tid[16]; } vpending;
typedef struct { unsigned char id[16]; unsigned char finished; } vattempt;

typedef struct {
  const char *kind;
  uint64_t at;                  /* runs: the run's index (1-based) */
  char path[96];
  char msg[512];
} violation;

typedef struct { violation *p; size_t n, cap; } vlist;

typedef struct {
  lua_State *L;
  const vplan *pl;
  int fd;
  int writer_ref;               /* copy of the payload: AtomicWriter ref (LUA_NOREF = none) */
  int writer_failed;            /* its first failure (the writer repeats it to Lua) */
  int all;                      /* every violation (validate's all mode), not only the first */
  int checks;                   /* the decode-time checks (3.6): 1 all (files), 2 those no
                                   section 6 rule repeats (Lua tables: a value the loader
                                   would refuse must not pass validate and be written) */
  int transcode;                /* the writer receives the canonical encoding (transcode.c),
                                   not a copy */
  uint64_t json_version;        /* the document's own "version" field */
  uint64_t payload_len;         /* bounds the declared counts used as size hints */
  /* header */
  int md_seen;
  uint32_t md_schema;
  uint64_t md_tasks, md_runs;
  /* tasks */
  uint64_t ntasks;
  idset tasks;
  unsigned char cur_task_id[16];
  vlist v_tasks;                /* the tasks' violations (first mode: the first one) */
  /* runs */
  uint64_t nruns;
  idset runs;
  vbuf unresolved;              /* vpending: runs whose task was not known (yet) at their end:
                                   the unknown-task rule decides at the end (tasks may follow) */
  vlist v_runs;                 /* the runs' violations but the unknown-task rule's */
  jcap ri[JCAP_MAX];            /* the current run's run_instance fields */
  int ri_seen;
  vbuf hist, attempts;
  /* engine */
  int paused, has_paused_at, has_resumed_at;
  uint64_t paused_at, resumed_at;
  /* references */
  vbuf dep_tids, dep_off, dep_ids, budgets, subs;
  idset seen;                   /* the duplicate rules of the references (one at a time) */
  vlist out;                    /* the violations in the engine's order (first mode: one) */
} vstate;

static void *xrealloc(vstate *v, void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) luaL_error(v->L, "snapshot_verdict: out of memory");
  return q;
}

static void vbuf_add(vstate *v, vbuf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 1024;
    while (nc < b->len + n) nc *= 2;
    b->p = (unsigned char *)xrealloc(v, b->p, nc);
    b->cap = nc;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static uint64_t mix(const vkey *k) {
  uint64_t a, b;
  memcpy(&a, k->b, 8);
  memcpy(&b, k->b + 8, 8);
  a ^= b * 0x9E3779B97F4A7C15ULL ^ k->x;
  a ^= a >> 31;
  a *= 0xBF58476D1CE4E5B9ULL;
  a ^= a >> 29;
  return a;
}

/* Room for nc keys (exactly: a declared count) and slots for a load of at most 0.8
 * (linear probing on well-mixed UUIDs; the sets are most of the verdict's memory). */
static void idset_resize(vstate *v, idset *s, size_t nc) {
  size_t ns = 2048, i;
  uint32_t *slot;
  if (nc > 0x3FFFFFFF) luaL_error(v->L, "snapshot_verdict: too many ids");
  while (ns < nc + nc / 4) ns *= 2;
  s->keys = (vkey *)xrealloc(v, s->keys, nc * sizeof(vkey));
  slot = (uint32_t *)calloc(ns, sizeof(uint32_t));
  if (!slot) luaL_error(v->L, "snapshot_verdict: out of memory");
  free(s->slot);
  s->slot = slot;
  s->cap = nc;
  s->mask = ns - 1;
  for (i = 0; i < s->n; i++) {
    size_t h = (size_t)mix(&s->keys[i]) & s->mask;
    while (slot[h]) h = (h + 1) & s->mask;
    slot[h] = (uint32_t)i + 1;
  }
}

static void idset_grow(vstate *v, idset *s) {
  idset_resize(v, s, s->cap ? s->cap * 2 : 1024);
}

/* A document's declared count, bounded by what its payload can hold (a hint only). */
static size_t declared(const vstate *v, uint64_t count) {
  uint64_t bound = v->payload_len / 64;
  return (size_t)(count < bound ? count : bound);
}

/* 1 when k is in the set; add = 1 also inserts it. */
static int idset_find(vstate *v, idset *s, const vkey *k, int add) {
  size_t h;
  if (s->cap == 0) {
    if (!add) return 0;
    idset_grow(v, s);
  }
  h = (size_t)mix(k) & s->mask;
  while (s->slot[h]) {
    const vkey *e = &s->keys[s->slot[h] - 1];
    if (e->x == k->x && memcmp(e->b, k->b, 16) == 0) return 1;
    h = (h + 1) & s->mask;
  }
  if (!add) return 0;
  if (s->n == s->cap) {
    idset_grow(v, s);
    return idset_find(v, s, k, 1);
  }
  s->keys[s->n] = *k;
  s->slot[h] = (uint32_t)++s->n;
  return 0;
}

static vkey key_of(const unsigned char id[16], unsigned x) {
  vkey k;
  memcpy(k.b, id, 16);
  k.x = (unsigned char)x;
  return k;
}

static void idset_free(idset *s) {
  free(s->keys);
  free(s->slot);
  memset(s, 0, sizeof *s);
}

static int vstate_gc(lua_State *L) {
  vstate *v = (vstate *)lua_touserdata(L, 1);
  vbuf *bufs[8];
  int i;
  bufs[0] = &v->unresolved; bufs[1] = &v->hist; bufs[2] = &v->attempts; bufs[3] = &v->dep_tids;
  bufs[4] = &v->dep_off; bufs[5] = &v->dep_ids; bufs[6] = &v->budgets; bufs[7] = &v->subs;
  idset_free(&v->tasks);
  idset_free(&v->runs);
  idset_free(&v->seen);
  for (i = 0; i < 8; i++) { free(bufs[i]->p); memset(bufs[i], 0, sizeof(vbuf)); }
  free(v->v_tasks.p); free(v->v_runs.p); free(v->out.p);
  memset(&v->v_tasks, 0, sizeof(vlist));
  memset(&v->v_runs, 0, sizeof(vlist));
  memset(&v->out, 0, sizeof(vlist));
  if (v->fd >= 0) { (void)aqs_close(v->fd); v->fd = -1; }
  if (v->writer_ref != LUA_NOREF && v->writer_ref != 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, v->writer_ref);
    v->writer_ref = LUA_NOREF;
  }
  return 0;
}

/* ---- texts ---------------------------------------------------------------------------- */

static void idtext(const unsigned char id[16], char out[37]) {
  aqs_uuid_format(id, out);
  out[36] = '\0';
}

static int is_nil_id(const unsigned char id[16]) {
  int i;
  for (i = 0; i < 16; i++) if (id[i]) return 0;
  return 1;
}

static const char *state_name(const vplan *pl, uint64_t s) {
  return s < (uint64_t)pl->nstates ? pl->names[s] : "?";
}

static violation *vlist_add(vstate *v, vlist *l) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 8;
    l->p = (violation *)xrealloc(v, l->p, nc * sizeof(violation));
    l->cap = nc;
  }
  return &l->p[l->n++];
}

/* Records a violation (of the run `at`) in l; in first mode only the first one.
 * Returns 1 when the caller stops judging (first mode), 0 when it goes on (all mode). */
static int fail(vstate *v, vlist *l, uint64_t at, const char *kind, const char *path, const char *fmt, ...) {
  va_list ap;
  violation *o;
  if (!v->all && l->n) return 1;
  o = vlist_add(v, l);
  o->kind = kind;
  o->at = at;
  snprintf(o->path, sizeof o->path, "%s", path);
  va_start(ap, fmt);
  vsnprintf(o->msg, sizeof o->msg, fmt, ap);
  va_end(ap);
  return !v->all;
}

/* A violation recorded earlier to the verdict's list; 1 = stop (first mode). */
static int emit(vstate *v, const violation *x) {
  *vlist_add(v, &v->out) = *x;
  return !v->all;
}

static const char *pathf(char *buf, size_t n, const char *fmt, uint64_t a, uint64_t b) {
  snprintf(buf, n, fmt, (unsigned long long)a, (unsigned long long)b);
  return buf;
}

#define F(t, k) ((t)->vf[k])
#define CAP(t, caps, k) (&(caps)[(int)F(t, k)])

/* ---- hooks ---------------------------------------------------------------------------- */

static int known_task(vstate *v, const unsigned char id[16]) {
  vkey key = key_of(id, 0);
  return idset_find(v, &v->tasks, &key, 0);
}

/* SnapshotRun ended: the run rules of section 6.2 in the engine's order (payload checks,
 * detail checks, duplicate run id; the unknown-task rule waits for the end).  First
 * mode stops at the first violation; all mode goes on like the engine's rules would
 * (each history entry judged against the state the previous one reached). */
static void judge_run(vstate *v, const jtype *t, const jcap *caps) {
  const vplan *pl = v->pl;
  vlist *o = &v->v_runs;
  uint64_t i = v->nruns, state, ac, created, scheduled;
  const jcap *ri = v->ri;
  char rid[37], tid[37], path[96];
  int named = 0;
  const vhist *h = (const vhist *)v->hist.p;
  const vattempt *a = (const vattempt *)v->attempts.p;
  size_t nh = v->hist.len / sizeof(vhist), na = v->attempts.len / sizeof(vattempt), k;
  int cur;
  vkey key;
  /* the run_instance's field slots are those of RunInstanceWire (stored by its hook) */
  state = ri[2].u;
  cur = ri[3].present;
  ac = ri[4].u;
  created = ri[5].u;
  scheduled = ri[6].u;
  if (!v->all && o->n) goto dup;   /* an earlier run failed already: only ids are kept */
  /* the texts name the run: its ids are formatted once a rule fails */
#define NAMES() (named ? 0 : (idtext(ri[0].id, rid), idtext(ri[1].id, tid), named = 1, 0))
#define FAIL(kind, ...) fail(v, o, i, kind, __VA_ARGS__)
#define PATH(fmt, b) pathf(path, sizeof path, fmt, i, b)
  if (is_nil_id(ri[0].id)
      && !NAMES() && FAIL("InvalidRunId", PATH("runs[%llu].run_instance.id", 0),
                          "snapshot run has invalid nil run id: %s", rid)) goto done;
  if (is_nil_id(ri[1].id)
      && !NAMES() && FAIL("InvalidTaskId", PATH("runs[%llu].run_instance.task_id", 0),
                          "snapshot run %s has invalid nil task id: %s", rid, tid)) goto done;
  if ((int)state == pl->st_ready && created < scheduled
      && !NAMES() && FAIL("InvalidReadyScheduleCausality", PATH("runs[%llu].run_instance.scheduled_at", 0),
              "snapshot run %s has invalid Ready schedule causality: scheduled_at (%llu) > created_at (%llu)",
              rid, (unsigned long long)scheduled, (unsigned long long)created)) goto done;
  if (cur) {
    if ((int)state != pl->st_running && (int)state != pl->st_canceled
        && !NAMES() && FAIL("InvalidAttemptLineageState", PATH("runs[%llu].run_instance.current_attempt_id", 0),
                "snapshot run %s has active attempt lineage in invalid state %s", rid,
                state_name(pl, state))) goto done;
    if (ac == 0
        && !NAMES() && FAIL("InvalidAttemptLineageCount", PATH("runs[%llu].run_instance.attempt_count", 0),
                "snapshot run %s has active attempt with invalid attempt_count (%d)", rid, 0)) goto done;
  }
  if (nh == 0) {
    NAMES();
    if (FAIL("MissingInitialRunStateHistory", PATH("runs[%llu].state_history", 0),
             "snapshot run %s missing initial Scheduled state history entry", rid)) goto done;
  } else {
    int prev = pl->st_scheduled;
    if (h[0].from >= 0 || h[0].to != pl->st_scheduled || h[0].ts != created) {
      NAMES();
      if (FAIL("MissingInitialRunStateHistory", PATH("runs[%llu].state_history[1]", 0),
               "snapshot run %s missing initial Scheduled state history entry", rid)) goto done;
      prev = h[0].to;   /* (all mode) on from where the faulty first entry says the run went */
    }
    for (k = 1; k < nh; k++) {
      int from = h[k].from, to = h[k].to;
      if (from < 0 || from != prev || !pl->allowed[from][to]) {
        NAMES();
        if (FAIL("InvalidRunStateHistoryTransition", PATH("runs[%llu].state_history[%llu]", k + 1),
                 "snapshot run %s has invalid state history transition %s -> %s", rid,
                 state_name(pl, (uint64_t)(from < 0 ? prev : from)), state_name(pl, (uint64_t)to))) goto done;
      }
      prev = to;
    }
    if ((uint64_t)prev != state) {
      NAMES();
      if (FAIL("InvalidRunStateHistoryTransition", PATH("runs[%llu].run_instance.state", 0),
               "snapshot run %s has invalid state history transition %s -> %s", rid,
               state_name(pl, (uint64_t)prev), state_name(pl, state))) goto done;
    }
  }
  if ((uint64_t)na != ac) {
    NAMES();
    if (FAIL("InvalidAttemptHistoryCount", PATH("runs[%llu].attempts", 0),
             "snapshot run %s has attempt history length %llu inconsistent with attempt_count (%llu)",
             rid, (unsigned long long)na, (unsigned long long)ac)) goto done;
  }
  if (cur) {
    size_t count = 0, at = 0;
    for (k = 0; k < na; k++) {
      if (memcmp(a[k].id, ri[3].id, 16) == 0) { if (!count) at = k; count++; }
    }
    if (count != 1 || a[at].finished) {
      NAMES();
      if (count == 1) PATH("runs[%llu].attempts[%llu].finished_at", at + 1);
      else PATH("runs[%llu].run_instance.current_attempt_id", 0);
      if (FAIL("InvalidActiveAttemptHistory", path,
               "snapshot run %s has invalid active attempt history alignment", rid)) goto done;
    }
  }
  if (CAP(t, caps, 0)->present && !(state < NSTATES && pl->lease[state])) {
    NAMES();
    if (FAIL("InvalidLeasePresence", PATH("runs[%llu].lease", 0),
             "snapshot run %s has lease metadata in invalid state %s", rid, state_name(pl, state))) goto done;
  }
dup:
  key = key_of(ri[0].id, 0);
  if (idset_find(v, &v->runs, &key, 1)) {
    NAMES();
    FAIL("DuplicateRunId", PATH("runs[%llu].run_instance.id", 0), "duplicate snapshot run id: %s", rid);
  }
done:
#undef NAMES
#undef FAIL
#undef PATH
  /* a task known now stays known: only the others wait for the end (none in a canonical
   * document, whose tasks come first); first mode needs them only while no run failed */
  if ((v->all || !o->n) && !known_task(v, ri[1].id)) {
    vpending p;
    p.at = i;
    memcpy(p.rid, ri[0].id, 16);
    memcpy(p.tid, ri[1].id, 16);
    vbuf_add(v, &v->unresolved, &p, sizeof p);
  }
}

static int record_end(void *ud, const jtype *t, const jcap *caps, char *msg, size_t n) {
  vstate *v = (vstate *)ud;
  const vplan *pl = v->pl;
  char path[96], id[37];
  switch (t->vk) {
    case VK_METADATA:
      v->md_seen = 1;
      v->md_schema = (uint32_t)CAP(t, caps, 0)->u;
      v->md_tasks = CAP(t, caps, 1)->u;
      v->md_runs = CAP(t, caps, 2)->u;
      /* the id sets at their final size (a canonical document's counts are right) */
      if (v->tasks.cap == 0 && declared(v, v->md_tasks) > 1024) idset_resize(v, &v->tasks, declared(v, v->md_tasks));
      if (v->runs.cap == 0 && declared(v, v->md_runs) > 1024) idset_resize(v, &v->runs, declared(v, v->md_runs));
      return 0;
    case VK_TASKSPEC: {
      aqs_taskspec_vals c;
      c.nil_id = is_nil_id(CAP(t, caps, 0)->id);
      if (v->checks && aqs_check_taskspec(&c, msg, n)) return -1;
      memcpy(v->cur_task_id, CAP(t, caps, 0)->id, 16);
      return 0;
    }
    case VK_CONSTRAINTS: {
      aqs_constraints_vals c;
      const jcap *caps_list = CAP(t, caps, 3);
      if (!v->checks) return 0;
      c.max_attempts_zero = CAP(t, caps, 0)->u == 0;
      c.has_timeout = CAP(t, caps, 1)->present;
      c.timeout_secs = CAP(t, caps, 1)->u;
      c.has_key = CAP(t, caps, 2)->present;
      c.key_len = CAP(t, caps, 2)->u;
      c.has_caps = caps_list->present;
      c.ncaps = caps_list->u;
      c.empty_cap = caps_list->empty_elem;
      return aqs_check_constraints(&c, msg, n);
    }
    case VK_TASK: {
      const jcap *created = CAP(t, caps, 0), *canceled = CAP(t, caps, 1);
      vkey key = key_of(v->cur_task_id, 0);
      uint64_t i = ++v->ntasks;
      if (idset_find(v, &v->tasks, &key, 1) && (v->all || !v->v_tasks.n)) {
        idtext(v->cur_task_id, id);
        fail(v, &v->v_tasks, i, "DuplicateTaskId", pathf(path, sizeof path, "tasks[%llu].task_spec.id", i, 0),
             "duplicate snapshot task id: %s", id);
      }
      if (canceled->present && canceled->u < created->u && (v->all || !v->v_tasks.n)) {
        idtext(v->cur_task_id, id);
        fail(v, &v->v_tasks, i, "InvalidTaskCanceledAtCausality", pathf(path, sizeof path, "tasks[%llu].canceled_at", i, 0),
             "snapshot task %s has invalid canceled_at causality: canceled_at (%llu) < created_at (%llu)",
             id, (unsigned long long)canceled->u, (unsigned long long)created->u);
      }
      return 0;
    }
    case VK_RUNINST: {
      aqs_runinst_vals c;
      int k;
      const jcap *state = CAP(t, caps, 2);
      for (k = 0; k < 7; k++) v->ri[k] = *CAP(t, caps, k);
      v->ri_seen = 1;
      if (v->checks != 1) return 0;   /* section 6 repeats these with its own texts */
      c.nil_run_id = is_nil_id(CAP(t, caps, 0)->id);
      c.nil_task_id = is_nil_id(CAP(t, caps, 1)->id);
      c.has_attempt = CAP(t, caps, 3)->present;
      c.running = (int)state->u == pl->st_running;
      c.ready = (int)state->u == pl->st_ready;
      c.created_at = CAP(t, caps, 5)->u;
      c.scheduled_at = CAP(t, caps, 6)->u;
      return aqs_check_runinst(&c, msg, n);
    }
    case VK_HIST: {
      vhist e;
      e.from = CAP(t, caps, 0)->present ? (signed char)CAP(t, caps, 0)->u : -1;
      e.to = (signed char)CAP(t, caps, 1)->u;
      e.ts = CAP(t, caps, 2)->u;
      vbuf_add(v, &v->hist, &e, sizeof e);
      return 0;
    }
    case VK_ATTEMPT: {
      vattempt e;
      memcpy(e.id, CAP(t, caps, 0)->id, 16);
      e.finished = CAP(t, caps, 1)->present;
      vbuf_add(v, &v->attempts, &e, sizeof e);
      return 0;
    }
    case VK_RUN:
      v->nruns++;
      judge_run(v, t, caps);
      v->hist.len = v->attempts.len = 0;
      v->ri_seen = 0;
      return 0;
    case VK_ENGINE:
      v->paused = CAP(t, caps, 0)->u != 0;
      v->has_paused_at = CAP(t, caps, 1)->present;
      v->paused_at = CAP(t, caps, 1)->u;
      v->has_resumed_at = CAP(t, caps, 2)->present;
      v->resumed_at = CAP(t, caps, 2)->u;
      return 0;
    case VK_DEP: {
      uint64_t end = v->dep_ids.len / 16;
      vbuf_add(v, &v->dep_tids, CAP(t, caps, 0)->id, 16);
      vbuf_add(v, &v->dep_off, &end, sizeof end);
      return 0;
    }
    case VK_BUDGET: {
      vkey key = key_of(CAP(t, caps, 0)->id, (uint32_t)CAP(t, caps, 1)->u);
      vbuf_add(v, &v->budgets, &key, sizeof key);
      return 0;
    }
    case VK_SUB:
      vbuf_add(v, &v->subs, CAP(t, caps, 0)->id, 16);
      vbuf_add(v, &v->subs, CAP(t, caps, 1)->id, 16);
      return 0;
    case VK_ROOT:
      v->json_version = CAP(t, caps, 0)->u;
      return 0;
    default:
      return 0;
  }
}

static int variant_end(void *ud, const jtype *t, const jitem *it, const jcap *caps, char *msg, size_t n) {
  const jtype *r = it->type;
  (void)t;
  if (it->vk == VK_REPEAT && ((vstate *)ud)->checks) {
    aqs_repeat_vals c;
    c.count = CAP(r, caps, 0)->u;
    c.interval_secs = CAP(r, caps, 1)->u;
    return aqs_check_repeat(&c, msg, n);
  }
  return 0;
}

static void list_id(void *ud, const unsigned char id[16]) {
  vstate *v = (vstate *)ud;
  vbuf_add(v, &v->dep_ids, id, 16);
}

/* Building: the tasks and runs lists at their declared sizes. */
static size_t list_hint(void *ud, const jtype *list) {
  const vstate *v = (const vstate *)ud;
  const jtype *e = list->of;
  if (!v->md_seen || !e || e->kind != JK_RECORD) return 0;
  if (e->vk == VK_TASK) return declared(v, v->md_tasks);
  if (e->vk == VK_RUN) return declared(v, v->md_runs);
  return 0;
}

static const jhooks HOOKS_IMPL = { record_end, variant_end, list_id, list_hint };

/* ---- the end: the rules in the engine's order ------------------------------------------ */

/* `CostCents` -> `cost_cents` */
static void snake(const char *name, char *out, size_t n) {
  size_t k = 0;
  const char *p;
  for (p = name; *p && k + 2 < n; p++) {
    if (p > name && *p >= 'A' && *p <= 'Z' && p[-1] >= 'a' && p[-1] <= 'z') out[k++] = '_';
    out[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
  }
  out[k] = '\0';
}


/* The verdict's violations in the engine's order (section 6.1): header, tasks, runs (each
 * run's own, then its unknown task), engine (6.3), dependency declarations, budgets,
 * subscriptions.  First mode stops at the first one. */
static void finish_rules(vstate *v) {
  const vplan *pl = v->pl;
  char path[96], a[37], b[37];
  uint64_t i, k;
  size_t j;
#define OUT(...) do { if (fail(v, &v->out, 0, __VA_ARGS__)) return; } while (0)
  if (v->md_schema != pl->schema_version)
    OUT("UnsupportedSchemaVersion", "metadata.schema_version",
        "unsupported snapshot schema version: expected %u, found %u",
        (unsigned)pl->schema_version, (unsigned)v->md_schema);
  if (v->md_tasks != v->ntasks)
    OUT("TaskCountMismatch", "metadata.task_count", "snapshot task_count mismatch: declared %llu, actual %llu",
        (unsigned long long)v->md_tasks, (unsigned long long)v->ntasks);
  if (v->md_runs != v->nruns)
    OUT("RunCountMismatch", "metadata.run_count", "snapshot run_count mismatch: declared %llu, actual %llu",
        (unsigned long long)v->md_runs, (unsigned long long)v->nruns);
  for (j = 0; j < v->v_tasks.n; j++) if (emit(v, &v->v_tasks.p[j])) return;
  /* runs: each run's violations, then whether its task is known (first mode: the
   * first unknown task before the first other run violation wins) */
  {
    const vpending *p = (const vpending *)v->unresolved.p;
    size_t np = v->unresolved.len / sizeof(vpending), q = 0;
    j = 0;
    while (j < v->v_runs.n || q < np) {
      if (q == np || (j < v->v_runs.n && v->v_runs.p[j].at <= p[q].at)) {
        if (emit(v, &v->v_runs.p[j++])) return;
        continue;
      }
      if (!known_task(v, p[q].tid)) {
        idtext(p[q].rid, a);
        idtext(p[q].tid, b);
        OUT("RunReferencesUnknownTask", pathf(path, sizeof path, "runs[%llu].run_instance.task_id", p[q].at, 0),
            "snapshot run %s references unknown task %s", a, b);
      }
      q++;
    }
  }
  /* engine (6.3): checks 2, 3 and 4 share one rule and one text: reported once */
  if (v->paused && !v->has_paused_at)
    OUT("InvalidEnginePausedCausality", "engine.paused_at",
        "snapshot engine state invalid: paused=true requires paused_at");
  if ((v->paused && v->has_resumed_at) || (!v->has_paused_at && v->has_resumed_at)
      || (!v->paused && v->has_paused_at && !v->has_resumed_at))
    OUT("InvalidEngineResumedCausality", "engine.resumed_at",
        "snapshot engine state invalid: paused=false with paused_at requires resumed_at");
  if (!v->paused && v->has_paused_at && v->has_resumed_at && v->resumed_at < v->paused_at)
    OUT("InvalidEnginePauseResumeOrdering", "engine.resumed_at",
        "snapshot engine state invalid: resumed_at (%llu) < paused_at (%llu)",
        (unsigned long long)v->resumed_at, (unsigned long long)v->paused_at);
  /* dependency declarations (v->seen: the declared task ids) */
  {
    uint64_t nd = v->dep_tids.len / 16;
    for (i = 0; i < nd; i++) {
      const unsigned char *tid = v->dep_tids.p + i * 16;
      uint64_t end, start = 0;
      vkey key = key_of(tid, 0);
      memcpy(&end, v->dep_off.p + i * 8, 8);
      if (i > 0) memcpy(&start, v->dep_off.p + (i - 1) * 8, 8);
      idtext(tid, a);
      if (idset_find(v, &v->seen, &key, 1))
        OUT("DuplicateDependencyDeclaration", pathf(path, sizeof path, "dependency_declarations[%llu].task_id", i + 1, 0),
            "snapshot contains duplicate dependency declaration for task %s", a);
      if (!known_task(v, tid))
        OUT("DependencyDeclarationUnknownTask", pathf(path, sizeof path, "dependency_declarations[%llu].task_id", i + 1, 0),
            "snapshot dependency declaration for unknown task %s", a);
      for (k = start; k < end; k++) {
        const unsigned char *pid = v->dep_ids.p + k * 16;
        if (!known_task(v, pid)) {
          idtext(pid, b);
          OUT("DependencyReferencesUnknownTask",
              pathf(path, sizeof path, "dependency_declarations[%llu].depends_on[%llu]", i + 1, k - start + 1),
              "snapshot dependency declaration for task %s references unknown prerequisite task %s", a, b);
        }
      }
    }
    idset_free(&v->seen);
  }
  /* budgets (v->seen: task id + dimension) */
  {
    uint64_t nb = v->budgets.len / sizeof(vkey);
    for (i = 0; i < nb; i++) {
      vkey key;
      memcpy(&key, v->budgets.p + i * sizeof(vkey), sizeof key);
      idtext(key.b, a);
      if (idset_find(v, &v->seen, &key, 1)) {
        char dim[64];
        const jtype *de = pl->dimension;
        snake(de && key.x < (uint32_t)de->nitems ? de->items[key.x].name : "?", dim, sizeof dim);
        OUT("DuplicateBudgetAllocation", pathf(path, sizeof path, "budgets[%llu].dimension", i + 1, 0),
            "duplicate budget allocation for task %s dimension %s", a, dim);
      }
      if (!known_task(v, key.b))
        OUT("BudgetReferencesUnknownTask", pathf(path, sizeof path, "budgets[%llu].task_id", i + 1, 0),
            "budget allocation references unknown task %s", a);
    }
    idset_free(&v->seen);
  }
  /* subscriptions (v->seen: the subscription ids) */
  {
    uint64_t ns = v->subs.len / 32;
    for (i = 0; i < ns; i++) {
      const unsigned char *sid = v->subs.p + i * 32, *tid = sid + 16;
      vkey key = key_of(sid, 0);
      idtext(sid, a);
      if (idset_find(v, &v->seen, &key, 1))
        OUT("DuplicateSubscriptionId", pathf(path, sizeof path, "subscriptions[%llu].subscription_id", i + 1, 0),
            "duplicate subscription id %s", a);
      if (!known_task(v, tid)) {
        idtext(tid, b);
        OUT("SubscriptionReferencesUnknownTask", pathf(path, sizeof path, "subscriptions[%llu].task_id", i + 1, 0),
            "subscription %s references unknown task %s", a, b);
      }
    }
    idset_free(&v->seen);
  }
#undef OUT
}

/* ---- the plan ----------------------------------------------------------------------- */

static int plan_state(lua_State *L, vplan *pl, const char *name) {
  int i;
  for (i = 0; i < pl->nstates; i++) if (strcmp(pl->names[i], name) == 0) return i;
  return luaL_error(L, "verdict_plan: unknown run state %s", name);
}

/* Sets the hook ids and field slots on the compiled schema's types. */
static void plan_compile(lua_State *L, vplan *pl, jschema *sc, int sidx) {
  int k, j, f;
  for (k = 1; k < VK_COUNT; k++) {
    jtype *t = NULL;
    for (j = 0; j < sc->ntypes; j++) {
      if (sc->types[j]->kind == JK_RECORD && strcmp(sc->types[j]->name, HOOKS[k].record) == 0) {
        t = sc->types[j];
        break;
      }
    }
    if (!t) luaL_error(L, "verdict_plan: the schema has no record %s", HOOKS[k].record);
    for (f = 0; HOOKS[k].fields[f]; f++) {
      int idx = -1;
      for (j = 0; j < t->nitems && j < JCAP_MAX; j++)
        if (strcmp(t->items[j].name, HOOKS[k].fields[f]) == 0) idx = j;
      if (idx < 0) luaL_error(L, "verdict_plan: record %s has no field %s among its first %d",
                              HOOKS[k].record, HOOKS[k].fields[f], JCAP_MAX);
      t->vf[f] = (signed char)idx;
    }
    if (k == VK_REPEAT) {
      /* the check belongs to the RunPolicyWire variant whose payload this record is */
      int found = 0;
      for (j = 0; j < sc->ntypes; j++) {
        jtype *e = sc->types[j];
        int m;
        if (e->kind != JK_ENUM) continue;
        for (m = 0; m < e->nitems; m++) if (e->items[m].type == t) { e->items[m].vk = VK_REPEAT; found = 1; }
      }
      if (!found) luaL_error(L, "verdict_plan: no variant carries %s", HOOKS[k].record);
    } else {
      t->vk = k;
    }
    if (k == VK_RUNINST) {
      const jtype *st = t->items[(int)t->vf[2]].type;
      if (st->kind != JK_ENUM || st->nitems > NSTATES) luaL_error(L, "verdict_plan: RunInstanceWire.state is not a RunState enum");
      pl->nstates = st->nitems;
      for (j = 0; j < st->nitems; j++) snprintf(pl->names[j], sizeof pl->names[j], "%s", st->items[j].name);
    }
    if (k == VK_BUDGET) {
      pl->dimension = t->items[(int)t->vf[1]].type;
      if (pl->dimension->kind != JK_ENUM || pl->dimension->nitems > 256)
        luaL_error(L, "verdict_plan: SnapshotBudget.dimension is not an enum of at most 256 variants");
    }
  }
  /* the hooks replace the schema's check functions: each must be the native check
   * (checks.c) that its hook calls */
  aqs_schema_push_refs(L, sidx);
  for (j = 0; j < sc->ntypes; j++) {
    jtype *t = sc->types[j];
    int m;
    if (t->kind == JK_RECORD && t->check_ref) {
      int want = t->vk == VK_TASKSPEC ? AQS_CHECK_TASKSPEC : t->vk == VK_CONSTRAINTS ? AQS_CHECK_CONSTRAINTS
               : t->vk == VK_RUNINST ? AQS_CHECK_RUNINST : AQS_CHECK_NONE;
      lua_rawgeti(L, -1, t->check_ref);
      if (want == AQS_CHECK_NONE || aqs_check_native(L, -1) != want)
        luaL_error(L, "verdict_plan: record %s has a check the verdict does not implement", t->name);
      lua_pop(L, 1);
    }
    if (t->kind == JK_ENUM)
      for (m = 0; m < t->nitems; m++) {
        if (!t->items[m].check_ref) continue;
        lua_rawgeti(L, -1, t->items[m].check_ref);
        if (t->items[m].vk != VK_REPEAT || aqs_check_native(L, -1) != AQS_CHECK_REPEAT)
          luaL_error(L, "verdict_plan: variant %s of %s has a check the verdict does not implement",
                     t->items[m].name, t->name);
        lua_pop(L, 1);
      }
  }
  lua_pop(L, 1);
}

/* verdict_plan(schema, sm) -> VerdictPlan */
int aqs_verdict_plan(lua_State *L) {
  vplan *pl;
  jschema *sc;
  int i, n;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  sc = aqs_schema_at(L, 1);
  pl = (vplan *)lua_newuserdatauv(L, sizeof(vplan), 1);   /* 3 */
  memset(pl, 0, sizeof *pl);
  luaL_setmetatable(L, PLAN_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 3, 1);   /* keeps the compiled schema alive */
  lua_getfield(L, 2, "schema_version");
  pl->schema_version = (uint32_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  plan_compile(L, pl, sc, 1);
  pl->st_scheduled = plan_state(L, pl, "Scheduled");
  pl->st_ready = plan_state(L, pl, "Ready");
  pl->st_running = plan_state(L, pl, "Running");
  pl->st_canceled = plan_state(L, pl, "Canceled");
  if (lua_getfield(L, 2, "allowed") != LUA_TTABLE) luaL_error(L, "verdict_plan: sm.allowed expected");
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    int from, to;
    lua_rawgeti(L, -1, i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    from = plan_state(L, pl, luaL_checkstring(L, -2));
    to = plan_state(L, pl, luaL_checkstring(L, -1));
    pl->allowed[from][to] = 1;
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 2, "lease_states") != LUA_TTABLE) luaL_error(L, "verdict_plan: sm.lease_states expected");
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    pl->lease[plan_state(L, pl, luaL_checkstring(L, -1))] = 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  pl->compiled = 1;
  return 1;
}

/* ---- snapshot_verdict ---------------------------------------------------------------- */

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *s) {
  lua_pushstring(L, s);
  lua_setfield(L, -2, k);
}

/* A chunk of the payload to the AtomicWriter (snapshot_verdict's 4th argument): the
 * rewrite of a canonical payload is a copy.  A write failure is kept by the writer and
 * repeated by its next call (the caller asks it), so here it only stops the copy. */
static void copy_chunk(void *ud, const unsigned char *p, size_t n) {
  vstate *v = (vstate *)ud;
  lua_State *L = v->L;
  int r;
  if (v->writer_failed) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, v->writer_ref);
  r = aqs_aw_write_raw(L, -1, (const char *)p, n);
  if (r > 0) { lua_pop(L, r); v->writer_failed = 1; }
  else if (r < 0) v->writer_failed = 1;
  lua_pop(L, 1);
}

/* The verdict on v (stack: path, plan, schema, state); pushes the result table. */
static void verdict(lua_State *L, vstate *v, const char *path, uint32_t expect, uint32_t max, int build) {
  unsigned char h[AQS_HEADER_SIZE];
  uint32_t len = 0;
  int64_t r;
  jstream src;
  struct stat st;
  int ok;
  /* never blocks: a FIFO, device or socket is refused at once (frame.c, docs/safety.md) */
  if (aqs_frame_open(L, path, &v->fd)) return;
  r = aqs_read_full(v->fd, h, AQS_HEADER_SIZE, -1);
  if (r < 0) { aqs_push_io_result(L, errno, 0); return; }
  if (aqs_frame_classify(L, h, (size_t)r, expect, max, &len)) return;
  /* a regular file shows up front whether the payload is there (like frame_read) */
  if (aqs_fstat(v->fd, &st) < 0) { aqs_push_io_result(L, errno, AQS_HEADER_SIZE); return; }
  if (S_ISREG(st.st_mode)) {
    uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    uint64_t avail = size > AQS_HEADER_SIZE ? size - AQS_HEADER_SIZE : 0;
    if (avail < len) { aqs_frame_short_payload(L, len, avail); return; }
  }
  memset(&src, 0, sizeof src);
  v->payload_len = len;
  src.fd = v->fd;
  src.left = len;
  if (v->writer_ref != LUA_NOREF && v->transcode) src.emit = aqs_tx_new(L, 3);
  else if (v->writer_ref != LUA_NOREF) {
    src.copy = copy_chunk;
    src.copy_ud = v;
    src.stop_noncanon = 1;   /* a copy only for a canonical payload */
  }
  /* ok: the value (nothing in skim mode); else msg, line, col.  Building, the hooks see
   * the records too: the rules are judged on the same pass (no walk of the tree). */
  ok = aqs_json_decode_hooked(L, 4, &src, NULL, 0, &HOOKS_IMPL, v, build);
  if (src.gave_up) {   /* not canonical: no copy, and no verdict either */
    lua_createtable(L, 0, 1);
    set_str(L, "status", "not_canonical");
    return;
  }
  if (src.read_errno > 0) { aqs_push_io_result(L, src.read_errno, AQS_HEADER_SIZE); return; }
  if (src.read_errno < 0 || src.got < len) { aqs_frame_short_payload(L, len, src.got); return; }
  if (src.crc != aqs_get_u32le(h + 8)) {
    aqs_frame_crc_mismatch(L, aqs_get_u32le(h + 8), src.crc, len);
    return;
  }
  if (!ok) {
    lua_createtable(L, 0, 4);
    set_str(L, "status", "decode_error");
    lua_pushvalue(L, -4);
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "line");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "column");
    return;
  }
  finish_rules(v);
  if (!v->out.n && src.emit) (void)aqs_tx_finish(src.emit);   /* a failure: the writer repeats it */
  if (v->out.n) {
    if (build) lua_pop(L, 1);   /* the value */
    lua_createtable(L, 0, 4);
    set_str(L, "status", "mapping_error");
    set_str(L, "kind", v->out.p[0].kind);
    set_str(L, "path", v->out.p[0].path);
    set_str(L, "message", v->out.p[0].msg);
    return;
  }
  if (build) {
    lua_createtable(L, 0, 2);
    set_str(L, "status", "ok");
    lua_insert(L, -2);
    lua_setfield(L, -2, "value");
    return;
  }
  lua_createtable(L, 0, 8);
  set_str(L, "status", "ok");
  lua_pushboolean(L, src.canonical);
  lua_setfield(L, -2, "canonical");
  set_int(L, "json_version", (lua_Integer)v->json_version);
  set_int(L, "tasks", (lua_Integer)v->ntasks);
  set_int(L, "runs", (lua_Integer)v->nruns);
  set_int(L, "version", aqs_get_u32le(h));
  set_int(L, "length", len);
  set_int(L, "crc", aqs_get_u32le(h + 8));
}

/* The verdict (build = 0) or the decoded value (build = 1) of a snapshot file. */
static int read_file(lua_State *L, int build) {
  const char *path = luaL_checkstring(L, 1);
  vplan *pl = (vplan *)luaL_checkudata(L, 2, PLAN_MT);
  uint32_t expect = aqs_opt_u32(L, 3, "version", 4);
  uint32_t max = aqs_opt_u32(L, 3, "max_length", AQS_MAX_PAYLOAD);
  vstate *v;
  int writer = !build && aqs_aw_is(L, 4);
  int transcode = writer && lua_istable(L, 3) && lua_getfield(L, 3, "transcode") != LUA_TNIL
                  && lua_toboolean(L, -1);
  lua_settop(L, 4);
  if (writer) lua_pushvalue(L, 4);
  else lua_pushnil(L);
  lua_replace(L, 3);            /* 3: the writer (or nil) */
  lua_settop(L, 3);
  v = (vstate *)lua_newuserdatauv(L, sizeof(vstate), 0);   /* 4 (freed by __gc) */
  memset(v, 0, sizeof *v);
  v->fd = -1;
  v->writer_ref = LUA_NOREF;
  v->transcode = transcode;
  lua_getiuservalue(L, 2, 1);   /* 5: the compiled schema */
  lua_insert(L, 4);             /* 4: schema, 5: state */
  if (writer) {
    lua_pushvalue(L, 3);
    v->writer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  luaL_setmetatable(L, VSTATE_MT);
  v->L = L;
  v->pl = pl;
  v->checks = 1;
  verdict(L, v, path, expect, max, build);
  /* the descriptor and the id sets go now, not at the next collection */
  lua_pushcfunction(L, vstate_gc);
  lua_pushvalue(L, 5);
  lua_call(L, 1, 0);
  return 1;
}

/* snapshot_verdict(path, plan [, opts]) -> result table */
int aqs_snapshot_verdict(lua_State *L) {
  return read_file(L, 0);
}

/* snapshot_read(path, plan [, opts]) -> result table: the frame's failures, decode_error
 * and mapping_error like snapshot_verdict, or {status = "ok", value = <the snapshot>}.
 * The payload is streamed in chunks into the building decoder: no buffer of the whole
 * payload beside the tree; the rules are judged by the hooks on the same pass. */
int aqs_snapshot_read(lua_State *L) {
  return read_file(L, 1);
}

/* snapshot_rules(payload | snapshot, plan [, all]) -> {violation...}
 *   | nil, message, line, column (decode error) | nil, message, "encode" (a table the
 *   encoder refuses: "path: text")
 * The 27 mapping rules on a JSON payload, or on the canonical encoding of a snapshot
 * table built in Lua (snapshot.validate; encoded into a C buffer, never a Lua string),
 * with the decode-time checks that no rule repeats (checks = 2).  Violations are
 * {kind, path, message}, in the engine's order; without `all` at most the first. */
int aqs_snapshot_rules(lua_State *L) {
  size_t n, j;
  const char *s;
  vplan *pl = (vplan *)luaL_checkudata(L, 2, PLAN_MT);
  int all = lua_toboolean(L, 3), ok;
  vstate *v;
  lua_settop(L, 2);
  if (lua_istable(L, 1)) {
    aqs_obuf *b;
    lua_getiuservalue(L, 2, 1);   /* 3: the compiled schema */
    b = aqs_json_encode_owned(L, 1, 3);   /* 4: the buffer's owner */
    if (!b) {
      lua_pushnil(L);
      lua_insert(L, -2);
      lua_pushliteral(L, "encode");
      return 3;
    }
    lua_replace(L, 1);            /* the owner stays at 1 while the rules read it */
    lua_settop(L, 2);
    s = b->p ? b->p : "";
    n = b->len;
  } else {
    s = luaL_checklstring(L, 1, &n);
  }
  v = (vstate *)lua_newuserdatauv(L, sizeof(vstate), 0);   /* 3 (freed by __gc) */
  memset(v, 0, sizeof *v);
  v->fd = -1;
  v->writer_ref = LUA_NOREF;
  luaL_setmetatable(L, VSTATE_MT);
  v->L = L;
  v->pl = pl;
  v->all = all;
  v->checks = 2;
  v->payload_len = n;
  lua_getiuservalue(L, 2, 1);   /* 4: the compiled schema */
  ok = aqs_json_decode_hooked(L, 4, NULL, s, n, &HOOKS_IMPL, v, 0);
  if (!ok) {
    lua_pushnil(L);
    lua_insert(L, -4);
    return 4;
  }
  finish_rules(v);
  lua_createtable(L, (int)v->out.n, 0);
  for (j = 0; j < v->out.n; j++) {
    lua_createtable(L, 0, 3);
    set_str(L, "kind", v->out.p[j].kind);
    set_str(L, "path", v->out.p[j].path);
    set_str(L, "message", v->out.p[j].msg);
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
  /* the id sets go now, not at the next collection */
  lua_pushcfunction(L, vstate_gc);
  lua_pushvalue(L, 3);
  lua_call(L, 1, 0);
  return 1;
}

static int plan_tostring(lua_State *L) {
  vplan *pl = (vplan *)luaL_checkudata(L, 1, PLAN_MT);
  lua_pushfstring(L, "VerdictPlan(%d states)", pl->nstates);
  return 1;
}

void aqs_verdict_init(lua_State *L) {
  luaL_newmetatable(L, PLAN_MT);
  lua_pushcfunction(L, plan_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, VSTATE_MT);
  lua_pushcfunction(L, vstate_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, vstate_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}
