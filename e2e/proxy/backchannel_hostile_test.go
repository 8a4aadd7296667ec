package proxy_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/postgres/pgtest"
)

// The proxy's /.aero2/backchannel-logout takes a POST from anyone who can
// reach it: its body is bounded before it is parsed, a token that does
// not verify ends nothing, and one logout token has one effect however
// many times, and however concurrently, it is sent (Back-Channel Logout
// 1.0 §2.6: the jti is remembered).

// bclSetup is a proxy signed in as alice at provider session sid, and a
// logout token for it with the given jti.
type bclSetup struct {
	*setup
	b     *servertest.Browser
	token func(jti string, edit func(map[string]any)) string
}

func startBCL(t *testing.T, st store.Store, sid string) *bclSetup {
	t.Helper()
	s := start(t, st, routesYAML, nil)
	s.op.SetSessionID("u-alice", sid)
	b := servertest.NewBrowser(t)
	if p := b.Get(s.in.URL + "/app"); p.Status != 200 {
		t.Fatalf("sign-in: %d", p.Status)
	}
	_, idToken := s.op.Tokens(t)
	return &bclSetup{setup: s, b: b, token: func(jti string, edit func(map[string]any)) string {
		return s.op.Resign(t, idToken, "logout+jwt", func(c map[string]any) {
			for _, k := range []string{"nonce", "at_hash", "c_hash", "auth_time", "amr", "azp"} {
				delete(c, k)
			}
			c["jti"], c["sid"] = jti, sid
			c["events"] = map[string]any{backchannelEvent: map[string]any{}}
			c["iat"], c["exp"] = time.Now().Unix(), time.Now().Add(2*time.Minute).Unix()
			if edit != nil {
				edit(c)
			}
		})
	}}
}

// post sends body to the endpoint with content type ct and returns the
// status and the answer's body.
func postBCL(t *testing.T, base, ct string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/.aero2/backchannel-logout", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	return res.StatusCode, string(b)
}

const formCT = "application/x-www-form-urlencoded"

// onlyReader hides a reader's length, so the request is chunked.
type onlyReader struct{ io.Reader }

// TestBackchannelLogoutBoundsTheBody: a body over the bound is refused
// (400 invalid_request) whether its length is declared or chunked, even
// with a valid token inside; so is a body that is not a form. The
// session survives each; the same token, sent properly, ends it.
func TestBackchannelLogoutBoundsTheBody(t *testing.T) {
	s := startBCL(t, nil, "op-sid-body")
	good := s.token("jti-body", nil)
	form := "logout_token=" + url.QueryEscape(good)
	for name, c := range map[string]struct {
		ct   string
		body func() io.Reader
	}{
		"just over 16 KiB":     {formCT, func() io.Reader { return strings.NewReader(form + "&pad=" + strings.Repeat("x", 16<<10)) }},
		"10 MB":                {formCT, func() io.Reader { return strings.NewReader(form + "&pad=" + strings.Repeat("x", 10<<20)) }},
		"chunked, 1 MB":        {formCT, func() io.Reader { return onlyReader{strings.NewReader(form + "&pad=" + strings.Repeat("x", 1<<20))} }},
		"padding first":        {formCT, func() io.Reader { return strings.NewReader("pad=" + strings.Repeat("x", 20<<10) + "&" + form) }},
		"token over the bound": {formCT, func() io.Reader { return strings.NewReader("logout_token=" + good + strings.Repeat("A", 20<<10)) }},
		"JSON": {"application/json", func() io.Reader {
			b, _ := json.Marshal(map[string]string{"logout_token": good})
			return strings.NewReader(string(b))
		}},
		"no content type": {"", func() io.Reader { return strings.NewReader(form) }},
		"multipart": {"multipart/form-data; boundary=x", func() io.Reader {
			return strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"logout_token\"\r\n\r\n" + good + "\r\n--x--\r\n")
		}},
		"form with a bad escape":  {formCT, func() io.Reader { return strings.NewReader(form + "&x=%zz") }},
		"form with a NUL":         {formCT, func() io.Reader { return strings.NewReader(form + "\x00") }},
		"two tokens, one escaped": {formCT, func() io.Reader { return strings.NewReader(form + "&logout%5Ftoken=" + url.QueryEscape(good)) }},
	} {
		st, body := postBCL(t, s.in.URL, c.ct, c.body())
		if st != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
			t.Errorf("%s: %d %.200q, want 400 invalid_request", name, st, body)
		}
		if !admits(t, s.setup, s.b) {
			t.Fatalf("%s: the refused request ended the session", name)
		}
	}
	if st, body := postBCL(t, s.in.URL, formCT, strings.NewReader(form)); st != http.StatusOK {
		t.Fatalf("the same token, sent properly: %d %q", st, body)
	}
	if admits(t, s.setup, s.b) {
		t.Fatal("the session admits after its logout")
	}
}

