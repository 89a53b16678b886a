#!/usr/bin/env bash
# The lint is itself tested: it must fail on an OS call outside the shim, and pass on the same
# call inside src/shim/, in a comment, in a string, or as a member or prefixed name.
set -uo pipefail
lint=$(cd "$(dirname "$0")/.." && pwd)/scripts/lint.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() {  # check NAME WANT_RC FILE CONTENT
  rm -rf "$tmp/tree"; mkdir -p "$tmp/tree/src/base" "$tmp/tree/src/shim" "$tmp/tree/sim"
  echo 'int ok(void) { return 0; }' > "$tmp/tree/src/base/ok.c"
  printf '%s\n' "$4" > "$tmp/tree/$3"
  "$lint" "$tmp/tree" > "$tmp/out" 2>&1; rc=$?
  if [ "$rc" -eq "$2" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "lint test '$1': exit $rc, want $2"; cat "$tmp/out"; fi
}
check "time() in src/base fails"        1 src/base/bad.c  'long f(void) { return time(0); }'
check "time() in sim fails"             1 sim/bad.c       'long f(void) { return time(0); }'
check "rand() fails"                    1 src/base/bad.c  'int f(void) { return rand(); }'
check "fopen() fails"                   1 src/base/bad.c  'void *f(void) { return fopen("x", "r"); }'
check "pthread_create fails"            1 src/base/bad.c  'int f(void) { return pthread_create(0,0,0,0); }'
check "<time.h> include fails"          1 src/base/bad.c  '#include <time.h>'
check "<unistd.h> include fails"        1 src/base/bad.c  '#include <unistd.h>'
check "time() in src/shim passes"       0 src/shim/ok.c   'long f(void) { return time(0); }'
check "time() in a comment passes"      0 src/base/c.c    '/* time(0) */ int g(void) { return 0; }'
check "time() in a string passes"       0 src/base/s.c    'const char *s = "time(0)";'
check "member ->read() passes"          0 src/base/m.c    'int g(struct x *p) { return p->read(1); }'
check "prefixed rq_read() passes"       0 src/base/p.c    'int g(void) { return rq_read(1); }'
echo "lint: $pass passed, $fail failed"
[ $fail -eq 0 ]
