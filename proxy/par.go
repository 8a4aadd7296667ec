package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxPARResponse bounds a PAR answer: a request_uri and a number.
const maxPARResponse = 16 << 10

// ErrProviderUnavailable: the provider answered 503 (its store is down,
// say); the sign-in can be retried shortly.
var ErrProviderUnavailable = errors.New("proxy: the provider is temporarily unavailable")

// pushAuthorization pushes the sign-in's authorization request to the
// provider's PAR endpoint (RFC 9126) and returns the URL to send the
// browser to: the authorization endpoint with only client_id and the
// request_uri. The parameters — redirect URI, state, nonce, PKCE
// challenge — then never pass through the browser, where they could be
// read or changed. The client authenticates as at the token endpoint:
// HTTP Basic, then (as x/oauth2 does for tokens) the form when Basic is
// refused; a client without a secret sends its client_id.
func (p *OIDCProvider) pushAuthorization(ctx context.Context, d *discovered, params url.Values) (string, error) {
	params.Set("client_id", p.cfg.ClientID)
	post := func(basic bool) (*http.Response, error) {
		form := url.Values{}
		for k, v := range params {
			form[k] = v
		}
		if !basic && p.cfg.ClientSecret != "" {
			form.Set("client_secret", p.cfg.ClientSecret)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.par, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if basic {
			req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret))
		}
		return p.cfg.HTTPClient.Do(req)
	}
	basic := p.cfg.ClientSecret != ""
	res, err := post(basic)
	if err == nil && basic && res.StatusCode == http.StatusUnauthorized {
		res.Body.Close()
		res, err = post(false)
	}
	if err != nil {
		return "", fmt.Errorf("pushed authorization request: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPARResponse))
	if err != nil {
		return "", fmt.Errorf("pushed authorization request: %w", err)
	}
	var out struct {
		RequestURI string `json:"request_uri"`
		Error      string `json:"error"`
		Desc       string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &out)
	if res.StatusCode == http.StatusServiceUnavailable {
		return "", fmt.Errorf("pushed authorization request: %w", ErrProviderUnavailable)
	}
	if res.StatusCode != http.StatusCreated || out.RequestURI == "" {
		return "", fmt.Errorf("pushed authorization request: status %d %s %s", res.StatusCode, out.Error, out.Desc)
	}
	u, err := url.Parse(d.oauth.Endpoint.AuthURL)
	if err != nil {
		return "", fmt.Errorf("authorization endpoint: %w", err)
	}
	q := u.Query()
	q.Set("client_id", p.cfg.ClientID)
	q.Set("request_uri", out.RequestURI)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
