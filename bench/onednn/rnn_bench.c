/*
 * oneDNN's own RNN primitives on recur's benchmark workloads: the machine's near-limit that
 * bench/compare holds recur against. f32, OpenMP threads (set with --threads or OMP_NUM_THREADS).
 *
 * Build (bench/compare does this):  gcc -O2 -std=c11 -fopenmp -o rnn_bench rnn_bench.c -ldnnl
 * Usage: rnn_bench [--threads N] [--repeats N] [--warmup N] [--only NAME]
 * Prints one JSON line per workload and mode, plus one for dnnl_sgemm at M=1600, N=1024, K=256.
 *
 * Each layer is its own primitive, chained like PyTorch's stacked RNN: layer k+1 reads layer k's
 * output (width D*H for bidirectional concat). oneDNN's multi-layer primitive needs equal input and
 * output widths, which a 2-layer bidirectional stack with I=H does not have.
 *
 * fwd      = forward_inference (weights in oneDNN's preferred, possibly packed, layout).
 * fwd_bwd  = forward_training then backward (diff of src_layer, both weights and bias), with the
 *            weight gradients zeroed every repeat, because oneDNN accumulates into them.
 */
#define _POSIX_C_SOURCE 199309L
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                   \
    do {                                                                              \
        dnnl_status_t s_ = (call);                                                    \
        if (s_ != dnnl_success) {                                                     \
            fprintf(stderr, "rnn_bench: %s failed at %s:%d: status %d (%s)\n", #call, \
                    __FILE__, __LINE__, (int)s_, dnnl_status2str(s_));                \
            exit(2);                                                                  \
        }                                                                             \
    } while (0)

static const char *dnnl_status2str(dnnl_status_t s) {
    switch (s) {
        case dnnl_success: return "success";
        case dnnl_out_of_memory: return "out of memory";
        case dnnl_invalid_arguments: return "invalid arguments";
        case dnnl_unimplemented: return "unimplemented";
        case dnnl_iterator_ends: return "iterator ends";
        case dnnl_runtime_error: return "runtime error";
        case dnnl_not_required: return "not required";
        default: return "unknown";
    }
}

typedef enum { CELL_LSTM, CELL_GRU_LBR, CELL_RNN_TANH } cell_t;

typedef struct {
    const char *name;
    cell_t cell;
    int T, B, I, H, L, bidir;
    int fwd_bwd; /* also measure fwd_bwd */
} workload_t;

/* Names shared with bench/pytorch_bench.py and bench/compare, which join rows on them. */
static const workload_t WORKLOADS[] = {
    {"lstm_T50_B32_H256", CELL_LSTM, 50, 32, 256, 256, 1, 0, 1},
    {"gru_T50_B32_H256", CELL_GRU_LBR, 50, 32, 256, 256, 1, 0, 1},
    {"rnn_tanh_T50_B32_H256", CELL_RNN_TANH, 50, 32, 256, 256, 1, 0, 1},
    {"lstm_T100_B64_H512_L2_bi", CELL_LSTM, 100, 64, 512, 512, 2, 1, 1},
    {"lstm_T20_B1_H128", CELL_LSTM, 20, 1, 128, 128, 1, 0, 0},
};

static int gates(cell_t c) { return c == CELL_LSTM ? 4 : c == CELL_GRU_LBR ? 3 : 1; }
/* Linear-before-reset GRU keeps b_hn apart from b_in: one extra bias block. */
static int bias_gates(cell_t c) { return c == CELL_GRU_LBR ? 4 : gates(c); }

/* GEMM flops of one forward pass: input projection (T*B x G*H x in) plus recurrent projection
 * (B x G*H x H per step), per direction and layer. The same rule recur bench and compare use. */
static double forward_flops(const workload_t *w) {
    int D = w->bidir ? 2 : 1, G = gates(w->cell);
    double f = 0;
    for (int l = 0; l < w->L; l++) {
        double in = l == 0 ? w->I : (double)D * w->H;
        f += D * (2.0 * w->T * w->B * G * w->H * in + 2.0 * w->T * w->B * G * w->H * w->H);
    }
    return f;
}

/* ------------------------------------------------------------------ bookkeeping */

static dnnl_engine_t engine;
static dnnl_stream_t stream;

