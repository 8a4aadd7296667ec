#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind (as
# bench/callgrind.sh does for metrics and logs). Needs valgrind (Debian's
# package, with its headers) and cgo.
#
#   bench/callgrind-proxy.sh             # BenchmarkProxyHandler's handlers: bare, cached, store
#   bench/callgrind-proxy.sh revalidate  # a session of Aero2's own provider: cached, read, touch
#
# Each variant runs a short and a long batch of requests (1,000 and 3,000;
# 200 and 600 for revalidate), three rounds taking turns; a request's
# count is the long batch's less the short one's (the smallest of the
# rounds each) over their difference, without what starting a batch costs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
case "${1:-handler}" in
handler) pkg=./proxy/ test=TestProxyHandlerInstructions variants="bare cached store" short=1000 long=3000 ;;
revalidate) pkg=./bench/ test=TestRevalidationInstructions variants="cached read touch" short=200 long=600 ;;
*) echo "usage: $0 [handler|revalidate]" >&2; exit 2 ;;
esac
go test -c -tags callgrind -o "$out/x.test" "$pkg"
# As bench/callgrind.sh: no preemption signals, one P.
GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$out/x.test" -test.run "^$test\$" >"$out/run.log" 2>&1 || { cp "$out/run.log" /tmp/callgrind-proxy-run.log; exit 1; }
# Each dump: "desc: Trigger: Client Request: <variant> <requests> <round>"
# and "totals: <instructions>".
awk -v variants="$variants" -v short="$short" -v long="$long" '
  FNR == 1 { label = "" }
  /^desc: Trigger: Client Request:/ { label = $5 " " $6 }
  /^(totals|summary):/ && label != "" && (!(label in ir) || $2 < ir[label]) { ir[label] = $2 }
  END {
    printf "%-8s %14s\n", "variant", "instr/request"
    n = split(variants, v, " ")
    for (i = 1; i <= n; i++) printf "%-8s %14.0f\n", v[i], (ir[v[i] " " long] - ir[v[i] " " short]) / (long - short)
  }' "$out"/callgrind.out.*
