package redis_test

// BenchmarkPutParallel is the store's one write of every client-credentials
// token (a SET with PX of a short record) from many goroutines at once, as
// a busy token endpoint makes it. redis-µs/op is the whole server's CPU
// divided by the calls, so give the benchmark a redis-server of its own
// (the package's private one writes every command to its append-only file,
// which would be measured too):
//
//	redis-server --port 6391 --save '' --appendonly no --daemonize yes
//	AERO2_TEST_REDIS_ADDR=127.0.0.1:6391 go test -run '^$' -bench PutParallel -benchmem ./store/redis/
//
// Besides ns/op it reports the CPU that one call costs each side: this
// process (client-µs/op: go-redis's write, wait and read, and the
// kernel's loopback work done on its behalf) and redis-server
// (redis-µs/op, from INFO cpu). Those two move less with the machine's
// load than ns/op does. (Issue 13: go-redis's automatic pipelining was
// measured with it; see the comment in Open.)

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

func BenchmarkPutParallel(b *testing.B) {
	st := redistest.New(b)
	val := []byte(`{"client_id":"bench-client","scope":"read write","exp":1767225600}`)
	// 1 and 8 goroutines per GOMAXPROCS: 2 and 16 callers on two cores,
	// the second as many as the endpoint benchmark's clients.
	for _, par := range []int{1, 8} {
		b.Run("callers-per-cpu="+strconv.Itoa(par), func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(par)
			r0, c0 := redisCPU(b, st.Client()), processCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := store.FailFast(context.Background())
				for pb.Next() {
					k := "tok-" + strconv.FormatInt(n.Add(1)%4096, 10)
					if err := st.Put(ctx, "bench", k, val, time.Minute); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			r1, c1 := redisCPU(b, st.Client()), processCPU(b)
			b.ReportMetric((c1-c0).Seconds()*1e6/float64(b.N), "client-µs/op")
			b.ReportMetric((r1-r0).Seconds()*1e6/float64(b.N), "redis-µs/op")
		})
	}
}

// redisCPU is redis-server's user and system CPU so far (INFO cpu).
func redisCPU(b *testing.B, c goredis.UniversalClient) time.Duration {
	b.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		for _, field := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, field); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("INFO cpu %s%q: %v", field, v, err)
				}
				sum += f
				found++
			}
		}
	}
	if found != 2 {
		b.Fatalf("INFO cpu without used_cpu_user and used_cpu_sys:\n%s", info)
	}
	return time.Duration(sum * float64(time.Second))
}

// processCPU is this process's user and system CPU so far.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkApplyRefresh is the batch a refresh commits (oauthstore's
// Commit, compacted as it sends it): the new refresh token's "used"
// guard of the old one, the old access token's deletion and index
// removal, the two new tokens with their index addition and the grant's
// tombstone guard. Besides client-µs/op and redis-µs/op (as
// BenchmarkPutParallel, with the same private redis-server) it reports
// cmds/op, the commands redis-server ran per batch (INFO commandstats:
// the script's own calls, the EVALSHA not counted):
//
//	AERO2_TEST_REDIS_ADDR=127.0.0.1:6391 go test -run '^$' -bench ApplyRefresh -benchmem ./store/redis/
func BenchmarkApplyRefresh(b *testing.B) {
	st := redistest.New(b)
	rt := []byte(strings.Repeat("r", 1200)) // a refresh record: the request and its session
	at := []byte(`{"g":"7c3f2f6e-2a55-4d3c-9a8e-5d1b2f0c4e11","n":"alice","s":"bench-sid-0123456789"}`)
	h := func(kind string, n int64) string { return kind + strconv.FormatInt(n, 10) + strings.Repeat("h", 36) }
	var n atomic.Int64
	b.SetParallelism(8)
	r0, c0, k0 := redisCPU(b, st.Client()), processCPU(b), redisCommands(b, st.Client())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := store.FailFast(context.Background())
		for pb.Next() {
			i := n.Add(1)
			grant := "oauth:grant:" + strconv.FormatInt(i%64, 10)
			ops := store.Compact([]store.Op{
				{Kind: store.OpCreate, Key: h("oauth:rt-used:", i-1), Value: []byte("1"), TTL: 24 * time.Hour},
				{Kind: store.OpDelete, Key: h("oauth:at:", i-1)},
				{Kind: store.OpSetRemove, Key: grant, Members: []string{h("a:", i-1)}},
				{Kind: store.OpPut, Key: h("oauth:at:", i), Value: at, TTL: 5 * time.Minute},
				{Kind: store.OpSetAdd, Key: grant, TTL: 5 * time.Minute, Members: []string{h("a:", i)}},
				{Kind: store.OpAbsent, Key: "oauth:grant-revoked:" + grant},
				{Kind: store.OpPut, Key: h("oauth:rt:", i), Value: rt, TTL: 24 * time.Hour},
				{Kind: store.OpSetAdd, Key: grant, TTL: 24 * time.Hour, Members: []string{h("r:", i)}},
				{Kind: store.OpAbsent, Key: "oauth:grant-revoked:" + grant},
			})
			if err := st.Apply(ctx, "bench", ops...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	r1, c1, k1 := redisCPU(b, st.Client()), processCPU(b), redisCommands(b, st.Client())
	b.ReportMetric((c1-c0).Seconds()*1e6/float64(b.N), "client-µs/op")
	b.ReportMetric((r1-r0).Seconds()*1e6/float64(b.N), "redis-µs/op")
	b.ReportMetric(float64(k1-k0)/float64(b.N), "cmds/op")
}

// redisCommands is how many commands redis-server has run, the ones a
// script runs included and the scripts themselves and INFO not
// (INFO commandstats).
func redisCommands(b *testing.B, c goredis.UniversalClient) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || name == "cmdstat_evalsha" || name == "cmdstat_eval" || name == "cmdstat_info" {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		v, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			b.Fatalf("INFO commandstats %q: %v", line, err)
		}
		sum += v
	}
	return sum
}