#define MAX_OWNED 512
static dnnl_memory_t owned_mem[MAX_OWNED];
static int n_owned_mem;
static dnnl_primitive_t owned_prim[MAX_OWNED];
static int n_owned_prim;

static dnnl_memory_t track_mem(dnnl_memory_t m) {
    if (n_owned_mem == MAX_OWNED) { fprintf(stderr, "rnn_bench: too many memories\n"); exit(2); }
    return owned_mem[n_owned_mem++] = m;
}
static dnnl_primitive_t track_prim(dnnl_primitive_t p) {
    if (n_owned_prim == MAX_OWNED) { fprintf(stderr, "rnn_bench: too many primitives\n"); exit(2); }
    return owned_prim[n_owned_prim++] = p;
}
static void release_all(void) {
    for (int i = 0; i < n_owned_prim; i++) dnnl_primitive_destroy(owned_prim[i]);
    for (int i = 0; i < n_owned_mem; i++) dnnl_memory_destroy(owned_mem[i]);
    n_owned_prim = n_owned_mem = 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float uniform(float a) { /* xorshift64*, uniform in [-a, a) */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 0x2545F4914F6CDD1Dull;
    return (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0) * a;
}

static void *handle(dnnl_memory_t m) {
    void *p;
    CHECK(dnnl_memory_get_data_handle(m, &p));
    return p;
}
static size_t mem_size(dnnl_memory_t m) {
    const dnnl_memory_desc_t *md;
    CHECK(dnnl_memory_get_memory_desc(m, &md));
    return dnnl_memory_desc_get_size(md);
}
static void fill(dnnl_memory_t m, float a) {
    float *p = handle(m);
    size_t n = mem_size(m) / sizeof(float);
    for (size_t i = 0; i < n; i++) p[i] = a == 0 ? 0.f : uniform(a);
}

static dnnl_memory_desc_t md_tag(int nd, const dnnl_dim_t *dims, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t md;
    CHECK(dnnl_memory_desc_init_by_tag(&md, nd, dims, dnnl_f32, tag));
    return md;
}

/* A plain (user-layout) memory, filled with uniform values in [-a, a] (zeros for a = 0). */
static dnnl_memory_t plain(int nd, const dnnl_dim_t *dims, dnnl_format_tag_t tag, float a) {
    dnnl_memory_desc_t md = md_tag(nd, dims, tag);
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, &md, engine, DNNL_MEMORY_ALLOCATE));
    track_mem(m);
    fill(m, a);
    return m;
}

static const dnnl_memory_desc_t *arg_md(const_dnnl_primitive_desc_t pd, int arg) {
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

/* Memory in the layout the primitive chose for `arg`, zero-filled. */
static dnnl_memory_t for_arg(const_dnnl_primitive_desc_t pd, int arg) {
    const dnnl_memory_desc_t *md = arg_md(pd, arg);
    if (md == NULL || md->ndims == 0) return NULL;
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE));
    track_mem(m);
    if (md->format_kind == dnnl_blocked) memset(handle(m), 0, mem_size(m));
    return m;
}

/* user memory reordered into the layout the primitive chose for `arg` (e.g. packed weights). */
static dnnl_memory_t reordered(const_dnnl_primitive_desc_t pd, int arg, dnnl_memory_t user) {
    const dnnl_memory_desc_t *dst_md = arg_md(pd, arg);
    const dnnl_memory_desc_t *src_md;
    CHECK(dnnl_memory_get_memory_desc(user, &src_md));
    if (dnnl_memory_desc_equal(src_md, dst_md)) return user;
    dnnl_memory_t out;
    CHECK(dnnl_memory_create(&out, dst_md, engine, DNNL_MEMORY_ALLOCATE));
    track_mem(out);
    dnnl_primitive_desc_t rpd;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, src_md, engine, dst_md, engine, NULL));
    dnnl_primitive_t r;
    CHECK(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, out}};
    CHECK(dnnl_primitive_execute(r, stream, 2, args));
    CHECK(dnnl_stream_wait(stream));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    return out;
}

/* ------------------------------------------------------------------ plans */

#define MAX_STEPS 16
#define MAX_ARGS 24
#define MAX_ZERO 32

/* The primitives one repeat executes, in order, and the gradient buffers zeroed before them. */
typedef struct {
    int n_steps;
    dnnl_primitive_t prim[MAX_STEPS];
    int n_args[MAX_STEPS];
    dnnl_exec_arg_t args[MAX_STEPS][MAX_ARGS];
    int n_zero;
    dnnl_memory_t zero[MAX_ZERO];
} plan_t;

