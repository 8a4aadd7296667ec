package main

import (
	"context"
	"testing"
)

// BenchmarkTokenRequests: one worker's requests of the token rows, one
// at a time, on the memory store, with the wire client. allocs/op and
// B/op are the whole process's (the server's, mostly: the wire client
// allocates little), so they count what a request costs beside its
// signatures, which ns/op (two cores, RSA) drowns.
//
//	go test -run '^$' -bench TokenRequests -benchmem -count 6 ./bench/
func BenchmarkTokenRequests(b *testing.B) {
	t, err := Start(context.Background(), StoreConfig("memory", "", "", ""), 1)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	for _, sc := range Scenarios {
		if sc.Name != "client_credentials" && sc.Name != "refresh_token" {
			continue
		}
		b.Run(sc.Name, func(b *testing.B) {
			ops, err := sc.Setup(t, 1)
			if err != nil {
				b.Fatal(err)
			}
			op := ops[0]
			b.ReportAllocs()
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
