/* One command with a lot of output through the C ABI, for the host-memory
 * table of `make bench-output`: output_rss COMMAND stream|collect
 * [MAX_OUTPUT]. Prints the bytes that reached the caller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mini_msgpack.h"
#include "quicksand.h"

static void count(void *user_data, int stream, const uint8_t *data, size_t len) {
    (void)stream;
    (void)data;
    *(unsigned long long *)user_data += len;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: output_rss COMMAND stream|collect [MAX_OUTPUT]\n");
        return 2;
    }
    int streaming = strcmp(argv[2], "stream") == 0;
    qs_sandbox *sb;
    qs_error *err;
    if (qs_sandbox_start(NULL, 0, &sb, &err) != QS_OK) {
        fprintf(stderr, "output_rss: %s\n", qs_error_message(err));
        return 1;
    }
    mp_writer req = {0};
    mp_map(&req, argc > 3 ? 3 : 2);
    mp_str(&req, "command");
    mp_str(&req, argv[1]);
    mp_str(&req, "timeout");
    mp_uint(&req, 600);
    if (argc > 3) {
        mp_str(&req, "max_output");
        mp_uint(&req, (uint32_t)strtoul(argv[3], NULL, 10));
    }
    unsigned long long got = 0;
    qs_buffer res;
    if (qs_sandbox_execute(sb, req.buf, req.len, streaming ? count : NULL, &got, &res, &err) != QS_OK) {
        fprintf(stderr, "output_rss: %s\n", qs_error_message(err));
        return 1;
    }
    mp_value out = mp_get(res.data, res.len, "stdout");
    printf("%llu %llu\n", got, (unsigned long long)out.len);
    qs_buffer_free(&res);
    qs_sandbox_stop(sb, NULL);
    qs_sandbox_free(sb);
    return 0;
}
