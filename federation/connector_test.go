package federation

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestClientFollowsNoRedirects(t *testing.T) {
	var reached atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}))
	defer evil.Close()
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL+"/token", http.StatusTemporaryRedirect) // 307 re-sends the body
	}))
	defer idp.Close()

	c := Env{HTTPClient: &http.Client{}}.Client(0)
	if c.Timeout != DefaultTimeout {
		t.Errorf("timeout %s, want %s", c.Timeout, DefaultTimeout)
	}
	_, err := c.PostForm(idp.URL+"/token", url.Values{"client_secret": {"s3cret"}, "code": {"c"}})
	if err == nil || !strings.Contains(err.Error(), "not followed") {
		t.Errorf("redirected token request: %v", err)
	}
	if reached.Load() != 0 {
		t.Error("the client secret followed the redirect")
	}
}
