package email

import "testing"

func TestParse(t *testing.T) {
	good := map[string]string{
		"alice@example.com":       "example.com",
		"Alice.B+tag@Example.COM": "example.com",
		"o'neil@sub.example.org":  "sub.example.org",
	}
	for in, dom := range good {
		a, err := Parse(in)
		if err != nil || a.Domain != dom {
			t.Errorf("Parse(%q) = %+v, %v; want domain %q", in, a, err, dom)
		}
	}
	for _, in := range []string{
		"", "alice", "@example.com", "alice@", "a@evil.com@company.com",
		"Alice <alice@company.com>", "alice@company.com (comment)", `"a@b"@company.com`,
		"alice@company.com.", "alice@localhost", "a..b@company.com", ".a@company.com",
		"a @company.com", "a@comp any.com", "a@-company.com", "a@company..com",
		"a\n@company.com", "a@company.com\n", "a@[127.0.0.1]", "a@company.com,b@evil.com",
		"a@xn--nxasmq6b.com\x00", "a@ex_ample.com",
	} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestEqual(t *testing.T) {
	if !Equal("Alice@Example.com", "alice@example.COM") {
		t.Error("case differences are the same mailbox")
	}
	for _, p := range [][2]string{{"a@x.com", "b@x.com"}, {"a@x.com", "a@y.com"}, {"bad", "bad"}, {"a@evil.com@x.com", "a@evil.com@x.com"}} {
		if Equal(p[0], p[1]) {
			t.Errorf("Equal(%q, %q)", p[0], p[1])
		}
	}
}
