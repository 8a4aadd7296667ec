package authz

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestKnownParamsDropUnknownAndBoundKnown(t *testing.T) {
	in := url.Values{"client_id": {"app"}, "state": {"s"}, "junk": {strings.Repeat("x", 60<<10)}, "resume": {"r"}}
	got, err := knownParams(in)
	if err != nil || len(got) != 2 || got.Get("client_id") != "app" || got.Get("state") != "s" {
		t.Fatalf("knownParams = %v, %v: want client_id and state only", got, err)
	}
	for k, limit := range authorizeParams {
		if _, err := knownParams(url.Values{k: {strings.Repeat("a", limit)}}); err != nil {
			t.Errorf("%s of %d bytes refused: %v", k, limit, err)
		}
		if _, err := knownParams(url.Values{k: {strings.Repeat("a", limit+1)}}); err == nil {
			t.Errorf("%s of %d bytes accepted", k, limit+1)
		}
	}
	// Every parameter that can be parked, at its limit, parks within
	// maxPendingBytes (request and request_uri are refused before).
	all := url.Values{}
	for k, limit := range authorizeParams {
		if k != "request" && k != "request_uri" {
			all.Set(k, strings.Repeat("a", limit))
		}
	}
	data, err := json.Marshal(pending{Params: all, Started: time.Now()})
	if err != nil || len(data) > maxPendingBytes {
		t.Fatalf("every parameter at its limit parks %d bytes, more than %d", len(data), maxPendingBytes)
	}
}
