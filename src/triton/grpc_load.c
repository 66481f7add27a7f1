/* mtmi_triton_grpc_load: a load generator for Triton's gRPC ModelInfer in C
 * (issue 19), driven by scripts/triton_perf.py --c-client.
 *
 * Why: measured on the GPU machine, the Python client (grpcio, 16
 * processes) spends 11-13 ms of CPU a 1024x1024 request on the server's
 * own 16 cores, and ~19 ms of each request's ~29 ms latency is outside the
 * server's queue and compute (docs/PERFORMANCE.md, "Triton serving").  This
 * client does what perf_analyzer does, in one process: gRPC's C core,
 * each request's serialized body sent from memory without a copy (a static
 * slice, plus a small slice with the request's id: protobuf merges
 * concatenated messages), and each response read from its wire bytes and
 * compared byte for byte with the frame's reference outputs.
 *
 * Input (written by triton_perf.py): DIR/req_<i>.bin, the serialized
 * ModelInferRequest of frame i without an id; DIR/ref_<i>.bin, its
 * expected outputs as records (name, NUL, 8-byte little-endian length,
 * bytes).  Output: one JSON object (counts, the measured window, every
 * latency, the process's CPU seconds over the window, the first errors) to
 * --json or stdout.  Exit 0 when every response was right, 1 when some
 * were not (they are counted, the run goes on), 2 for bad arguments or
 * files (one line on stderr).
 *
 *   mtmi_triton_grpc_load --url HOST:PORT --dir DIR --concurrency C
 *                         --count N [--warmup W] [--threads T] [--timeout S] [--json F]
 *
 * C requests are in flight at any time, each on a connection of its own
 * (a channel with a local subchannel pool), spread over T threads (each
 * with its own completion queue); frame i of request n of thread t is
 * (7 t + n) mod frames, as in triton_perf.py. */
#define _GNU_SOURCE
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_OUTS 8
#define MAX_FRAMES 4096
#define FIRST_ERRORS 3

typedef struct {
    uint8_t *data;
    size_t len;
} blob;

typedef struct {
    char name[64];
    const uint8_t *data;
    size_t len;
} named_bytes;

typedef struct {
    blob req, ref_file;
    named_bytes refs[MAX_OUTS];
    int nrefs;
} frame;

typedef struct {
    const char *url, *dir, *json;
    int conc, threads;
    long count, warmup;
    double timeout_s;
    frame *frames;
    int nframes;
    pthread_barrier_t warmed, go;
} load;

typedef struct worker worker;
typedef struct {
    worker *w;
    grpc_channel *ch;
    grpc_call *call;
    grpc_byte_buffer *req, *resp;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    int frame, counted;
    double t_start;
    char id[48];
} slot;

struct worker {
    load *L;
    int tid, nslots;
    slot *slots;
    grpc_completion_queue *cq;
    long n; /* requests started by this thread (names and frame choice) */
    long warm, count;
    double *lat;
    long nlat;
    long ok, warm_ok, errors, sent;
    char first[FIRST_ERRORS][300];
    int nfirst;
    double t1;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mtmi_triton_grpc_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

/* ------------------------------------------------------------ wire format */
static int rd_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*i >= n) return -1;
        const uint8_t c = p[(*i)++];
        r |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* skips a field of wire type `wire` at *i; -1 if malformed */
static int skip_field(const uint8_t *p, size_t n, size_t *i, int wire) {
    uint64_t v;
    if (wire == 0) return rd_varint(p, n, i, &v);
    if (wire == 1 || wire == 5) {
        const size_t k = wire == 1 ? 8 : 4;
        if (n - *i < k) return -1;
        *i += k;
        return 0;
    }
    if (wire == 2) {
        if (rd_varint(p, n, i, &v) || v > n - *i) return -1;
        *i += (size_t)v;
        return 0;
    }
    return -1;
}

/* The name (field 1) of an InferOutputTensor message */
static int output_name(const uint8_t *p, size_t n, char *name, size_t cap) {
    size_t i = 0;
    name[0] = 0;
    while (i < n) {
        uint64_t key, len;
        if (rd_varint(p, n, &i, &key)) return -1;
        if ((key >> 3) == 1 && (key & 7) == 2) {
            if (rd_varint(p, n, &i, &len) || len > n - i) return -1;
            const size_t k = len < cap - 1 ? (size_t)len : cap - 1;
            memcpy(name, p + i, k);
            name[k] = 0;
            i += (size_t)len;
        } else if (skip_field(p, n, &i, (int)(key & 7))) {
            return -1;
        }
    }
    return 0;
}

