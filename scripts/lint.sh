#!/usr/bin/env bash
# The determinism lint: outside src/shim/ and src/cmd/, no code may call the OS, read the wall
# clock or use an unseeded random source. Everything nondeterministic enters through src/io/io.h.
# Usage: scripts/lint.sh [ROOT]   (exit 0 clean, 1 with a list of offending lines)
set -euo pipefail
root=${1:-.}

forbidden_calls='time|clock_gettime|gettimeofday|clock|timespec_get|rand|random|srand|srandom|rand_r|drand48|lrand48|arc4random|getrandom|sleep|usleep|nanosleep|pthread_[a-z_]+|thrd_[a-z_]+|socket|connect|bind|listen|accept|accept4|send|recv|sendto|recvfrom|sendmsg|recvmsg|open|openat|creat|fopen|freopen|fdopen|read|write|pread|pwrite|readv|writev|fsync|fdatasync|sync_file_range|close|lseek|ftruncate|truncate|unlink|rename|mkdir|rmdir|opendir|readdir|stat|fstat|lstat|getenv|setenv|getpid|fork|vfork|execve|execv|execvp|system|popen|select|poll|epoll_create|epoll_create1|epoll_ctl|epoll_wait|mmap|ioctl|signal|sigaction|kill|raise|exit|_exit|quick_exit|atexit|dlopen'
forbidden_headers='time\.h|unistd\.h|pthread\.h|threads\.h|fcntl\.h|dirent\.h|signal\.h|sys/[a-z_/]+\.h|netinet/[a-z_]+\.h|arpa/[a-z_]+\.h|netdb\.h|poll\.h|dlfcn\.h'

files=$(find "$root/src" "$root/sim" -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null |
        grep -v -E "^$root/src/(shim|cmd)/" | sort || true)
[ -n "$files" ] || { echo "lint: no sources under $root/src or $root/sim" >&2; exit 1; }

status=0
for f in $files; do
  # Strip comments and string literals (keeping line numbers), then look for calls and includes.
  out=$(perl -0777 -ne '
      s{/\*.*?\*/}{ my $c = $&; $c =~ tr/\n//cd; $c }gse;   # block comments -> their newlines
      s{//[^\n]*}{}g;                                         # line comments
      s{"(?:\\.|[^"\\\n])*"}{""}g;                            # string literals
      my $n = 0;
      for my $line (split /\n/, $_, -1) {
          $n++;
          if ($line =~ m{(?:^|[^A-Za-z0-9_>.])('"$forbidden_calls"')\s*\(}) {
              print "$n: call to $1()\n";
          }
          if ($line =~ m{#\s*include\s*<('"$forbidden_headers"')>}) {
              print "$n: includes <$1>\n";
          }
      }' "$f")
  if [ -n "$out" ]; then
    while IFS= read -r line; do echo "lint: ${f#"$root"/}:$line"; done <<< "$out"
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "lint: FAILED — OS, wall-clock and unseeded-random calls belong in src/shim/ or src/cmd/ only" >&2
fi
exit $status