static void add_arg(plan_t *p, int step, int arg, dnnl_memory_t m) {
    if (m == NULL) return;
    if (p->n_args[step] == MAX_ARGS) { fprintf(stderr, "rnn_bench: too many args\n"); exit(2); }
    p->args[step][p->n_args[step]++] = (dnnl_exec_arg_t){arg, m};
}
static int add_step(plan_t *p, dnnl_primitive_t prim) {
    if (p->n_steps == MAX_STEPS) { fprintf(stderr, "rnn_bench: too many steps\n"); exit(2); }
    p->prim[p->n_steps] = prim;
    p->n_args[p->n_steps] = 0;
    return p->n_steps++;
}
static void add_zero(plan_t *p, dnnl_memory_t m) {
    if (m == NULL) return;
    if (p->n_zero == MAX_ZERO) { fprintf(stderr, "rnn_bench: too many gradients\n"); exit(2); }
    p->zero[p->n_zero++] = m;
}

/* The memory descriptors of one layer; weights are `any` so oneDNN picks its fastest layout. */
typedef struct {
    dnnl_memory_desc_t src, dst, iter, wl, wi, bias;
    dnnl_memory_t user_wl, user_wi, user_bias;
} layer_mds_t;

static layer_mds_t layer_mds(const workload_t *w, int layer) {
    int D = w->bidir ? 2 : 1, G = gates(w->cell);
    dnnl_dim_t in = layer == 0 ? w->I : (dnnl_dim_t)D * w->H;
    layer_mds_t m;
    dnnl_dim_t src[3] = {w->T, w->B, in}, dst[3] = {w->T, w->B, (dnnl_dim_t)D * w->H};
    dnnl_dim_t iter[4] = {1, D, w->B, w->H};
    dnnl_dim_t wl[5] = {1, D, in, G, w->H}, wi[5] = {1, D, w->H, G, w->H};
    dnnl_dim_t bias[4] = {1, D, bias_gates(w->cell), w->H};
    m.src = md_tag(3, src, dnnl_tnc);
    m.dst = md_tag(3, dst, dnnl_tnc);
    m.iter = md_tag(4, iter, dnnl_ldnc);
    m.wl = md_tag(5, wl, dnnl_format_tag_any);
    m.wi = md_tag(5, wi, dnnl_format_tag_any);
    m.bias = md_tag(4, bias, dnnl_ldgo);
    float a = 1.0f / (float)w->H; /* PyTorch's init range is 1/sqrt(H); smaller keeps gates unsaturated */
    m.user_wl = plain(5, wl, dnnl_ldigo, a);
    m.user_wi = plain(5, wi, dnnl_ldigo, a);
    m.user_bias = plain(4, bias, dnnl_ldgo, a);
    return m;
}

static dnnl_rnn_direction_t direction(const workload_t *w) {
    return w->bidir ? dnnl_bidirectional_concat : dnnl_unidirectional_left2right;
}

static void forward_desc(const workload_t *w, const layer_mds_t *m, dnnl_prop_kind_t prop,
                         dnnl_rnn_desc_t *d) {
    dnnl_rnn_direction_t dir = direction(w);
    switch (w->cell) {
        case CELL_LSTM:
            CHECK(dnnl_lstm_forward_desc_init(d, prop, dir, &m->src, NULL, NULL, &m->wl, &m->wi,
                                              &m->bias, &m->dst, &m->iter, &m->iter, 0));
            break;
        case CELL_GRU_LBR:
            CHECK(dnnl_lbr_gru_forward_desc_init(d, prop, dir, &m->src, NULL, &m->wl, &m->wi,
                                                 &m->bias, &m->dst, &m->iter, 0));
            break;
        case CELL_RNN_TANH:
            CHECK(dnnl_vanilla_rnn_forward_desc_init(d, prop, dnnl_eltwise_tanh, dir, &m->src,
                                                     NULL, &m->wl, &m->wi, &m->bias, &m->dst,
                                                     &m->iter, 0, 0.f, 0.f));
            break;
    }
}

