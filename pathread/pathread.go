// Package pathread reads the path of a request target the way each common
// kind of upstream server reads it, so that a proxy can choose a route only
// when all of them agree.
//
// A proxy that matches routes on one reading of a path and forwards the
// path to an upstream that reads it another way lets a client choose the
// route: "/public/..;/admin" is under /public for Go, Node and nginx, and
// is /admin for Tomcat and Jetty, which strip ";parameters" before they
// resolve dot segments (issue 8). The readings here are:
//
//   - RFC 3986 (Go, Node, nginx, Envoy): percent-decoding, dot segments,
//     "%2F" either as data (Go's ServeMux, Express) or as "/" (nginx,
//     Apache with AllowEncodedSlashes On);
//   - servlet containers (Tomcat, Jetty, Spring): ";parameters" stripped
//     from every segment, before decoding (Tomcat, Jetty) or after it;
//   - case-insensitive file systems (Windows/IIS, macOS): "\" is "/",
//     trailing dots and spaces and ":stream" suffixes are dropped from
//     every segment, and case is folded (Unicode, compatibility forms too);
//   - double decoding (IIS once, and applications that decode a decoded
//     path again): "%2561" is "a".
//
// Read refuses what no reading can make safe (control characters, malformed
// or overlong encodings) and any path in which some reading finds a dot
// segment: that upstream would resolve it and land somewhere the others do
// not. This package knows nothing about routes.
package pathread

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Errors Read returns, wrapped with a detail.
var (
	// ErrInvalid: the path is not one that any upstream should be given
	// (no leading "/", control characters, a raw '\', '#' or '?', a
	// malformed or overlong percent-encoding, invalid UTF-8, an encoded
	// '?' or '#').
	ErrInvalid = errors.New("not a valid path")
	// ErrDotSegment: some reading, other than the plain RFC 3986 one,
	// finds a "." or ".." segment ("..;", "%252e%252e", ".. ", "..\").
	ErrDotSegment = errors.New("a segment that some servers resolve as a dot segment")
)

// Params says whether and when a reader strips ";parameters" from a
// segment.
type Params uint8

const (
	// ParamsKept: ';' is data (RFC 3986 readers).
	ParamsKept Params = iota
	// ParamsRaw: stripped before percent-decoding (Tomcat, Jetty).
	ParamsRaw
	// ParamsDecoded: stripped after percent-decoding (frameworks that
	// strip ";jsessionid" from the decoded path).
	ParamsDecoded
)

// Reader is one way an upstream reads a path. The zero Reader is the plain
// RFC 3986 reading: decode each segment once, '/' inside a segment is data,
// case matters.
type Reader struct {
	Params Params
	// Split: a decoded '/' or '\' separates segments.
	Split bool
	// Twice: each segment is percent-decoded a second time.
	Twice bool
	// Folded: case-insensitive file system rules. Implies Split; segments
	// lose trailing dots and spaces and any ":stream", and are folded
	// with Fold.
	Folded bool
}

func (rd Reader) String() string {
	var parts []string
	switch {
	case rd.Folded:
		parts = append(parts, "case-insensitive file system")
	case rd.Params != ParamsKept:
		parts = append(parts, "servlet container")
	default:
		parts = append(parts, "RFC 3986")
	}
	switch rd.Params {
	case ParamsRaw:
		parts = append(parts, ";params stripped")
	case ParamsDecoded:
		parts = append(parts, ";params stripped after decoding")
	}
	if rd.Split && !rd.Folded {
		parts = append(parts, "%2F as /")
	}
	if rd.Twice {
		parts = append(parts, "decoded twice")
	}
	return strings.Join(parts, ", ")
}

// Reading is a path as one reader sees it: its segments, decoded, without
// empty ones. A Folded reader's segments are folded; compare them with
// folded route segments.
type Reading struct {
	Reader   Reader
	Segments []string
}

