package freshdesk

// A small validating JSON reader used by the hand-written Ticket decoder
// (ticketdec.go). It mirrors encoding/json's semantics wherever they are
// observable: the same documents are rejected (syntax, nesting deeper than
// 10000, trailing data), strings are unescaped and invalid UTF-8 is replaced
// with U+FFFD exactly as encoding/json does, and object keys match struct
// fields exactly first, then case-insensitively (encoding/json's folding).
// FuzzTicketDecoderMatchesStd checks the equivalence.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNestingDepth is encoding/json's limit.
const maxNestingDepth = 10000

var errUnexpectedEOF = errors.New("unexpected end of JSON input")

type jsonReader struct {
	b     []byte
	i     int
	depth int
}

func (d *jsonReader) syntaxErr(what string) error {
	if d.i >= len(d.b) {
		return errUnexpectedEOF
	}
	return fmt.Errorf("invalid character %s %s (offset %d)", quoteChar(d.b[d.i]), what, d.i)
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// ws skips JSON whitespace.
func (d *jsonReader) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the current byte (after whitespace has been skipped), or 0 at
// the end of input.
func (d *jsonReader) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// end checks that only whitespace follows the top-level value.
func (d *jsonReader) end() error {
	d.ws()
	if d.i != len(d.b) {
		return d.syntaxErr("after top-level value")
	}
	return nil
}

// enter consumes '{' or '[' and tracks the nesting depth.
func (d *jsonReader) enter() error {
	d.i++
	d.depth++
	if d.depth > maxNestingDepth {
		return errors.New("exceeded max depth")
	}
	return nil
}

// next moves to the next element of the array or object just entered. n
// counts the elements seen so far. It returns false after consuming the
// closing bracket; otherwise d.i is at the element (or key) start.
func (d *jsonReader) next(closer byte, n *int) (bool, error) {
	d.ws()
	if d.i >= len(d.b) {
		return false, errUnexpectedEOF
	}
	c := d.b[d.i]
	if c == closer {
		d.i++
		d.depth--
		return false, nil
	}
	if *n > 0 {
		if c != ',' {
			return false, d.syntaxErr("after value")
		}
		d.i++
		d.ws()
		if d.i >= len(d.b) {
			return false, errUnexpectedEOF
		}
	}
	*n++
	return true, nil
}

// key reads an object key and the following colon; d.i is then at the
// value. The returned bytes may alias the input.
func (d *jsonReader) key() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.syntaxErr("looking for beginning of object key string")
	}
	k, err := d.strBytes()
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.peek() != ':' {
		return nil, d.syntaxErr("after object key")
	}
	d.i++
	d.ws()
	if d.i >= len(d.b) {
		return nil, errUnexpectedEOF
	}
	return k, nil
}

// isNull consumes a null literal if one is next.
func (d *jsonReader) isNull() (bool, error) {
	if d.peek() != 'n' {
		return false, nil
	}
	return true, d.lit("null")
}