static void backward_desc(const workload_t *w, const layer_mds_t *m, dnnl_rnn_desc_t *d) {
    dnnl_rnn_direction_t dir = direction(w);
    /* diff weights in `any` too: oneDNN picks the layout its backward GEMMs want. */
    dnnl_memory_desc_t dwl = m->wl, dwi = m->wi;
    switch (w->cell) {
        case CELL_LSTM:
            CHECK(dnnl_lstm_backward_desc_init(d, dnnl_backward, dir, &m->src, NULL, NULL, &m->wl,
                                               &m->wi, &m->bias, &m->dst, &m->iter, &m->iter,
                                               &m->src, NULL, NULL, &dwl, &dwi, &m->bias, &m->dst,
                                               &m->iter, &m->iter, 0));
            break;
        case CELL_GRU_LBR:
            CHECK(dnnl_lbr_gru_backward_desc_init(d, dnnl_backward, dir, &m->src, NULL, &m->wl,
                                                  &m->wi, &m->bias, &m->dst, &m->iter, &m->src,
                                                  NULL, &dwl, &dwi, &m->bias, &m->dst, &m->iter,
                                                  0));
            break;
        case CELL_RNN_TANH:
            CHECK(dnnl_vanilla_rnn_backward_desc_init(
                d, dnnl_backward, dnnl_eltwise_tanh, dir, &m->src, NULL, &m->wl, &m->wi, &m->bias,
                &m->dst, &m->iter, &m->src, NULL, &dwl, &dwi, &m->bias, &m->dst, &m->iter, 0, 0.f,
                0.f));
            break;
    }
}

static dnnl_primitive_t make_prim(const dnnl_rnn_desc_t *d, const_dnnl_primitive_desc_t hint,
                                  dnnl_primitive_desc_t *pd_out) {
    CHECK(dnnl_primitive_desc_create(pd_out, d, NULL, engine, hint));
    dnnl_primitive_t p;
    CHECK(dnnl_primitive_create(&p, *pd_out));
    return track_prim(p);
}

/* Builds the plan for one workload; `train` selects fwd_bwd. The pds are kept until the plan's
 * primitives are built (backward needs the forward pd as hint) and are destroyed here. */
