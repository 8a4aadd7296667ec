package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Most records and sets are short-lived state (login state, codes,
// tokens). A few are data of record that must never be lost; the
// backends that keep the two apart (store/postgres's typed tables,
// store/combined's durable backend) tell them by these keys.
const (
	// SigningKeysKey is the record that holds an application's token
	// signing keys, sealed with secrets.storage_key (authz/keys).
	SigningKeysKey = "signing-keys"
	// consentPrefix starts a consent set's key (ConsentKey).
	consentPrefix = "authz:consent:"
)

// ConsentKey names the set of scopes a user granted a client. The user
// ID's length is in the key, so no user/client pair can spell another's.
func ConsentKey(userID, clientID string) string {
	return fmt.Sprintf("%s%d:%s:%s", consentPrefix, len(userID), userID, clientID)
}

// ParseConsentKey splits a ConsentKey; ok is false for any other key.
func ParseConsentKey(key string) (userID, clientID string, ok bool) {
	rest, found := strings.CutPrefix(key, consentPrefix)
	if !found {
		return "", "", false
	}
	n, rest, found := strings.Cut(rest, ":")
	if !found {
		return "", "", false
	}
	l, err := strconv.Atoi(n)
	if err != nil || l < 0 || strconv.Itoa(l) != n || len(rest) < l+1 || rest[l] != ':' {
		return "", "", false
	}
	return rest[:l], rest[l+1:], true
}

// DurableRecord reports whether the record key is data of record.
func DurableRecord(key string) bool { return key == SigningKeysKey }

// DurableSet reports whether the set key is data of record (a consent).
func DurableSet(key string) bool {
	_, _, ok := ParseConsentKey(key)
	return ok
}

// Consent is one consent set as ConsentLister returns it.
type Consent struct {
	UserID, ClientID string
	Scopes           []string
	// TTL is the time the consent has left (0: no expiry).
	TTL time.Duration
}

// ConsentLister lists an application's live consents with the time they
// have left: what `aero2 store copy` needs beyond Admin (whose SetKeys
// names the sets but not their life).
type ConsentLister interface {
	// ListConsents returns every live consent of app.
	ListConsents(ctx context.Context, app string) ([]Consent, error)
}
