package reqlog

import (
	"context"
	"sync"
	"testing"
)

func TestNoteRecordsIdentifiersOnly(t *testing.T) {
	// Without a Note (a handler called directly), nothing happens.
	SetUser(context.Background(), "u1")
	SetClient(context.Background(), "c1")
	SetChecked(context.Background(), "GET", "h", "/")

	n := &Note{}
	ctx := With(context.Background(), n)
	if n.User() != "" || n.Client() != "" || n.Checked() != nil {
		t.Fatalf("new note not empty: %+v", n)
	}
	var wg sync.WaitGroup
	for range 4 { // from several goroutines of one request
		wg.Add(1)
		go func() {
			defer wg.Done()
			SetUser(ctx, "u1")
			SetClient(ctx, "c1")
		}()
	}
	wg.Wait()
	SetUser(ctx, "") // an empty ID keeps what is known
	SetChecked(ctx, "POST", "app.example.com", "/x")
	if n.User() != "u1" || n.Client() != "c1" || *n.Checked() != (Checked{"POST", "app.example.com", "/x"}) {
		t.Errorf("note = %q %q %+v", n.User(), n.Client(), n.Checked())
	}
}