func (d *jsonReader) lit(s string) error {
	for j := 0; j < len(s); j++ {
		if d.i >= len(d.b) {
			return errUnexpectedEOF
		}
		if d.b[d.i] != s[j] {
			return d.syntaxErr("in literal " + s)
		}
		d.i++
	}
	return nil
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special reports whether any byte of x is '"', '\\', a control character
// or non-ASCII (may report false positives, never false negatives).
func special(x uint64) bool {
	q := x ^ (lsb * '"')
	bs := x ^ (lsb * '\\')
	return ((q-lsb)&^q|(bs-lsb)&^bs|(x-lsb*0x20)|x)&msb != 0
}

// scanString validates the string at d.i (which must be '"') and returns
// its raw content, and whether it needs unquote (escapes or non-ASCII).
func (d *jsonReader) scanString() (content []byte, complex bool, err error) {
	b := d.b
	start := d.i + 1
	i := start
	for {
		for i+8 <= len(b) && !special(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			d.i = i
			return nil, false, errUnexpectedEOF
		}
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return b[start:i], complex, nil
		case c == '\\':
			complex = true
			if i+1 >= len(b) {
				d.i = len(b)
				return nil, false, errUnexpectedEOF
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := 2; j < 6; j++ {
					if i+j >= len(b) {
						d.i = len(b)
						return nil, false, errUnexpectedEOF
					}
					if !isHex(b[i+j]) {
						d.i = i + j
						return nil, false, d.syntaxErr("in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				d.i = i + 1
				return nil, false, d.syntaxErr("in string escape code")
			}
		case c < 0x20:
			d.i = i
			return nil, false, d.syntaxErr("in string literal")
		case c >= utf8.RuneSelf:
			complex = true
			i++
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// strBytes reads a string and returns its unquoted bytes; they alias the
// input when no unquoting was needed.
func (d *jsonReader) strBytes() ([]byte, error) {
	s, complex, err := d.scanString()
	if err != nil {
		return nil, err
	}
	if complex {
		s = []byte(unquoteJSON(s))
	}
	return s, nil
}

// str reads a string value.
func (d *jsonReader) str() (string, error) {
	s, complex, err := d.scanString()
	if err != nil {
		return "", err
	}
	if complex {
		return unquoteJSON(s), nil
	}
	return string(s), nil
}

// number validates a JSON number at d.i and returns its text.
func (d *jsonReader) number() ([]byte, error) {
	b := d.b
	start := d.i
	i := d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		d.i = i
		return nil, errUnexpectedEOF
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		d.i = i
		return nil, d.syntaxErr("in numeric literal")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			d.i = i
			return nil, errUnexpectedEOF
		}
		if !isDigit(b[i]) {
			d.i = i
			return nil, d.syntaxErr("after decimal point in numeric literal")
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			d.i = i
			return nil, errUnexpectedEOF
		}
		if !isDigit(b[i]) {
			d.i = i
			return nil, d.syntaxErr("in exponent of numeric literal")
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	d.i = i
	return b[start:i], nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skip validates any value at d.i and returns its raw bytes.
func (d *jsonReader) skip() ([]byte, error) {
	start := d.i
	if d.i >= len(d.b) {
		return nil, errUnexpectedEOF
	}
	switch c := d.b[d.i]; c {
	case '{':
		if err := d.enter(); err != nil {
			return nil, err
		}
		for n := 0; ; {
			more, err := d.next('}', &n)
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
			if _, err := d.key(); err != nil {
				return nil, err
			}
			if _, err := d.skip(); err != nil {
				return nil, err
			}
		}
	case '[':
		if err := d.enter(); err != nil {
			return nil, err
		}
		for n := 0; ; {
			more, err := d.next(']', &n)
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
			if _, err := d.skip(); err != nil {
				return nil, err
			}
		}
	case '"':
		if _, _, err := d.scanString(); err != nil {
			return nil, err
		}
	case 't':
		if err := d.lit("true"); err != nil {
			return nil, err
		}
	case 'f':
		if err := d.lit("false"); err != nil {
			return nil, err
		}
	case 'n':
		if err := d.lit("null"); err != nil {
			return nil, err
		}
	default:
		if c != '-' && !isDigit(c) {
			return nil, d.syntaxErr("looking for beginning of value")
		}
		if _, err := d.number(); err != nil {
			return nil, err
		}
	}
	return d.b[start:d.i], nil
}

// Typed readers. Each expects d.i at a value; null leaves the target
// unchanged (pointers and slices are set to nil by the callers), like
// encoding/json.

func (d *jsonReader) setString(p *string, field string) error {
	switch d.peek() {
	case '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		*p = s
		return nil
	case 'n':
		return d.lit("null")
	}
	return d.mismatch("string", field)
}

func (d *jsonReader) setStringPtr(p **string, field string) error {
	if null, err := d.isNull(); null || err != nil {
		*p = nil
		return err
	}
	if *p == nil {
		*p = new(string)
	}
	return d.setString(*p, field)
}

func (d *jsonReader) setInt64(p *int64, field string) error {
	switch c := d.peek(); {
	case c == '-' || isDigit(c):
		num, err := d.number()
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return fmt.Errorf("cannot unmarshal number %s into field %s of type int64", num, field)
		}
		*p = n
		return nil
	case c == 'n':
		return d.lit("null")
	}
	return d.mismatch("int64", field)
}

func (d *jsonReader) setInt64Ptr(p **int64, field string) error {
	if null, err := d.isNull(); null || err != nil {
		*p = nil
		return err
	}
	if *p == nil {
		*p = new(int64)
	}
	return d.setInt64(*p, field)
}

func (d *jsonReader) setInt(p *int, field string) error {
	var n int64
	if d.peek() == 'n' {
		return d.lit("null")
	}
	if err := d.setInt64(&n, field); err != nil {
		return err
	}
	if int64(int(n)) != n {
		return fmt.Errorf("cannot unmarshal number %d into field %s of type int", n, field)
	}
	*p = int(n)
	return nil
}

func (d *jsonReader) setIntPtr(p **int, field string) error {
	if null, err := d.isNull(); null || err != nil {
		*p = nil
		return err
	}
	if *p == nil {
		*p = new(int)
	}
	return d.setInt(*p, field)
}

func (d *jsonReader) setBool(p *bool, field string) error {
	switch d.peek() {
	case 't':
		*p = true
		return d.lit("true")
	case 'f':
		*p = false
		return d.lit("false")
	case 'n':
		return d.lit("null")
	}
	return d.mismatch("bool", field)
}

// setStrings decodes a []string with encoding/json's slice semantics:
// null gives nil, [] an empty non-nil slice, and elements are decoded into
// the existing backing array.
func (d *jsonReader) setStrings(p *[]string, field string) error {
	switch d.peek() {
	case 'n':
		*p = nil
		return d.lit("null")
	case '[':
	default:
		return d.mismatch("[]string", field)
	}
	if err := d.enter(); err != nil {
		return err
	}
	s := *p
	i := 0
	for n := 0; ; {
		more, err := d.next(']', &n)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if i < cap(s) {
			s = s[:i+1]
		} else {
			s = append(s[:i], "")
		}
		if err := d.setString(&s[i], field); err != nil {
			return err
		}
		i++
	}
	if i == 0 {
		s = []string{}
	} else {
		s = s[:i]
	}
	*p = s
	return nil
}

// mismatch reports a value of the wrong JSON type. The value is validated
// first so that a syntax error anywhere in the document wins, as in
// encoding/json.
func (d *jsonReader) mismatch(want, field string) error {
	at := d.i
	if _, err := d.skip(); err != nil {
		return err
	}
	return fmt.Errorf("cannot unmarshal JSON value at offset %d into field %s of type %s", at, field, want)
}

// unquoteJSON converts the content of a validated JSON string (without the
// quotes) into a string with encoding/json's rules: escapes are decoded,
// invalid UTF-8 and lone surrogates become U+FFFD. Runs between escapes are
// copied whole.
func unquoteJSON(s []byte) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			i = len(s)
		}
		writeUTF8(&sb, s[:i])
		s = s[i:]
		if len(s) == 0 {
			break
		}
		// s[0] is a backslash; scanString validated the escape.
		switch c := s[1]; c {
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			rr := getu4(s)
			s = s[6:]
			if utf16.IsSurrogate(rr) {
				rr1 := getu4(s)
				if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
					s = s[6:]
					sb.WriteRune(dec)
					continue
				}
				rr = unicode.ReplacementChar
			}
			sb.WriteRune(rr)
			continue
		default: // '"', '\\', '/'
			sb.WriteByte(c)
		}
		s = s[2:]
	}
	return sb.String()
}

// writeUTF8 writes s, replacing each byte of invalid UTF-8 with U+FFFD.
func writeUTF8(sb *strings.Builder, s []byte) {
	if utf8.Valid(s) {
		sb.Write(s)
		return
	}
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(s[:n])
		}
		s = s[n:]
	}
}

// getu4 decodes \uXXXX from the beginning of s, returning the hex value,
// or it returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendFolded appends encoding/json's folded form of a key to out: ASCII
// letters and Unicode runes upper-cased, so "ID", "Id" and "id" (and
// "ſubject") match the same field.
func appendFolded(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, unicode.ToUpper(r))
		i += n
	}
	return out
}

// foldTable maps folded field names to the exact names.
func foldTable(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[string(appendFolded(nil, []byte(n)))] = n
	}
	return m
}
