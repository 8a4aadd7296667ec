package config

import "time"

// RateLimits limit requests per client address and per account or client
// (docs/config.md, "Rate limits"). Every limit is on by default with
// generous values; a zero Rate takes its default.
type RateLimits struct {
	// Disabled turns every limit off.
	Disabled bool `yaml:"disabled"`
	// SignIn: /rp/authorize and the identity providers' own pages (the
	// dev login).
	SignIn AddressLimit `yaml:"sign_in"`
	// Callback: /rp/callback/<idp>; per account: sign-ins completed by
	// one user.
	Callback AccountLimit `yaml:"callback"`
	// Authorize: /oauth2/authorize; per account: by one signed-in user.
	Authorize AccountLimit `yaml:"authorize"`
	// Token: /oauth2/token; per client: by one authenticated client.
	Token ClientLimit `yaml:"token"`
	// ClientAuthFailures: failed client authentications at the token,
	// introspection and revocation endpoints, per address and per client
	// ID. Once spent, those endpoints refuse the address (or the client
	// ID) before checking any secret.
	ClientAuthFailures ClientLimit `yaml:"client_auth_failures"`
	// Introspect, Revoke: /oauth2/introspect and /oauth2/revoke.
	Introspect ClientLimit `yaml:"introspect"`
	Revoke     ClientLimit `yaml:"revoke"`
	// ForwardAuthDenials: forward-auth answers other than 200 (sign-in
	// required, denied, bad token). Once spent, forward-auth refuses the
	// address before checking anything.
	ForwardAuthDenials AddressLimit `yaml:"forward_auth_denials"`
	// AnonymousState: records that a request without a session makes
	// Aero2 keep (parked authorization requests, sign-in states), per
	// address.
	AnonymousState AddressLimit `yaml:"anonymous_state"`
	// DeviceAuthorization: /oauth2/device_authorization (RFC 8628 §3.1).
	DeviceAuthorization ClientLimit `yaml:"device_authorization"`
	// UserCodeFailures: wrong user codes entered on the device page, per
	// address and per signed-in user. Once spent, the page refuses to
	// look codes up: what stops guessing another device's code.
	UserCodeFailures AccountLimit `yaml:"user_code_failures"`
}

// Rate is a rate limit: Burst requests at once, refilling at Requests per
// Per.
type Rate struct {
	Requests int           `yaml:"requests"`
	Per      time.Duration `yaml:"per"`
	// Burst defaults to Requests.
	Burst int `yaml:"burst"`
	// Unlimited turns this one limit off.
	Unlimited bool `yaml:"unlimited"`
}

// Off reports whether the rate limits nothing.
func (r Rate) Off() bool { return r.Unlimited || r.Requests <= 0 }

// AddressLimit is limited per client address only.
type AddressLimit struct {
	PerAddress Rate `yaml:"per_address"`
}

// AccountLimit is limited per client address and per user.
type AccountLimit struct {
	PerAddress Rate `yaml:"per_address"`
	PerAccount Rate `yaml:"per_account"`
}

// ClientLimit is limited per client address and per OAuth client.
type ClientLimit struct {
	PerAddress Rate `yaml:"per_address"`
	PerClient  Rate `yaml:"per_client"`
}

// RateLimitRule is one named limit: its rate per address, and per account
// or client (nil where it has none). Name is its key under
// server.rate_limits.
type RateLimitRule struct {
	Name       string
	Address    *Rate
	Subject    *Rate
	SubjectKey string // "per_account", "per_client" or ""
}

// Rules lists the limits, in the order of the file's keys.
func (r *RateLimits) Rules() []RateLimitRule {
	return []RateLimitRule{
		{"sign_in", &r.SignIn.PerAddress, nil, ""},
		{"callback", &r.Callback.PerAddress, &r.Callback.PerAccount, "per_account"},
		{"authorize", &r.Authorize.PerAddress, &r.Authorize.PerAccount, "per_account"},
		{"token", &r.Token.PerAddress, &r.Token.PerClient, "per_client"},
		{"client_auth_failures", &r.ClientAuthFailures.PerAddress, &r.ClientAuthFailures.PerClient, "per_client"},
		{"introspect", &r.Introspect.PerAddress, &r.Introspect.PerClient, "per_client"},
		{"revoke", &r.Revoke.PerAddress, &r.Revoke.PerClient, "per_client"},
		{"forward_auth_denials", &r.ForwardAuthDenials.PerAddress, nil, ""},
		{"anonymous_state", &r.AnonymousState.PerAddress, nil, ""},
		{"device_authorization", &r.DeviceAuthorization.PerAddress, &r.DeviceAuthorization.PerClient, "per_client"},
		{"user_code_failures", &r.UserCodeFailures.PerAddress, &r.UserCodeFailures.PerAccount, "per_account"},
	}
}

