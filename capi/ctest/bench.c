/* The C figures of `make bench`: execute `true` through the C ABI, the
 * cost of one call that does no VM work, and streaming throughput with a
 * chunk callback. Prints one JSON figure a line. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mini_msgpack.h"
#include "quicksand.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile by nearest rank, as the Go side computes it. */
static double quantile(double *v, int n, double q) {
    int i = (int)(q * n + 0.999999) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i];
}

static void print_figure(const char *name, const char *unit, double *v, int n, int warmup, const char *command) {
    qsort(v, n, sizeof *v, cmp);
    printf("{\"name\": \"%s\", \"unit\": \"%s\", \"median\": %g, \"p99\": %g, \"min\": %g, \"max\": %g, "
           "\"runs\": %d, \"warmup\": %d, \"command\": \"%s\"}\n",
           name, unit, quantile(v, n, 0.5), quantile(v, n, 0.99), v[0], v[n - 1], n, warmup, command);
}

static void count_bytes(void *user_data, int stream, const uint8_t *data, size_t len) {
    (void)stream;
    (void)data;
    *(size_t *)user_data += len;
}

/* bench_c stream SIZE: one execute of SIZE bytes of text on stdout through
 * a chunk callback that counts them, after one `true` (as the Go and
 * binding runs it is compared with). */
static int stream(qs_sandbox *sb, long size) {
    char command[96];
    snprintf(command, sizeof command, "yes abcdefgh | head -c %ld", size);
    mp_writer req = {0};
    mp_map(&req, 2);
    mp_str(&req, "command");
    mp_str(&req, command);
    mp_str(&req, "timeout");
    mp_uint(&req, 600);
    mp_writer warm = {0};
    mp_map(&warm, 1);
    mp_str(&warm, "command");
    mp_str(&warm, "true");
    qs_buffer res;
    qs_error *err;
    if (qs_sandbox_execute(sb, warm.buf, warm.len, NULL, NULL, &res, &err) != QS_OK) {
        fprintf(stderr, "bench_c: %s\n", qs_error_message(err));
        return 1;
    }
    qs_buffer_free(&res);
    size_t got = 0;
    double start = now_ms();
    if (qs_sandbox_execute(sb, req.buf, req.len, count_bytes, &got, &res, &err) != QS_OK) {
        fprintf(stderr, "bench_c: %s\n", qs_error_message(err));
        return 1;
    }
    double mbs = size / 1e3 / (now_ms() - start);
    qs_buffer_free(&res);
    if (got != (size_t)size) {
        fprintf(stderr, "bench_c: streamed %zu of %ld bytes\n", got, size);
        return 1;
    }
    char name[96];
    snprintf(name, sizeof name, "text stdout throughput, %ld MiB, with a chunk callback", size >> 20);
    print_figure(name, "MB/s", &mbs, 1, 0, "yes abcdefgh | head -c N, a chunk callback counting");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "stream") == 0) {
        qs_sandbox *sb;
        qs_error *err;
        if (qs_sandbox_start(NULL, 0, &sb, &err) != QS_OK) {
            fprintf(stderr, "bench_c: %s\n", qs_error_message(err));
            return 1;
        }
        int rc = stream(sb, atol(argv[2]));
        qs_sandbox_free(sb);
        return rc;
    }
    int n = argc > 1 ? atoi(argv[1]) : 500;
    const int warmup = 20;
    double *v = calloc(n > 5 ? n : 5, sizeof *v);

    qs_sandbox *sb;
    qs_error *err;
    if (qs_sandbox_start(NULL, 0, &sb, &err) != QS_OK) {
        fprintf(stderr, "bench_c: %s\n", qs_error_message(err));
        return 1;
    }
    /* No VM work: a request without a command fails in decoding. */
    mp_writer bad = {0};
    mp_map(&bad, 1);
    mp_str(&bad, "cwd");
    mp_str(&bad, "/");
    for (int r = 0; r < 5; r++) {
        const int calls = 100000;
        double start = now_ms();
        for (int i = 0; i < calls; i++) {
            qs_buffer res;
            if (qs_sandbox_execute(sb, bad.buf, bad.len, NULL, NULL, &res, NULL) == QS_OK) return 1;
        }
        v[r] = (now_ms() - start) * 1000 / calls;
    }
    print_figure("call with no VM work (decode a bad request)", "µs", v, 5, 0,
                 "qs_sandbox_execute of a request without command, 100000 times");

    mp_writer req = {0};
    mp_map(&req, 1);
    mp_str(&req, "command");
    mp_str(&req, "true");
    for (int i = 0; i < n + warmup; i++) {
        qs_buffer res;
        double start = now_ms();
        if (qs_sandbox_execute(sb, req.buf, req.len, NULL, NULL, &res, &err) != QS_OK) {
            fprintf(stderr, "bench_c: %s\n", qs_error_message(err));
            return 1;
        }
        qs_buffer_free(&res);
        if (i >= warmup) v[i - warmup] = now_ms() - start;
    }
    print_figure("execute `true`, round trip", "ms", v, n, warmup, "qs_sandbox_execute({command: true}) with the result decoded by the caller");
    qs_sandbox_stop(sb, NULL);
    qs_sandbox_free(sb);
    free(v);
    return 0;
}