// TestBackchannelLogoutConcurrentReplays: one logout token sent 32 times
// at once is accepted once; the others are refused as used before. On
// every store the proxy shares sessions in.
func TestBackchannelLogoutConcurrentReplays(t *testing.T) {
	run := func(t *testing.T, st store.Store) {
		s := startBCL(t, st, "op-sid-race")
		tok := s.token("jti-race", nil)
		const n = 32
		var wg sync.WaitGroup
		codes := make([]int, n)
		bodies := make([]string, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				codes[i], bodies[i] = postBCL(t, s.in.URL, formCT, strings.NewReader("logout_token="+url.QueryEscape(tok)))
			})
		}
		close(start)
		wg.Wait()
		ok, replay := 0, 0
		for i, c := range codes {
			switch {
			case c == http.StatusOK:
				ok++
			case c == http.StatusBadRequest && strings.Contains(bodies[i], "used before"):
				replay++
			default:
				t.Errorf("answer %d: %d %q", i, c, bodies[i])
			}
		}
		if ok != 1 || replay != n-1 {
			t.Errorf("%d accepted, %d refused as replays; want 1 and %d", ok, replay, n-1)
		}
		if admits(t, s.setup, s.b) {
			t.Error("the session admits after its logout")
		}
		// Different tokens (jti) for the same provider session, at once:
		// each is accepted, none fails (ending what has ended is done).
		b2 := servertest.NewBrowser(t)
		if p := b2.Get(s.in.URL + "/app"); p.Status != 200 {
			t.Fatalf("second sign-in: %d", p.Status)
		}
		for i := range n {
			wg.Go(func() {
				codes[i], bodies[i] = postBCL(t, s.in.URL, formCT, strings.NewReader("logout_token="+url.QueryEscape(s.token("jti-each-"+string(rune('a'+i)), nil))))
			})
		}
		wg.Wait()
		for i, c := range codes {
			if c != http.StatusOK {
				t.Errorf("distinct token %d: %d %q", i, c, bodies[i])
			}
		}
		if admits(t, s.setup, b2) {
			t.Error("the second session admits after its logouts")
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, nil) })
	t.Run("redis", func(t *testing.T) { run(t, servertest.SharedStore(t)) })
	t.Run("postgres", func(t *testing.T) { run(t, pgtest.New(t)) })
}

// TestBackchannelLogoutMalformedJWTs: tokens that are not JWTs, or that
// are JWTs only in shape, are 400 invalid_request and end nothing; none
// is a 500.
func TestBackchannelLogoutMalformedJWTs(t *testing.T) {
	s := startBCL(t, nil, "op-sid-jwt")
	good := s.token("jti-jwt", nil)
	p := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	payload, err := base64.RawURLEncoding.DecodeString(p[1])
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"four parts":            good + ".x",
		"two parts":             p[0] + "." + p[1],
		"only dots":             "..",
		"header not base64":     "!!!." + p[1] + "." + p[2],
		"payload not base64":    p[0] + ".%%%." + p[2],
		"payload padded":        p[0] + "." + p[1] + "==." + p[2],
		"payload not JSON":      p[0] + "." + b64([]byte("not json")) + "." + p[2],
		"payload an array":      p[0] + "." + b64([]byte(`[1,2]`)) + "." + p[2],
		"iss a number":          p[0] + "." + b64([]byte(`{"iss":1}`)) + "." + p[2],
		"header an array":       b64([]byte(`[]`)) + "." + p[1] + "." + p[2],
		"alg none":              b64([]byte(`{"alg":"none","typ":"logout+jwt"}`)) + "." + p[1] + ".",
		"alg HS256 with no key": b64([]byte(`{"alg":"HS256","typ":"logout+jwt"}`)) + "." + p[1] + "." + b64([]byte("sig")),
		"signature emptied":     p[0] + "." + p[1] + ".",
		"payload swapped":       p[0] + "." + b64(append(payload[:len(payload)-1:len(payload)-1], []byte(`,"sid":"other"}`)...)) + "." + p[2],
		"NUL bytes":             "\x00\x00.\x00.\x00",
		"a huge iss":            p[0] + "." + b64([]byte(`{"iss":"`+strings.Repeat("i", 12<<10)+`"}`)) + "." + p[2],
		"whitespace around":     " " + good + " ",
		"newline inside":        p[0] + "\n." + p[1] + "." + p[2],
	} {
		st, body := postBCL(t, s.in.URL, formCT, strings.NewReader("logout_token="+url.QueryEscape(tok)))
		if st != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
			t.Errorf("%s: %d %.200q, want 400 invalid_request", name, st, body)
		}
	}
	if !admits(t, s.setup, s.b) {
		t.Fatal("a malformed logout token ended the session")
	}
	if st, _ := postBCL(t, s.in.URL, formCT, strings.NewReader("logout_token="+url.QueryEscape(good))); st != http.StatusOK {
		t.Fatalf("the good token after them: %d", st)
	}
}
