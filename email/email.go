// Package email parses email addresses strictly, for access decisions.
//
// net/mail accepts display names, comments, quoted local parts and
// routes, so "a@evil.com@company.com" or "x <a@company.com>" can smuggle a
// domain past a naive check. Parse accepts only a bare addr-spec with one
// '@', a dot-atom local part and a host name, and lower-cases the domain.
package email

import (
	"errors"
	"strings"
)

// ErrInvalid is returned for anything but a plain address.
var ErrInvalid = errors.New("email: not a plain address")

// maxLen is RFC 5321 §4.5.3.1.3's path limit.
const maxLen = 254

// Address is a parsed address.
type Address struct {
	Local  string // as given (local parts are case-sensitive in theory)
	Domain string // lower-case, without a trailing dot
}

// String is local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// Parse accepts "local@domain" only.
func Parse(s string) (Address, error) {
	if s == "" || len(s) > maxLen || strings.Count(s, "@") != 1 {
		return Address{}, ErrInvalid
	}
	local, domain, _ := strings.Cut(s, "@")
	if !dotAtom(local) || len(local) > 64 {
		return Address{}, ErrInvalid
	}
	domain = strings.ToLower(domain)
	if !hostname(domain) {
		return Address{}, ErrInvalid
	}
	return Address{Local: local, Domain: domain}, nil
}

// Domain returns the lower-cased domain of a plain address.
func Domain(s string) (string, error) {
	a, err := Parse(s)
	return a.Domain, err
}

// Equal reports whether two plain addresses are the same mailbox: the
// domain compared case-insensitively, the local part too (every provider
// Aero2 talks to treats it so). Invalid addresses are never equal.
func Equal(a, b string) bool {
	x, err1 := Parse(a)
	y, err2 := Parse(b)
	return err1 == nil && err2 == nil && strings.EqualFold(x.Local, y.Local) && x.Domain == y.Domain
}

// atext of RFC 5322 §3.2.3, without the characters that confuse parsers
// further down the line is not our business: it is the RFC's set.
func atext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !atext(s[i]) {
			return false
		}
	}
	return true
}

// hostname accepts LDH labels separated by dots, at least two labels.
func hostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
