#!/usr/bin/env bash
# Counts, with valgrind's callgrind, the instructions per request that
# metrics, traces and the access log add (BenchmarkObservabilityInstructions): figures that
# do not move with the machine's load, unlike timings. Needs valgrind
# (Debian's package, with its headers) and cgo.
#
#   bench/callgrind.sh            # 300 requests per scenario and server
#   N=1000 bench/callgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-300}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go test -c -tags callgrind -o "$out/bench.test" ./bench/
# Go preempts goroutines with signals (SIGURG), which callgrind cannot
# follow: off for the run. One P: idle Ps spin looking for work for as
# long as the wall clock lets them, which moved a count by ±5%.
GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$out/bench.test" -test.run '^$' -test.bench '^BenchmarkObservabilityInstructions$' \
  -test.benchtime "${n}x" >"$out/run.log" 2>&1 || { cp "$out/run.log" /tmp/callgrind-run.log; exit 1; }
# Each labelled dump is a file "callgrind.out.<n>" with
# "desc: Trigger: Client Request: <scenario> <server> <requests> <b.N>
# <round>" and "totals: <instructions>". Go runs each benchmark once with
# b.N = 1 first; only the dumps of b.N = n count, and of a server's three
# rounds the smallest (what timers firing by the wall clock add is never
# less than nothing).
awk -v n="$n" '
  FNR == 1 { label = "" }
  /^desc: Trigger: Client Request:/ { label = $5 " " $6; reqs = $7; bn = $8 }
  /^(totals|summary):/ && label != "" && bn == n && (!(label in ir) || $2 < ir[label]) { ir[label] = $2; per[label] = $2 / reqs }
  END {
    printf "%-8s %-8s %14s %10s\n", "scenario", "server", "instr/request", "vs off"
    split("proxy token", sc, " "); split("off metrics traces logs slogjson", sv, " ")
    for (i = 1; i <= 2; i++) for (j = 1; j <= 5; j++) {
      k = sc[i] " " sv[j]; if (!(k in ir)) continue
      base = ir[sc[i] " off"]
      printf "%-8s %-8s %14.0f %9.2f%%\n", sc[i], sv[j], per[k], (ir[k] / base - 1) * 100
    }
  }' "$out"/callgrind.out.*
