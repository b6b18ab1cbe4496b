#!/usr/bin/env bash
# Checks a prebuilt Node addon is what its name promises, from its ELF
# alone (it may be for another architecture):
#   - the architecture: ARCH (x64 or arm64);
#   - N-API only: it registers itself as an N-API module
#     (napi_register_module_v1) and imports nothing of V8's or Node's C++
#     (which would tie it to one Node version);
#   - the N-API version: every napi_* function it imports is in N-API 8,
#     which Node 18 (our package's oldest, "engines") has; the lists are
#     node-api-headers' (a devDependency from the npm registry);
#   - glibc: the newest symbol version it needs, printed; with MAX_GLIBC, no
#     newer than that (dist gives libquicksand.so's, so the addons never
#     ask more of a machine than the library does).
# Usage: build/check-node-addon.sh FILE ARCH [MAX_GLIBC]
set -euo pipefail
file=$1 arch=$2 max_glibc=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "FAIL node addon $file: $*" >&2; exit 1; }

case $arch in x64) want=X86-64 ;; arm64) want=AArch64 ;; *) fail "unknown architecture $arch" ;; esac
machine=$(readelf -h "$file" | sed -n 's/^ *Machine: *//p')
[[ $machine == *"$want"* ]] || fail "is for '$machine', not $arch"

syms=$(readelf -W --dyn-syms "$file")
grep -qE ' GLOBAL +DEFAULT +[0-9]+ napi_register_module_v1$' <<<"$syms" || fail "does not register as an N-API module (no napi_register_module_v1)"
if grep -E ' UND _ZN(2v8|4node)' <<<"$syms" >&2; then fail "imports V8 or Node C++ symbols: not ABI-stable"; fi

imported=$(awk '$7 == "UND" { sub(/@.*/, "", $8); print $8 }' <<<"$syms" | grep -E '^(napi|node_api)_' | sort -u)
napi=8
beyond=$(node -e '
const s = require(process.argv[1]);
const have = new Set();
for (let v = 1; v <= Number(process.argv[2]); v++) {
  for (const list of Object.values(s["v" + v])) list.forEach((f) => have.add(f));
}
const need = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
console.log(need.filter((f) => !have.has(f)).join(" "));
' "$root/bindings/node/node_modules/node-api-headers/symbols.js" "$napi" <<<"$imported")
[ -z "$beyond" ] || fail "imports functions newer than N-API $napi: $beyond"

glibc=$(grep -o 'GLIBC_[0-9.]*' <<<"$syms" | sed 's/GLIBC_//' | sort -V | tail -1)
if [ -n "$max_glibc" ] && [ "$(printf '%s\n%s\n' "$glibc" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
	fail "needs glibc $glibc, newer than $max_glibc"
fi
echo "ok   node addon $(basename "$(dirname "$(dirname "$(dirname "$file")")")")/$(basename "$(dirname "$file")"): $arch, N-API <= $napi ($(wc -w <<<"$imported") functions), glibc $glibc"