/* A ModelInferResponse (id = 3, outputs = 5, raw_output_contents = 6):
 * its id and each output's name with its raw bytes (the k-th raw content
 * belongs to the k-th output).  0, or -1 and why. */
static int parse_response(const uint8_t *p, size_t n, char *id, size_t idcap, named_bytes *outs, int *nouts,
                          const char **why) {
    size_t i = 0;
    int nnames = 0, nraw = 0;
    id[0] = 0;
    while (i < n) {
        uint64_t key, len;
        if (rd_varint(p, n, &i, &key)) goto bad;
        const int field = (int)(key >> 3), wire = (int)(key & 7);
        if (wire != 2 || (field != 3 && field != 5 && field != 6)) {
            if (skip_field(p, n, &i, wire)) goto bad;
            continue;
        }
        if (rd_varint(p, n, &i, &len) || len > n - i) goto bad;
        if (field == 3) {
            const size_t k = len < idcap - 1 ? (size_t)len : idcap - 1;
            memcpy(id, p + i, k);
            id[k] = 0;
        } else if (field == 5) {
            if (nnames == MAX_OUTS) {
                *why = "more outputs than expected";
                return -1;
            }
            if (output_name(p + i, (size_t)len, outs[nnames].name, sizeof outs[nnames].name)) goto bad;
            nnames++;
        } else {
            if (nraw == MAX_OUTS) {
                *why = "more outputs than expected";
                return -1;
            }
            outs[nraw].data = p + i;
            outs[nraw].len = (size_t)len;
            nraw++;
        }
        i += (size_t)len;
    }
    if (nraw != nnames) {
        *why = "outputs and raw contents differ in number (outputs in shared memory?)";
        return -1;
    }
    *nouts = nnames;
    return 0;
bad:
    *why = "malformed response";
    return -1;
}

/* ------------------------------------------------------------------ files */
static int read_file(const char *path, blob *b) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int rc = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        const long len = ftell(f);
        if (len > 0 && fseek(f, 0, SEEK_SET) == 0) {
            b->data = malloc((size_t)len);
            if (b->data && fread(b->data, 1, (size_t)len, f) == (size_t)len) {
                b->len = (size_t)len;
                rc = 0;
            } else {
                free(b->data);
                b->data = NULL;
            }
        }
    }
    fclose(f);
    return rc;
}

/* ref_<i>.bin: records of name, NUL, u64 little-endian length, bytes */
static int parse_refs(frame *fr) {
    const uint8_t *p = fr->ref_file.data;
    size_t i = 0, n = fr->ref_file.len;
    fr->nrefs = 0;
    while (i < n) {
        const uint8_t *z = memchr(p + i, 0, n - i);
        if (!z || fr->nrefs == MAX_OUTS || (size_t)(z - (p + i)) >= sizeof fr->refs[0].name) return -1;
        named_bytes *r = &fr->refs[fr->nrefs++];
        memcpy(r->name, p + i, (size_t)(z - (p + i)));
        r->name[z - (p + i)] = 0;
        i = (size_t)(z - p) + 1;
        if (n - i < 8) return -1;
        uint64_t len = 0;
        for (int k = 0; k < 8; k++) len |= (uint64_t)p[i + k] << (8 * k);
        i += 8;
        if (len > n - i) return -1;
        r->data = p + i;
        r->len = (size_t)len;
        i += (size_t)len;
    }
    return fr->nrefs ? 0 : -1;
}

static int load_frames(load *L) {
    L->frames = calloc(MAX_FRAMES, sizeof(frame));
    if (!L->frames) return die("out of memory");
    char path[4096];
    for (L->nframes = 0; L->nframes < MAX_FRAMES; L->nframes++) {
        frame *fr = &L->frames[L->nframes];
        snprintf(path, sizeof path, "%s/req_%d.bin", L->dir, L->nframes);
        if (read_file(path, &fr->req)) break;
        snprintf(path, sizeof path, "%s/ref_%d.bin", L->dir, L->nframes);
        if (read_file(path, &fr->ref_file)) return die("%s: cannot read (%s)", path, strerror(errno));
        if (parse_refs(fr)) return die("%s: not a list of (name, NUL, u64 length, bytes) records", path);
    }
    if (L->nframes == 0) return die("%s/req_0.bin: cannot read (%s)", L->dir, strerror(errno));
    return 0;
}