// DefaultRateLimits are generous: a person never meets them, and a busy
// backend behind one address rarely. docs/config.md repeats them.
func DefaultRateLimits() RateLimits {
	perMin := func(n int) Rate { return Rate{Requests: n, Per: time.Minute, Burst: n} }
	return RateLimits{
		SignIn:             AddressLimit{perMin(60)},
		Callback:           AccountLimit{perMin(60), perMin(30)},
		Authorize:          AccountLimit{perMin(300), perMin(120)},
		Token:              ClientLimit{perMin(1200), perMin(6000)},
		ClientAuthFailures: ClientLimit{perMin(20), perMin(60)},
		Introspect:         ClientLimit{perMin(3000), perMin(12000)},
		Revoke:             ClientLimit{perMin(300), perMin(1200)},
		ForwardAuthDenials: AddressLimit{perMin(300)},
		// The longest-lived anonymous record (a parked authorization
		// request) lives 15 minutes: an address has at most 100 + 300 ×
		// 1.5 = 550 of them at once.
		AnonymousState:      AddressLimit{Rate{Requests: 300, Per: 10 * time.Minute, Burst: 100}},
		DeviceAuthorization: ClientLimit{perMin(60), perMin(600)},
		// A user code has 20^8 ≈ 2^34.6 values: at 10 wrong guesses an
		// hour per address, finding one of even a thousand live codes
		// takes an address thousands of years.
		UserCodeFailures: AccountLimit{Rate{Requests: 10, Per: time.Hour, Burst: 10}, Rate{Requests: 10, Per: time.Hour, Burst: 10}},
	}
}

// Limits on the limits: a period of a day at most, and a bucket of a
// million.
const (
	maxRatePer   = 24 * time.Hour
	maxRateBurst = 1_000_000
)

func (r *RateLimits) applyDefaults() {
	def := DefaultRateLimits()
	defs := def.Rules()
	for i, rule := range r.Rules() {
		applyRateDefault(rule.Address, *defs[i].Address)
		if rule.Subject != nil {
			applyRateDefault(rule.Subject, *defs[i].Subject)
		}
	}
}

func applyRateDefault(r *Rate, def Rate) {
	if r.Unlimited {
		return
	}
	if r.Requests == 0 && r.Per == 0 && r.Burst == 0 {
		*r = def
		return
	}
	if r.Per == 0 {
		r.Per = def.Per
	}
	if r.Burst == 0 && r.Requests > 0 {
		r.Burst = r.Requests
	}
}

func (r *RateLimits) validate(ps *problems, prefix string) {
	for _, rule := range r.Rules() {
		validateRate(ps, rule.Address, prefix+rule.Name+".per_address")
		if rule.Subject != nil {
			validateRate(ps, rule.Subject, prefix+rule.Name+"."+rule.SubjectKey)
		}
	}
}

func validateRate(ps *problems, r *Rate, path string) {
	if r.Unlimited {
		if r.Requests != 0 || r.Per != 0 || r.Burst != 0 {
			ps.at(path+".unlimited", "cannot be combined with requests, per or burst")
		}
		return
	}
	switch {
	case r.Requests < 1:
		ps.at(path+".requests", "must be at least 1 (or set unlimited: true)")
	case r.Per < time.Second || r.Per > maxRatePer:
		ps.at(path+".per", "must be between 1s and %s, got %s", maxRatePer, r.Per)
	case r.Per/time.Duration(r.Requests) < time.Microsecond:
		ps.at(path+".requests", "more than one request per microsecond (%d per %s)", r.Requests, r.Per)
	}
	if r.Requests >= 1 && (r.Burst < 1 || r.Burst > maxRateBurst) {
		ps.at(path+".burst", "must be between 1 and %d, got %d", maxRateBurst, r.Burst)
	}
}
