/* Private to the library's build: the public header's types, the concrete
 * qs_error, and trampolines for calling C function pointers from Go. */
#ifndef QUICKSAND_CAPI_H
#define QUICKSAND_CAPI_H

#define QS_BUILDING_LIBRARY
#include <stdlib.h>
#include "quicksand.h"

struct qs_error {
	int code;
	char *message;
};

/* cgo cannot call C function pointers; these do. */
static inline void qs_call_chunk(qs_chunk_fn fn, void *ud, int stream, const uint8_t *data, size_t len) {
	fn(ud, stream, data, len);
}

static inline void qs_call_log(qs_log_fn fn, void *ud, int level, const char *message) {
	fn(ud, level, message);
}

static inline void qs_call_done(qs_done_fn fn, void *ud, int status, const uint8_t *result, size_t len,
                                const qs_error *err) {
	fn(ud, status, result, len, err);
}

#endif
