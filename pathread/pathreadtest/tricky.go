// Package pathreadtest holds the request targets that path tests and fuzz
// seeds share: ways to write a path that some common upstream reads as
// another one.
package pathreadtest

// AdminReadings are request targets that some common upstream reads as
// /admin/… or /desk/… while other readers see another route, with routes
// on /, /admin, /desk, /public and /static (the servlet fixture's).
var AdminReadings = []string{
	// Issue 8.
	"/public/..;/admin/secret", "/admin;x/secret",
	// Servlet path parameters, stripped per segment before dot segments
	// are resolved.
	"/static/..;/admin/secret", "/public/..;jsessionid=x/admin/secret", "/admin;jsessionid=ABC/secret",
	"/;x/admin/secret", "/public/.;/../admin/secret", "/public/..;/..;/admin/secret", "/public/..%3B/admin/secret",
	"/admin%3Bx/secret", "/public;x/..;/admin/secret", "/public/..;/ADMIN/secret",
	// Percent-decoding (once, twice), dot segments, encoded slashes.
	"/public/../admin/secret", "/public/%2e%2e/admin/secret", "/public/%2E%2E/admin/secret", "/public/.%2e/admin/secret",
	"/public/%252e%252e/admin/secret", "/%2561dmin/secret", "/%61dmin/secret", "/%2561%2564min/secret",
	"/public/..%2Fadmin/secret", "/public%2F..%2Fadmin/secret", "/public/..%5Cadmin/secret", "/admin%2Fsecret",
	"/admin%5Csecret", "/public/%2e%2e%2fadmin/secret", "/public/..%252fadmin/secret", "/x%3F/../admin/secret",
	"/x%23/../admin/secret", "//admin/secret", "/public//../admin/secret", "/public/./../admin/secret",
	// Case-insensitive file systems: case, trailing dots and spaces,
	// streams, Unicode folding (dotted and dotless i, long s, the Kelvin
	// sign, fullwidth letters).
	"/ADMIN/secret", "/Admin/secret", "/admin./secret", "/admin%20/secret", "/admin%2e/secret", "/admin.%20./secret",
	"/admin::$DATA/secret", "/ADM%C4%B0N/secret", "/adm%C4%B1n/secret", "/%EF%BD%81dmin/secret", "/%EF%BC%A1DMIN/secret",
	"/de%C5%BFk/x", "/DES%E2%84%AA/x", "/des%E2%84%AA/x",
	// Compatibility forms of '.', ':', ' ' and '/' (NFKC), which fold
	// before the file system rules apply.
	"/public/%EF%B8%B0/admin/secret", "/public/%EF%BC%8E%EF%BC%8E/admin/secret", "/ADMIN%EF%BC%8E/secret",
	"/admin%E3%80%80/secret", "/admin%EF%BC%9A%EF%BC%9A$DATA/secret", "/public%EF%BC%8F..%EF%BC%8Fadmin/secret",
}

// Benign are ordinary targets, some of them unusual, that must keep
// working.
var Benign = []string{
	"/", "/wiki/page", "/wiki/page;jsessionid=abc", "/public/x", "/wiki/a%20b", "/wiki/caf%C3%A9?x=%3F",
	"/admin/secret", "/admin/secret?q=1", "/admin/", "/static/app.js", "/wiki/a.b/c", "/wiki/%7Euser",
}