/* ---------------------------------------------------------------- requests */
static void note_error(worker *w, const slot *s, const char *fmt, ...) {
    w->errors++;
    if (w->nfirst >= FIRST_ERRORS) return;
    char msg[220];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(w->first[w->nfirst++], sizeof w->first[0], "request %s (frame %d): %s", s->id, s->frame, msg);
}

/* the request's body from memory (no copy) and its id (field 3) */
static grpc_byte_buffer *request_buffer(const frame *fr, const char *id) {
    uint8_t tail[64];
    const size_t idlen = strlen(id); /* < 48: one-byte length */
    tail[0] = 0x1a;
    tail[1] = (uint8_t)idlen;
    memcpy(tail + 2, id, idlen);
    grpc_slice sl[2];
    sl[0] = grpc_slice_from_static_buffer(fr->req.data, fr->req.len);
    sl[1] = grpc_slice_from_copied_buffer((const char *)tail, idlen + 2);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(sl, 2);
    grpc_slice_unref(sl[1]);
    return bb;
}

static int start_call(worker *w, slot *s, int counted) {
    load *L = w->L;
    const long n = w->n++;
    s->frame = (int)((w->tid * 7 + n) % L->nframes);
    s->counted = counted;
    snprintf(s->id, sizeof s->id, "c%d-%d-%ld", L->conc, w->tid, n);
    s->req = request_buffer(&L->frames[s->frame], s->id);
    s->resp = NULL;
    grpc_metadata_array_init(&s->md_initial);
    grpc_metadata_array_init(&s->md_trailing);
    s->details = grpc_empty_slice();
    const gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis((int64_t)(L->timeout_s * 1000), GPR_TIMESPAN));
    s->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                       grpc_slice_from_static_string("/inference.GRPCInferenceService/ModelInfer"), NULL,
                                       deadline, NULL);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trailing;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    w->sent++;
    s->t_start = now_s();
    const grpc_call_error e = s->call ? grpc_call_start_batch(s->call, ops, 6, s, NULL) : GRPC_CALL_ERROR;
    if (e != GRPC_CALL_OK) {
        note_error(w, s, "the call could not start (grpc_call_error %d)", (int)e);
        if (s->call) grpc_call_unref(s->call);
        grpc_byte_buffer_destroy(s->req);
        grpc_metadata_array_destroy(&s->md_initial);
        grpc_metadata_array_destroy(&s->md_trailing);
        return -1;
    }
    return 0;
}

/* why the response is not the frame's reference, or NULL */
static const char *check_response(const slot *s, const uint8_t *p, size_t n, const frame *fr, char *buf, size_t cap) {
    char id[64];
    named_bytes outs[MAX_OUTS];
    int nouts = 0;
    const char *why = NULL;
    if (parse_response(p, n, id, sizeof id, outs, &nouts, &why)) return why;
    if (strcmp(id, s->id)) {
        snprintf(buf, cap, "answered as '%s'", id);
        return buf;
    }
    for (int r = 0; r < fr->nrefs; r++) {
        const named_bytes *want = &fr->refs[r];
        int k = 0;
        while (k < nouts && strcmp(outs[k].name, want->name)) k++;
        if (k == nouts) {
            snprintf(buf, cap, "no '%s' in the response", want->name);
            return buf;
        }
        if (outs[k].len != want->len || memcmp(outs[k].data, want->data, want->len)) {
            snprintf(buf, cap, "'%s' differs from the frame's reference (%zu bytes, expected %zu)", want->name, outs[k].len,
                     want->len);
            return buf;
        }
    }
    return NULL;
}

