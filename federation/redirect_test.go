package federation

import "testing"

func TestRedirects(t *testing.T) {
	rd := NewRedirects("https://auth.example.com", []string{"https://app.example.com"})
	for target, want := range map[string]bool{
		"/dashboard":                            true,
		"/a?b=c#d":                              true,
		"https://auth.example.com/account":      true,
		"https://AUTH.example.com/account":      true,
		"https://app.example.com/x":             true,
		"https://evil.example":                  false,
		"//evil.example":                        false,
		`/\evil.example`:                        false,
		`\\evil.example`:                        false,
		"/\t/evil.example":                      false,
		"javascript:alert(1)":                   false,
		"JavaScript:alert(1)":                   false,
		"data:text/html,x":                      false,
		"http://app.example.com/x":              false, // scheme is part of the origin
		"https://app.example.com.evil.example":  false,
		"https://auth.example.com@evil.example": false,
		"evil.example":                          false,
		"":                                      false,
	} {
		if got := rd.Allowed(target); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", target, got, want)
		}
	}
}
