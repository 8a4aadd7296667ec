package authz

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aero2/aero2/config"
)

// subjectNamer gives the sub a client sees for a user (OIDC Core §8).
// Public: the user's ID. Pairwise (§8.1): HMAC-SHA256, under a key derived
// from the configured secrets, of the client's sector and the user's ID —
// the same for every client of one sector, different across sectors (two
// sectors cannot join their users on sub), and computed, not stored, so it
// is the same on every replica and on every refresh.
type subjectNamer struct {
	pairwise bool
	sector   string
	key      []byte
}

func newSubjectNamer(cc *config.Client, key []byte) subjectNamer {
	if cc.SubjectType != config.SubjectPairwise {
		return subjectNamer{}
	}
	sector := cc.SectorHost()
	if sector == "" {
		// No redirect URIs (a device or service client) and no
		// sector_identifier_uri: the client is its own sector. The prefix
		// keeps a client ID from spelling a host.
		sector = "client " + cc.ID
	}
	return subjectNamer{pairwise: true, sector: sector, key: key}
}

// subject is userID as the client sees it.
func (n subjectNamer) subject(userID string) string {
	if !n.pairwise {
		return userID
	}
	m := hmac.New(sha256.New, n.key)
	// Length-prefixed, so that no sector and user ID pair spells another.
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(n.sector)))
	m.Write(l[:])
	m.Write([]byte(n.sector))
	m.Write([]byte(userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sectorCheck verifies a pairwise client's sector_identifier_uri (OIDC
// Core §8.1): a JSON array of URLs that must include every redirect URI of
// the client, fetched over https. Without the check, a client could name
// another's sector and get the same subjects, and so correlate users
// across the two. Checked on first use, and again after a failure at
// most once a minute; a client whose check fails gets no authorization.
type sectorCheck struct {
	uri       string
	redirects []string
	http      *http.Client
	now       func() time.Time

	mu     sync.Mutex
	ok     bool
	failed time.Time
	err    error
}

const maxSectorBytes = 64 << 10

func (s *sectorCheck) verify(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok {
		return nil
	}
	if !s.failed.IsZero() && s.now().Sub(s.failed) < time.Minute {
		return s.err
	}
	err := s.fetch(ctx)
	if err != nil {
		s.failed, s.err = s.now(), err
		return err
	}
	s.ok = true
	return nil
}

func (s *sectorCheck) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksTimeout)
	defer cancel()
	body, err := fetchClientDocument(ctx, s.http, s.uri, "application/json", maxSectorBytes)
	if err != nil {
		return fmt.Errorf("sector_identifier_uri: %w", err)
	}
	var uris []string
	if err := json.Unmarshal(body, &uris); err != nil {
		return fmt.Errorf("sector_identifier_uri: not a JSON array of URLs: %w", err)
	}
	for _, r := range s.redirects {
		if !slices.Contains(uris, r) {
			return fmt.Errorf("sector_identifier_uri does not list the redirect URI %s", r)
		}
	}
	return nil
}
