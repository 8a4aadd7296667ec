package federation

import "strings"

// The account page names each session's browser the way people do
// ("Chrome on macOS") instead of showing its User-Agent header. A small
// table of tokens is enough for that label: it is never used to decide
// anything, and the header is attacker-chosen text (bounded by the
// session manager to 256 bytes, and only searched for fixed tokens here).
// A full parser library was weighed (github.com/medama-io/go-useragent):
// its trie takes about half a second and megabytes to build, for a label.

// browserTokens are checked in order: Chromium-based browsers also say
// "Chrome/", and nearly every browser says "Safari/", so the specific
// tokens come first.
var browserTokens = []struct{ token, name string }{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edge/", "Edge"},
	{"OPR/", "Opera"}, {"Opera", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"Vivaldi/", "Vivaldi"},
	{"YaBrowser/", "Yandex Browser"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"HeadlessChrome/", "Chrome"}, {"Chrome/", "Chrome"}, {"Chromium/", "Chromium"},
	{"Version/", "Safari"}, // Safari says Version/<its version> Safari/…
	{"curl/", "curl"},
}

// osTokens, in order: iPhones say "like Mac OS X", Android says "Linux",
// ChromeOS says "X11; CrOS".
var osTokens = []struct{ token, name string }{
	{"Windows", "Windows"},
	{"iPhone", "iOS"}, {"iPod", "iOS"}, {"iPad", "iPadOS"},
	{"Android", "Android"},
	{"CrOS", "ChromeOS"},
	{"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
	{"Linux", "Linux"}, {"FreeBSD", "FreeBSD"}, {"OpenBSD", "OpenBSD"},
}

// describeAgent names the browser of a User-Agent header for people:
// "Chrome on macOS", "Firefox", "a browser on Linux", or "an unknown
// browser".
func describeAgent(ua string) string {
	browser, os := "", ""
	for _, b := range browserTokens {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range osTokens {
		if strings.Contains(ua, o.token) {
			os = o.name
			break
		}
	}
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return "a browser on " + os
	}
	return "an unknown browser"
}