static void finish_call(worker *w, slot *s, int success) {
    const double dt = now_s() - s->t_start;
    const frame *fr = &w->L->frames[s->frame];
    const char *why = NULL;
    char buf[200];
    if (!success) {
        why = "the call failed (connection?)";
    } else if (s->status != GRPC_STATUS_OK) {
        char *d = grpc_slice_to_c_string(s->details);
        snprintf(buf, sizeof buf, "status %d: %s", (int)s->status, d ? d : "");
        gpr_free(d);
        why = buf;
    } else if (!s->resp) {
        why = "no response message";
    } else {
        grpc_byte_buffer_reader rd;
        if (!grpc_byte_buffer_reader_init(&rd, s->resp)) {
            why = "unreadable response";
        } else {
            grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
            why = check_response(s, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), fr, buf, sizeof buf);
            grpc_slice_unref(all);
        }
    }
    if (why) {
        note_error(w, s, "%s", why);
    } else if (s->counted) {
        w->ok++;
        w->lat[w->nlat++] = dt;
    } else {
        w->warm_ok++;
    }
    if (s->resp) grpc_byte_buffer_destroy(s->resp);
    grpc_byte_buffer_destroy(s->req);
    grpc_metadata_array_destroy(&s->md_initial);
    grpc_metadata_array_destroy(&s->md_trailing);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
    s->call = NULL;
}

/* n requests, up to nslots in flight */
static void run_phase(worker *w, long n, int counted) {
    long issued = 0, done = 0;
    for (int k = 0; k < w->nslots && issued < n; k++, issued++)
        if (start_call(w, &w->slots[k], counted)) done++;
    while (done < n) {
        if (done == issued) { /* every start failed: start the next ones */
            for (int k = 0; k < w->nslots && issued < n; k++, issued++)
                if (start_call(w, &w->slots[k], counted)) done++;
            continue;
        }
        const grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE) continue; /* GRPC_QUEUE_TIMEOUT cannot happen with an infinite deadline */
        slot *s = ev.tag;
        finish_call(w, s, ev.success);
        done++;
        while (issued < n) {
            issued++;
            if (!start_call(w, s, counted)) break;
            done++;
        }
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    run_phase(w, w->warm, 0);
    pthread_barrier_wait(&w->L->warmed);
    pthread_barrier_wait(&w->L->go);
    run_phase(w, w->count, 1);
    w->t1 = now_s();
    return NULL;
}

/* ------------------------------------------------------------------ main */
static grpc_channel *connect_one(const char *url) {
    grpc_arg args[3];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[0].value.integer = -1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = -1;
    /* a connection of its own: channels of one process share one by default */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[2].value.integer = 1;
    grpc_channel_args ca = {3, args};
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(url, cr, &ca);
    grpc_channel_credentials_release(cr);
    return ch;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int write_json(const load *L, worker *ws, double t0, double t1, double cpu) {
    FILE *f = L->json ? fopen(L->json, "w") : stdout;
    if (!f) return die("%s: cannot write (%s)", L->json, strerror(errno));
    long ok = 0, warm_ok = 0, errors = 0, sent = 0;
    for (int t = 0; t < L->threads; t++) {
        ok += ws[t].ok;
        warm_ok += ws[t].warm_ok;
        errors += ws[t].errors;
        sent += ws[t].sent;
    }
    fprintf(f, "{\"client\": \"mtmi_triton_grpc_load\", \"concurrency\": %d, \"threads\": %d, \"frames\": %d, ", L->conc,
            L->threads, L->nframes);
    fprintf(f, "\"sent\": %ld, \"ok\": %ld, \"warm_ok\": %ld, \"errors\": %ld, \"t0\": %.6f, \"t1\": %.6f, \"cpu_s\": %.6f, ", sent,
            ok, warm_ok, errors, t0, t1, cpu);
    fputs("\"lat\": [", f);
    int first = 1;
    for (int t = 0; t < L->threads; t++)
        for (long k = 0; k < ws[t].nlat; k++, first = 0) fprintf(f, "%s%.6f", first ? "" : ", ", ws[t].lat[k]);
    fputs("], \"first_errors\": [", f);
    first = 1;
    for (int t = 0; t < L->threads; t++)
        for (int k = 0; k < ws[t].nfirst; k++, first = 0) {
            if (!first) fputs(", ", f);
            json_string(f, ws[t].first[k]);
        }
    fputs("]}\n", f);
    const int bad = ferror(f);
    if (L->json ? fclose(f) != 0 || bad : fflush(f) != 0 || bad) return die("%s: write failed", L->json ? L->json : "stdout");
    return 0;
}

static int parse_args(load *L, int argc, char **argv) {
    memset(L, 0, sizeof *L);
    L->conc = 1;
    L->count = 100;
    L->warmup = 16;
    L->timeout_s = 120;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return die("%s: needs a value (see the top of src/triton/grpc_load.c)", k);
        char *end = NULL;
        i++;
        if (!strcmp(k, "--url")) L->url = v;
        else if (!strcmp(k, "--dir")) L->dir = v;
        else if (!strcmp(k, "--json")) L->json = v;
        else if (!strcmp(k, "--concurrency")) L->conc = (int)strtol(v, &end, 10);
        else if (!strcmp(k, "--threads")) L->threads = (int)strtol(v, &end, 10);
        else if (!strcmp(k, "--count")) L->count = strtol(v, &end, 10);
        else if (!strcmp(k, "--warmup")) L->warmup = strtol(v, &end, 10);
        else if (!strcmp(k, "--timeout")) L->timeout_s = strtod(v, &end);
        else return die("unknown option '%s'", k);
        if (end && *end) return die("%s: not a number: '%s'", k, v);
    }
    if (!L->url || !L->dir) return die("--url HOST:PORT and --dir DIR are required");
    if (L->conc < 1 || L->conc > 1024 || L->count < 1 || L->warmup < 0 || !(L->timeout_s > 0))
        return die("--concurrency 1-1024, --count >= 1, --warmup >= 0, --timeout > 0");
    if (L->threads <= 0) L->threads = L->conc < 4 ? L->conc : 4;
    if (L->threads > L->conc) L->threads = L->conc;
    return 0;
}