static void build_plan(const workload_t *w, int train, plan_t *p) {
    memset(p, 0, sizeof *p);
    dnnl_dim_t x_dims[3] = {w->T, w->B, w->I};
    dnnl_memory_t x = plain(3, x_dims, dnnl_tnc, 1.0f);
    dnnl_memory_t layer_in = x;
    dnnl_memory_t fwd_src[8], fwd_dst[8], ws[8], dst_iter[8], dst_iter_c[8];
    dnnl_primitive_desc_t fpd[8];
    layer_mds_t mds[8];
    if (w->L > 8) { fprintf(stderr, "rnn_bench: at most 8 layers\n"); exit(2); }

    for (int l = 0; l < w->L; l++) {
        mds[l] = layer_mds(w, l);
        dnnl_rnn_desc_t d;
        forward_desc(w, &mds[l], train ? dnnl_forward_training : dnnl_forward_inference, &d);
        dnnl_primitive_t prim = make_prim(&d, NULL, &fpd[l]);
        int s = add_step(p, prim);
        fwd_src[l] = layer_in;
        fwd_dst[l] = for_arg(fpd[l], DNNL_ARG_DST_LAYER);
        dst_iter[l] = for_arg(fpd[l], DNNL_ARG_DST_ITER);
        dst_iter_c[l] = for_arg(fpd[l], DNNL_ARG_DST_ITER_C);
        ws[l] = train ? for_arg(fpd[l], DNNL_ARG_WORKSPACE) : NULL;
        add_arg(p, s, DNNL_ARG_SRC_LAYER, layer_in);
        add_arg(p, s, DNNL_ARG_WEIGHTS_LAYER, reordered(fpd[l], DNNL_ARG_WEIGHTS_LAYER, mds[l].user_wl));
        add_arg(p, s, DNNL_ARG_WEIGHTS_ITER, reordered(fpd[l], DNNL_ARG_WEIGHTS_ITER, mds[l].user_wi));
        add_arg(p, s, DNNL_ARG_BIAS, reordered(fpd[l], DNNL_ARG_BIAS, mds[l].user_bias));
        add_arg(p, s, DNNL_ARG_DST_LAYER, fwd_dst[l]);
        add_arg(p, s, DNNL_ARG_DST_ITER, dst_iter[l]);
        add_arg(p, s, DNNL_ARG_DST_ITER_C, dst_iter_c[l]);
        add_arg(p, s, DNNL_ARG_WORKSPACE, ws[l]);
        layer_in = fwd_dst[l];
    }

    if (train) {
        /* dy of the top layer is random; dh_n, dc_n are zero (the loss is sum(y*dy)). */
        dnnl_memory_t diff_dst = NULL;
        for (int l = w->L - 1; l >= 0; l--) {
            dnnl_rnn_desc_t d;
            backward_desc(w, &mds[l], &d);
            dnnl_primitive_desc_t bpd;
            dnnl_primitive_t prim = make_prim(&d, fpd[l], &bpd);
            int s = add_step(p, prim);
            if (diff_dst == NULL) {
                diff_dst = for_arg(bpd, DNNL_ARG_DIFF_DST_LAYER);
                fill(diff_dst, 1.0f);
            }
            dnnl_memory_t diff_src = for_arg(bpd, DNNL_ARG_DIFF_SRC_LAYER);
            dnnl_memory_t dwl = for_arg(bpd, DNNL_ARG_DIFF_WEIGHTS_LAYER);
            dnnl_memory_t dwi = for_arg(bpd, DNNL_ARG_DIFF_WEIGHTS_ITER);
            dnnl_memory_t db = for_arg(bpd, DNNL_ARG_DIFF_BIAS);
            add_arg(p, s, DNNL_ARG_SRC_LAYER, fwd_src[l]);
            add_arg(p, s, DNNL_ARG_WEIGHTS_LAYER, reordered(bpd, DNNL_ARG_WEIGHTS_LAYER, mds[l].user_wl));
            add_arg(p, s, DNNL_ARG_WEIGHTS_ITER, reordered(bpd, DNNL_ARG_WEIGHTS_ITER, mds[l].user_wi));
            add_arg(p, s, DNNL_ARG_BIAS, reordered(bpd, DNNL_ARG_BIAS, mds[l].user_bias));
            add_arg(p, s, DNNL_ARG_DST_LAYER, fwd_dst[l]);
            add_arg(p, s, DNNL_ARG_DST_ITER, dst_iter[l]);
            add_arg(p, s, DNNL_ARG_DST_ITER_C, dst_iter_c[l]);
            add_arg(p, s, DNNL_ARG_WORKSPACE, ws[l]);
            add_arg(p, s, DNNL_ARG_DIFF_SRC_LAYER, diff_src);
            add_arg(p, s, DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl);
            add_arg(p, s, DNNL_ARG_DIFF_WEIGHTS_ITER, dwi);
            add_arg(p, s, DNNL_ARG_DIFF_BIAS, db);
            add_arg(p, s, DNNL_ARG_DIFF_DST_LAYER, diff_dst);
            add_arg(p, s, DNNL_ARG_DIFF_DST_ITER, for_arg(bpd, DNNL_ARG_DIFF_DST_ITER));
            add_arg(p, s, DNNL_ARG_DIFF_DST_ITER_C, for_arg(bpd, DNNL_ARG_DIFF_DST_ITER_C));
            add_zero(p, dwl);
            add_zero(p, dwi);
            add_zero(p, db);
            diff_dst = diff_src;
            dnnl_primitive_desc_destroy(bpd);
        }
    }
    for (int l = 0; l < w->L; l++) dnnl_primitive_desc_destroy(fpd[l]);
}

static void run_plan(const plan_t *p) {
    for (int i = 0; i < p->n_zero; i++) memset(handle(p->zero[i]), 0, mem_size(p->zero[i]));
    for (int i = 0; i < p->n_steps; i++)
        CHECK(dnnl_primitive_execute(p->prim[i], stream, p->n_args[i], p->args[i]));
    CHECK(dnnl_stream_wait(stream));
}

/* ------------------------------------------------------------------ timing and output */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double median, min, max; } stats_t;

static stats_t stats(double *ms, int n) {
    qsort(ms, n, sizeof *ms, cmp_double);
    stats_t s = {n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]), ms[0], ms[n - 1]};
    return s;
}

