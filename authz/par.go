package authz

// parPath is the pushed authorization request endpoint (RFC 9126).
const parPath = "/oauth2/par"