int main(int argc, char **argv) {
    load L;
    if (parse_args(&L, argc, argv) || load_frames(&L)) return 2;
    grpc_init();
    worker *ws = calloc((size_t)L.threads, sizeof(worker));
    if (!ws) return die("out of memory");
    for (int t = 0; t < L.threads; t++) {
        worker *w = &ws[t];
        w->L = &L;
        w->tid = t;
        /* slots and requests split as evenly as they go */
        w->nslots = L.conc / L.threads + (t < L.conc % L.threads);
        w->count = L.count / L.threads + (t < L.count % L.threads);
        w->warm = L.warmup / L.threads + (t < L.warmup % L.threads);
        if (w->warm < w->nslots) w->warm = w->nslots; /* every connection made before the window */
        w->lat = calloc((size_t)w->count + 1, sizeof(double));
        w->slots = calloc((size_t)w->nslots, sizeof(slot));
        w->cq = grpc_completion_queue_create_for_next(NULL);
        if (!w->lat || !w->slots || !w->cq) return die("out of memory");
        for (int k = 0; k < w->nslots; k++) {
            w->slots[k].w = w;
            w->slots[k].ch = connect_one(L.url);
            if (!w->slots[k].ch) return die("cannot make a channel to %s", L.url);
        }
    }
    pthread_barrier_init(&L.warmed, NULL, (unsigned)L.threads + 1);
    pthread_barrier_init(&L.go, NULL, (unsigned)L.threads + 1);
    pthread_t *th = calloc((size_t)L.threads, sizeof(pthread_t));
    if (!th) return die("out of memory");
    for (int t = 0; t < L.threads; t++)
        if (pthread_create(&th[t], NULL, worker_main, &ws[t])) return die("cannot start thread %d", t);
    pthread_barrier_wait(&L.warmed);
    const double cpu0 = cpu_seconds(), t0 = now_s();
    pthread_barrier_wait(&L.go);
    double t1 = t0;
    for (int t = 0; t < L.threads; t++) {
        pthread_join(th[t], NULL);
        if (ws[t].t1 > t1) t1 = ws[t].t1;
    }
    const double cpu = cpu_seconds() - cpu0;
    int rc = write_json(&L, ws, t0, t1, cpu);
    long errors = 0;
    for (int t = 0; t < L.threads; t++) {
        errors += ws[t].errors;
        for (int k = 0; k < ws[t].nslots; k++) grpc_channel_destroy(ws[t].slots[k].ch);
        grpc_completion_queue_shutdown(ws[t].cq);
        while (grpc_completion_queue_next(ws[t].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(ws[t].cq);
        free(ws[t].lat);
        free(ws[t].slots);
    }
    grpc_shutdown();
    for (int i = 0; i < L.nframes; i++) {
        free(L.frames[i].req.data);
        free(L.frames[i].ref_file.data);
    }
    free(L.frames);
    free(ws);
    free(th);
    return rc ? rc : errors ? 1 : 0;
}