// Path is an escaped path read every way.
type Path struct {
	// Escaped is the path Read was given.
	Escaped string
	// Clean is Escaped with the RFC 3986 reading's dot segments resolved
	// and empty segments removed (RFC 3986 §5.2.4), in its original
	// escaping. Readings are only computed when Clean == Escaped.
	Clean string
	// EncodedSlash: a percent-encoded '/' or '\' (%2F, %5C).
	EncodedSlash bool
	// Readings holds every distinct reading, the plain RFC 3986 one
	// first.
	Readings []Reading
	// readings backs Readings for the common path, read the plain way
	// and the file system's (they differ in Folded at least): Read runs
	// on every proxied request, and this spares it two allocations.
	readings [2]Reading
}

// Canonical reports whether the path has no dot segments and no empty
// segments (but a trailing slash) in the RFC 3986 reading.
func (p *Path) Canonical() bool { return p.Clean == p.Escaped }

// MaxLength is the longest path Read accepts: 8 KiB, the request-line
// limit of nginx and Tomcat. A longer path would be refused upstream, and
// reading it 18 ways would cost a client's bytes many times over.
const MaxLength = 8 << 10

// Read reads an escaped absolute path (no query): the path of a request
// target exactly as the upstream will receive it. A Path that is not
// Canonical carries only Clean; otherwise every reading is computed and
// checked, and an error means some reader would misread it.
func Read(escaped string) (*Path, error) {
	if escaped == "" || escaped[0] != '/' {
		return nil, fmt.Errorf("%w: it must start with '/'", ErrInvalid)
	}
	if len(escaped) > MaxLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLength)
	}
	for i := 0; i < len(escaped); i++ {
		switch c := escaped[i]; {
		case c <= ' ' || c == 0x7f:
			return nil, fmt.Errorf("%w: a control character or space", ErrInvalid)
		case c == '\\' || c == '#' || c == '?':
			// Windows and many servers read '\' as '/'; a raw '#' or '?'
			// ends the path for most readers but not all.
			return nil, fmt.Errorf("%w: a raw %q", ErrInvalid, c)
		case c == '%':
			if i+2 >= len(escaped) || !ishex(escaped[i+1]) || !ishex(escaped[i+2]) {
				return nil, fmt.Errorf("%w: a malformed percent-encoding", ErrInvalid)
			}
		}
	}
	raw := strings.Split(escaped[1:], "/")
	p := &Path{Escaped: escaped, Clean: escaped}
	plain := make([]string, 0, len(raw))
	canonical := true
	for i, s := range raw {
		d := decode(s)
		if d != s {
			if strings.ContainsAny(d, "?#") {
				// An upstream that decodes the path and builds a URL from
				// it again would cut it there.
				return nil, fmt.Errorf("%w: an encoded '?' or '#'", ErrInvalid)
			}
			if strings.ContainsAny(d, `/\`) {
				p.EncodedSlash = true
			}
		}
		if err := checkDecoded(d); err != nil {
			return nil, err
		}
		if d == "." || d == ".." || (d == "" && i < len(raw)-1) {
			canonical = false
		}
		if d != "" {
			plain = append(plain, d)
		}
	}
	rs := readers(escaped)
	segs, err := forms(raw, rs)
	if err != nil {
		return nil, err
	}
	if !canonical {
		// The clean form is offered only if every reader cleans the path
		// alike: "/public/.;/../admin" is /public/admin to RFC 3986
		// readers and /admin to Tomcat.
		p.Clean = clean(raw)
		if _, err := Read(p.Clean); err != nil {
			return nil, err
		}
		cleanSegs, _ := forms(strings.Split(p.Clean[1:], "/"), rs)
		for _, rd := range rs {
			got, err := rd.read(segs, true)
			if err != nil {
				return nil, err
			}
			want, _ := rd.read(cleanSegs, false)
			if !slices.Equal(got, want) {
				return nil, fmt.Errorf("%w: a %s resolves it to %q", ErrDotSegment, rd, "/"+strings.Join(got, "/"))
			}
		}
		return p, nil
	}
	p.Readings = append(p.readings[:0], Reading{Segments: plain})
	for _, rd := range rs {
		out, err := rd.read(segs, false)
		if err != nil {
			return nil, err
		}
		p.add(Reading{Reader: rd, Segments: out})
	}
	return p, nil
}

// readers returns the readers that may read escaped differently from the
// plain RFC 3986 reader: a reader option that cannot change anything for
// this path (no ';', nothing decoded twice, no encoded slash) is left out.
func readers(escaped string) []Reader {
	semi := strings.IndexByte(escaped, ';') >= 0
	if !semi && strings.IndexByte(escaped, '%') < 0 {
		return fileSystemOnly
	}
	twice := strings.Contains(escaped, "%25")
	encSemi, encSlash := false, false
	for i := 0; i+2 < len(escaped); i++ {
		if escaped[i] != '%' {
			continue
		}
		code := escaped[i+1 : i+3]
		if twice && code == "25" && i+4 < len(escaped) {
			code = escaped[i+3 : i+5] // %25XX is %XX once decoded
		}
		switch strings.ToUpper(code) {
		case "3B":
			encSemi = true
		case "2F", "5C":
			encSlash = true
		}
	}
	params := []Params{ParamsKept}
	if semi {
		params = append(params, ParamsRaw)
	}
	if semi || encSemi {
		params = append(params, ParamsDecoded)
	}
	decodes := []bool{false}
	if twice {
		decodes = append(decodes, true)
	}
	kinds := []Reader{{}, {Split: true, Folded: true}}
	if encSlash {
		kinds = append(kinds, Reader{Split: true})
	}
	rs := make([]Reader, 0, len(params)*len(decodes)*len(kinds))
	for _, pm := range params {
		for _, tw := range decodes {
			for _, k := range kinds {
				if pm == ParamsKept && !tw && k == (Reader{}) {
					continue // the plain reader
				}
				rs = append(rs, Reader{Params: pm, Twice: tw, Split: k.Split, Folded: k.Folded})
			}
		}
	}
	return rs
}

// fileSystemOnly are the readers of a path with nothing to decode and no
// parameters: only the file system rules can read it differently.
var fileSystemOnly = []Reader{{Split: true, Folded: true}}

// segment is a raw segment in the forms readers start from, each
// decoded once: as it is, and with ";params" cut off before decoding;
// each also decoded twice, when some reader does.
type segment struct {
	once, twice, cutOnce, cutTwice string
}

func forms(raw []string, rs []Reader) ([]segment, error) {
	twice, stripRaw := false, false
	for _, rd := range rs {
		twice = twice || rd.Twice
		stripRaw = stripRaw || rd.Params == ParamsRaw
	}
	segs := make([]segment, len(raw))
	for i, s := range raw {
		sg := &segs[i]
		sg.once = decode(s)
		sg.cutOnce = sg.once
		if stripRaw {
			sg.cutOnce = decode(cut(s, ';'))
		}
		sg.twice, sg.cutTwice = sg.once, sg.cutOnce
		if twice {
			for _, f := range []*string{&sg.twice, &sg.cutTwice} {
				if d := decode(*f); d != *f {
					if err := checkDecoded(d); err != nil {
						return nil, err
					}
					*f = d
				}
			}
		}
	}
	return segs, nil
}

// add appends rd unless an equal reading (same segments, both folded or
// both not) is there already.
func (p *Path) add(rd Reading) {
	for _, o := range p.Readings {
		if o.Reader.Folded == rd.Reader.Folded && slices.Equal(o.Segments, rd.Segments) {
			return
		}
	}
	p.Readings = append(p.Readings, rd)
}

// read applies rd to the segments of a path. With resolve, dot segments
// are resolved (RFC 3986 §5.2.4); without, one is an error.
func (rd Reader) read(segs []segment, resolve bool) ([]string, error) {
	out := make([]string, 0, len(segs))
	for _, sg := range segs {
		var d string
		switch {
		case rd.Params == ParamsRaw && rd.Twice:
			d = sg.cutTwice
		case rd.Params == ParamsRaw:
			d = sg.cutOnce
		case rd.Twice:
			d = sg.twice
		default:
			d = sg.once
		}
		parts := []string{d}
		if (rd.Split || rd.Folded) && strings.ContainsAny(d, `/\`) {
			parts = strings.FieldsFunc(d, func(r rune) bool { return r == '/' || r == '\\' })
		}
		for _, part := range parts {
			if rd.Params == ParamsDecoded {
				part = cut(part, ';')
			}
			dot := part
			if rd.Folded {
				// Fold first, then apply the file system's rules to what
				// folding made: compatibility forms fold to the very
				// bytes those rules act on ("︰" is "..", "．" is '.',
				// "：" is ':', U+3000 is ' ', "／" is '/'), and a server
				// that folds reads them so. Rules applied to the raw
				// segment would let "/︰/admin" walk up a directory and
				// "/ADMIN．/x" escape the admin route.
				folded := Fold(part)
				if strings.ContainsAny(folded, `/\`) {
					return nil, fmt.Errorf("%w: %q folds to a path separator (read by a %s)", ErrInvalid, part, rd)
				}
				// NTFS: "admin::$DATA" is the file admin; "admin." and
				// "admin " are admin; ".. " is "..", and "..." is
				// anyone's guess.
				part = cut(folded, ':')
				dot = strings.TrimRight(part, " ")
				if strings.Trim(part, ". ") == "" && strings.IndexByte(part, '.') >= 0 && dot != "." && dot != ".." {
					return nil, fmt.Errorf("%w (%q, read by a %s)", ErrDotSegment, part, rd)
				}
				part = strings.TrimRight(part, ". ")
			}
			switch {
			case dot == "." || dot == "..":
				if !resolve {
					return nil, fmt.Errorf("%w (%q, read by a %s)", ErrDotSegment, dot, rd)
				}
				if dot == ".." && len(out) > 0 {
					out = out[:len(out)-1]
				}
			case part != "":
				out = append(out, part)
			}
		}
	}
	return out, nil
}

// Fold is the case folding of a case-insensitive reader, as broad as any of
// them: compatibility forms are unified first (NFKC: fullwidth letters,
// ligatures, the Kelvin sign, and 'ℍ', which has no lower case until it is
// 'H'), then every rune is upper- then lower-cased one by one (Java's
// equalsIgnoreCase: 'İ' and 'ı' are 'i', 'ſ' is 's'), then Unicode full
// case folding ('ß' is "ss"), and NFKC again (folding "ΐ" decomposes it;
// "Ϊ́" folds composed). Two segments that some case-insensitive server
// takes for one name fold alike; folding more than any one server does
// only makes more paths ambiguous, never fewer.
func Fold(s string) string {
	ascii := true
	upper := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf {
			ascii = false
			break
		} else if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if ascii {
		if !upper {
			return s
		}
		return strings.ToLower(s)
	}
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, s)
	return norm.NFKC.String(cases.Fold().String(s))
}

// checkDecoded refuses decoded bytes that no upstream should be given:
// control characters (a NUL cuts a C string: "/admin%00.png") and bytes
// that are not UTF-8, overlong forms above all ("%C0%AE" is '.' to a lax
// decoder).
func checkDecoded(d string) error {
	for i := 0; i < len(d); i++ {
		if c := d[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: an encoded control character", ErrInvalid)
		}
	}
	if !utf8.ValidString(d) {
		return fmt.Errorf("%w: not UTF-8 once decoded", ErrInvalid)
	}
	return nil
}

// decode is unescape for a string that may hold no '%' at all.
func decode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	return unescape(s)
}

// unescape decodes %XX. Read has checked the first level; at the second
// ("%2561" decoded once is "%61"), a '%' without two hex digits stays, as
// lax decoders leave it.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// clean removes dot segments (RFC 3986 §5.2.4) and empty segments from raw
// segments, keeping each segment's escaping, and joins them again. A
// trailing slash (or a final dot segment) stays as "/".
func clean(raw []string) string {
	out := make([]string, 0, len(raw))
	trailing := false
	for _, s := range raw {
		d := decode(s)
		trailing = false
		switch d {
		case "":
			trailing = true
		case ".":
			trailing = true
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = true
		default:
			out = append(out, s)
		}
	}
	p := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		p += "/"
	}
	return p
}

func cut(s string, sep byte) string {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i]
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