static void print_row(const char *name, const char *mode, stats_t s, double flops, int repeats,
                      int threads) {
    printf("{\"name\": \"%s\", \"backend\": \"onednn\", \"mode\": \"%s\", \"ms_median\": %.4f, "
           "\"ms_min\": %.4f, \"ms_max\": %.4f, \"gflops\": %.2f, \"repeats\": %d, \"threads\": %d}\n",
           name, mode, s.median, s.min, s.max, flops / (s.median * 1e6), repeats, threads);
    fflush(stdout);
}

static void bench_workload(const workload_t *w, int train, int warmup, int repeats, int threads) {
    plan_t p;
    build_plan(w, train, &p);
    for (int i = 0; i < warmup; i++) run_plan(&p);
    double *ms = malloc(sizeof(double) * repeats);
    for (int i = 0; i < repeats; i++) {
        double t0 = now_ms();
        run_plan(&p);
        ms[i] = now_ms() - t0;
    }
    double flops = forward_flops(w) * (train ? 3.0 : 1.0);
    print_row(w->name, train ? "fwd_bwd" : "fwd", stats(ms, repeats), flops, repeats, threads);
    free(ms);
    release_all();
}

static void bench_sgemm(int warmup, int repeats, int threads) {
    const dnnl_dim_t M = 1600, N = 1024, K = 256;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N),
          *c = malloc(sizeof(float) * M * N);
    if (!a || !b || !c) { fprintf(stderr, "rnn_bench: out of memory\n"); exit(2); }
    for (dnnl_dim_t i = 0; i < M * K; i++) a[i] = uniform(1.f);
    for (dnnl_dim_t i = 0; i < K * N; i++) b[i] = uniform(1.f);
    /* One repeat = several calls, so the timer's resolution and call overhead stay negligible. */
    const int calls = 10;
    for (int i = 0; i < warmup; i++) CHECK(dnnl_sgemm('N', 'N', M, N, K, 1.f, a, K, b, N, 0.f, c, N));
    double *ms = malloc(sizeof(double) * repeats);
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ms();
        for (int i = 0; i < calls; i++)
            CHECK(dnnl_sgemm('N', 'N', M, N, K, 1.f, a, K, b, N, 0.f, c, N));
        ms[r] = (now_ms() - t0) / calls;
    }
    print_row("sgemm_M1600_N1024_K256", "sgemm", stats(ms, repeats), 2.0 * M * N * K, repeats,
              threads);
    free(ms); free(a); free(b); free(c);
}

static int parse_int(const char *flag, const char *v, int min) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < min || x > 1000000) {
        fprintf(stderr, "rnn_bench: %s expects an integer >= %d, got '%s'\n", flag, min, v);
        exit(1);
    }
    return (int)x;
}

int main(int argc, char **argv) {
    int threads = 0, repeats = 20, warmup = 3;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) { fprintf(stderr, "rnn_bench: %s needs a value\n", a); return 1; }
        if (!strcmp(a, "--threads")) threads = parse_int(a, argv[++i], 1);
        else if (!strcmp(a, "--repeats")) repeats = parse_int(a, argv[++i], 1);
        else if (!strcmp(a, "--warmup")) warmup = parse_int(a, argv[++i], 0);
        else if (!strcmp(a, "--only")) only = argv[++i];
        else { fprintf(stderr, "rnn_bench: unknown option %s\n", a); return 1; }
    }
    int known = only == NULL || !strcmp(only, "sgemm");
    for (size_t i = 0; i < sizeof WORKLOADS / sizeof *WORKLOADS; i++)
        if (only && !strcmp(only, WORKLOADS[i].name)) known = 1;
    if (!known) {
        fprintf(stderr, "rnn_bench: --only: no workload named '%s'; known: sgemm", only);
        for (size_t i = 0; i < sizeof WORKLOADS / sizeof *WORKLOADS; i++)
            fprintf(stderr, ", %s", WORKLOADS[i].name);
        fprintf(stderr, "\n");
        return 1;
    }
    if (threads > 0) omp_set_num_threads(threads);
    threads = omp_get_max_threads();

    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));

    if (only == NULL || !strcmp(only, "sgemm")) bench_sgemm(warmup, repeats, threads);
    for (size_t i = 0; i < sizeof WORKLOADS / sizeof *WORKLOADS; i++) {
        const workload_t *w = &WORKLOADS[i];
        if (only && strcmp(only, w->name)) continue;
        bench_workload(w, 0, warmup, repeats, threads);
        if (w->fwd_bwd) bench_workload(w, 1, warmup, repeats, threads);
    }
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
