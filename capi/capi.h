/* Private to the library's build: the public header's types, the concrete
 * qs_error, and trampolines for calling C function pointers from Go. */
#ifndef QUICKSAND_CAPI_H
#define QUICKSAND_CAPI_H

#define QS_BUILDING_LIBRARY
#include <stdlib.h>
#include "quicksand.h"

struct qs_error {
	qs_status code;
	char *message;
};

/* cgo cannot call C function pointers; these do. The callers' user_data
 * crosses into Go as an integer (uintptr_t), never as a pointer: callers
 * pass small integers as user_data (the bindings pass keys 1, 2, 3...),
 * and Go's runtime aborts the process when it finds such a value in a
 * pointer slot of a goroutine's stack ("invalid pointer found on stack").
 * The exported functions take user_data as uintptr_t too: the same calling
 * convention as the header's void *. */
static inline void qs_call_chunk(qs_chunk_fn fn, uintptr_t ud, int stream, const uint8_t *data, size_t len) {
	fn((void *)ud, stream, data, len);
}

static inline void qs_call_event(qs_event_fn fn, uintptr_t ud, const uint8_t *event, size_t len) {
	fn((void *)ud, event, len);
}

static inline void qs_call_log(qs_log_fn fn, uintptr_t ud, int level, const char *message) {
	fn((void *)ud, level, message);
}

static inline void qs_call_done(qs_done_fn fn, uintptr_t ud, qs_status status, const uint8_t *result, size_t len,
                                const qs_error *err) {
	fn((void *)ud, status, result, len, err);
}

static inline void qs_call_progress(qs_progress_fn fn, uintptr_t ud, uint64_t done, uint64_t total) {
	fn((void *)ud, done, total);
}

#endif
