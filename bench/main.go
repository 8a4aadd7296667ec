// Command bench is the load benchmark of Aero2's OpenID Connect provider:
// real HTTP on loopback against an in-process Aero2, on the memory store
// on Redis, on PostgreSQL and on the combined store, for client-credentials
// issuance, the refresh grant, JWT introspection, full authorize→token
// round trips and federated sign-ins.
//
// Every issued token costs RSA signatures, so the same run first measures
// the ceiling — RS256 signatures per second from Go's crypto/rsa on all
// cores — and reports each endpoint's rate as a fraction of it, counting
// the signatures one request makes (an access token, plus an ID token for
// refresh and the code exchange). The load generator shares the machine's
// cores with the server, as a real deployment's proxies and clients would
// not: the fractions are a lower bound. The floor row says how low: a
// net/http server that does nothing but check the client, sign a JWT of
// the same size with the same signer and answer, driven the same way.
//
//	go run ./bench                         # 5 s per scenario, memory and redis
//	go run ./bench -duration 10s -stores redis
//	go run ./bench -stores memory,redis,postgres,combined -only sign-in,authorize
//
// This is a benchmark, not a test: it asserts nothing about speed, it
// reports. It fails only when a request fails.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/authz/keys/ossl"
)

func main() {
	dur := flag.Duration("duration", 5*time.Second, "how long each scenario (and each ceiling measurement) runs")
	stores := flag.String("stores", "memory,redis", "stores to benchmark: memory, redis, postgres, combined")
	workers := flag.Int("workers", 8*runtime.GOMAXPROCS(0), "concurrent clients")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address for -stores redis, combined")
	pgDSN := flag.String("postgres", cmp.Or(os.Getenv("AERO2_DATABASE_URL"), os.Getenv("AERO2_TEST_POSTGRES_DSN")),
		"PostgreSQL DSN for -stores postgres, combined (default $AERO2_DATABASE_URL, else $AERO2_TEST_POSTGRES_DSN); each run uses a schema of its own, dropped afterwards")
	slices := flag.Int("slices", 10, "each scenario's time is cut into this many slices, each next to a ceiling slice of the same length")
	only := flag.String("only", "", "run only the scenarios whose name contains one of these (comma-separated)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&peerURL, "peer", "", "token endpoint of another provider (client \"service\", secret "+serviceSecret+"): its client_credentials rate is measured in slices taking turns with Aero2's (bench/peer)")
	client := flag.String("client", "wire", "load generator's client for the token, refresh and introspection endpoints (and the peer): wire (lean HTTP/1.1, like wrk) or net (net/http's)")
	flag.Parse()
	switch *client {
	case "wire", "net":
		wireLoad = *client == "wire"
	default:
		fmt.Fprintln(os.Stderr, "bench: -client is wire or net")
		os.Exit(2)
	}
	if *only != "" {
		var keep []Scenario
		for _, sc := range Scenarios {
			for _, o := range strings.Split(*only, ",") {
				if o != "" && strings.Contains(sc.Name, o) {
					keep = append(keep, sc)
					break
				}
			}
		}
		Scenarios = keep
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*dur, *slices, strings.Split(*stores, ","), *workers, *redisAddr, *pgDSN); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// peerURL is -peer.
var peerURL string

func run(dur time.Duration, nslices int, stores []string, workers int, redisAddr, pgDSN string) error {
	load := "wire client"
	if !wireLoad {
		load = "net/http client"
	}
	fmt.Printf("Aero2 provider benchmark: %d cores (GOMAXPROCS), %d concurrent clients (%s), %s per scenario, %s, %s\n",
		runtime.GOMAXPROCS(0), workers, load, dur, runtime.Version(), keys.SignerName())
	ceil, err := NewCeiling()
	if err != nil {
		return err
	}
	// Built with -tags openssl, the server signs with OpenSSL: its ceiling
	// is measured too (same key, same slices), and "of ceiling" is of the
	// ceiling of the signer in use.
	var osslCeil *Ceiling
	if ossl.Available {
		if osslCeil, err = ceil.OpenSSL(); err != nil {
			return err
		}
	}
	// The ceiling is measured in the same run, interleaved with the load:
	// each scenario's time is cut into slices, each next to a ceiling
	// slice of the same length, so both see the same machine (on a shared
	// machine, a ceiling measured once would compare every scenario with a
	// moment that has passed).
	slice := dur / time.Duration(nslices)
	fmt.Printf("%-7s %-20s %9s %9s %9s %5s %9s %9s %10s %8s %8s %8s %7s %7s\n", "store", "endpoint", "req/s", "p50", "p99", "sigs", "go ceil", "ossl ceil", "of ceiling",
		"cpu/req", "beside", "redis", "csw/req", "csw/sig")
	for _, st := range stores {
		st = strings.TrimSpace(st)
		prefix := "aero2bench-" + rand.Text()[:10]
		dsn, dropSchema := "", func() {}
		if st == "postgres" || st == "combined" {
			if dsn, dropSchema, err = benchSchema(pgDSN); err != nil {
				return fmt.Errorf("%s: %w", st, err)
			}
		}
		t, err := Start(context.Background(), StoreConfig(st, redisAddr, prefix, dsn), workers)
		if err != nil {
			dropSchema()
			return fmt.Errorf("%s: %w", st, err)
		}
		for _, sc := range Scenarios {
			ops, err := sc.Setup(t, workers)
			if err != nil {
				t.Close()
				dropSchema()
				return fmt.Errorf("%s %s setup: %w", st, sc.Name, err)
			}
			var peerOps []func() error
			var peer Result
			if peerURL != "" && sc.Name == "client_credentials" {
				if peerOps, err = tokenOps(t.Client, peerURL, workers); err != nil {
					return err
				}
				Run(peerOps, slice)
			}
			Run(ops, slice) // warm-up: connections, caches
			var r Result
			var goC, osslC ceilingSum
			var cpu cpuMeter
			var redisTook time.Duration
			redisProc := redisCPU{}
			if st == "redis" || st == "combined" {
				redisProc = newRedisCPU(redisAddr)
			}
			measure := func() {
				goC.add(ceil, slice)
				if osslCeil != nil {
					osslC.add(osslCeil, slice)
				}
			}
			for i := range nslices {
				if i%2 == 0 {
					measure()
				}
				rd0, _ := redisProc.read()
				cpu.measure(func() int64 {
					o := Run(ops, slice)
					r = r.Add(o)
					return int64(o.Requests + o.Errors)
				})
				if rd1, ok := redisProc.read(); ok {
					redisTook += rd1 - rd0
				}
				if peerOps != nil {
					peer = peer.Add(Run(peerOps, slice))
				}
				if i%2 == 1 {
					measure()
				}
			}
			if r.Errors > 0 {
				t.Close()
				dropSchema()
				return fmt.Errorf("%s %s: %d of %d requests failed; first: %v", st, sc.Name, r.Errors, r.Errors+r.Requests, r.FirstErr)
			}
			ceiling, osslRate, sigCPU, sigCsw := goC.rate(), "-", goC.cpu.per(), goC.cpu.cswPer()
			if osslCeil != nil {
				ceiling, sigCPU, sigCsw = osslC.rate(), osslC.cpu.per(), osslC.cpu.cswPer()
				osslRate = fmt.Sprintf("%.0f", ceiling)
			}
			frac := "-"
			if sc.Sigs > 0 {
				frac = fmt.Sprintf("%.0f%%", 100*r.Rate*float64(sc.Sigs)/ceiling)
			}
			// beside: the request's CPU less that of its signatures (at
			// the ceiling's CPU per signature, in the same run).
			beside, redisPer := "-", "-"
			if sc.Sigs > 0 {
				beside = micros(cpu.per() - time.Duration(sc.Sigs)*sigCPU)
			}
			if redisProc.pid != 0 && cpu.n > 0 {
				redisPer = micros(redisTook / time.Duration(cpu.n))
			}
			fmt.Printf("%-7s %-20s %9.0f %9s %9s %5d %9.0f %9s %10s %8s %8s %8s %7.2f %7.3f\n", st, sc.Name, r.Rate,
				r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), sc.Sigs, goC.rate(), osslRate, frac,
				micros(cpu.per()), beside, redisPer, cpu.cswPer(), sigCsw)
			if peerOps != nil {
				if peer.Errors > 0 {
					fmt.Printf("peer: %d of %d requests failed; first: %v\n", peer.Errors, peer.Errors+peer.Requests, peer.FirstErr)
				}
				fmt.Printf("%-7s %-20s %9.0f %9s %9s %5d %9s %9s %10s  (Aero2 %.2fx)\n", "peer", sc.Name, peer.Rate,
					peer.P50.Round(10*time.Microsecond), peer.P99.Round(10*time.Microsecond), 1, "", "", "", r.Rate/peer.Rate)
			}
		}
		t.Close()
		if st == "redis" || st == "combined" {
			cleanRedis(redisAddr, prefix)
		}
		dropSchema()
	}
	fmt.Println("\ngo ceil: crypto/rsa RS256 signatures/s on all cores (2048-bit key), measured in slices interleaved with each row's load;")
	fmt.Println("ossl ceil: the same with OpenSSL's EVP (built with -tags openssl only).")
	fmt.Println("of ceiling: req/s x signatures per request / the ceiling of the signer in use (ossl with -tags openssl, else go).")
	fmt.Println("cpu/req: this process's CPU time (server and load generator, every thread) per request, in µs; beside: cpu/req less the")
	fmt.Println("  CPU of the request's signatures (at the ceiling slices' CPU per signature); redis: the Redis server's CPU per request")
	fmt.Println("  (read from /proc when it runs on this machine). CPU time moves less than req/s when other jobs share the cores.")
	fmt.Println("csw/req: this process's context switches (voluntary and not, every thread) per request; csw/sig: the same per")
	fmt.Println("  signature in the slices of the ceiling in use.")
	fmt.Println("floor: net/http answering client-credentials requests with a JWT of the same size signed by the same signer, and")
	fmt.Println("  nothing else (bench/floor.go): the share of the ceiling any net/http server reaches with this load generator.")
	fmt.Println("Targets (issue 13): client_credentials >= 90% of the go ceiling, >= 80% of the ossl one; refresh_token >= 80%; introspection >= 5,000 req/s.")
	return nil
}

// ceilingSum adds up ceiling slices.
type ceilingSum struct {
	sigs int64
	took time.Duration
	cpu  cpuMeter // per signature
}

func (c *ceilingSum) add(ceil *Ceiling, d time.Duration) {
	c.cpu.measure(func() int64 {
		n, el := ceil.Measure(d)
		c.sigs, c.took = c.sigs+n, c.took+el
		return n
	})
}

// micros formats d in microseconds.
func micros(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }

func (c *ceilingSum) rate() float64 { return float64(c.sigs) / c.took.Seconds() }
