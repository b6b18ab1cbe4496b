#!/usr/bin/env bash
# Runs one C test program under valgrind (arguments: valgrind's options, then
# the program). CI shows only the last lines of a failed run, where valgrind
# prints its summary and not the errors it counted: on failure the errors are
# printed again, last, so that the tail says which calls failed.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --log-file="$log" "$@"
rc=$?
cat "$log" >&2
if [ "$rc" -ne 0 ]; then
	echo "==> valgrind failed (exit $rc); the errors it counted:" >&2
	# An error is a block of lines between blank ==pid== lines, after the
	# start-up warnings and before the heap summary.
	awk '/HEAP SUMMARY/ {exit} /^==[0-9]+== (Syscall param|Invalid|Conditional|Use of uninit|Mismatched|[0-9,]+ bytes in)/ {show=1} show {print} /^==[0-9]+== $/ {show=0}' "$log" | tail -n 60 >&2
fi
exit "$rc"
