package classify

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Input bounds. A ticket body can be anything a mail client produced,
// including a multi-megabyte HTML newsletter or an attachment pasted as
// text. Only the beginning of a ticket carries its topic, so normalisation
// reads at most MaxRawBytes of raw input and keeps at most MaxTextBytes of
// text; the work per ticket is therefore bounded whatever the input size.
const (
	MaxRawBytes  = 256 << 10
	MaxTextBytes = 64 << 10
)

// Placeholders replace tokens whose exact value says nothing about the
// ticket's class but whose presence does.
const (
	PlaceholderURL    = "_url_"
	PlaceholderEmail  = "_email_"
	PlaceholderNumber = "_num_"
)

// Normalize turns a ticket subject or body (plain text or HTML) into the
// canonical text the features are computed from: markup removed, quoted
// replies and signatures stripped where detectable, Unicode NFKC, case
// folded, URLs, e-mail addresses and numbers replaced by placeholders, and
// whitespace collapsed to single spaces. It accepts any byte sequence
// (invalid UTF-8 and control bytes are replaced) and runs in time and memory
// bounded by MaxRawBytes whatever the input length.
func Normalize(s string) string {
	return string(normalizeAppend(nil, s))
}

// normalizeAppend appends Normalize(s) to dst.
func normalizeAppend(dst []byte, s string) []byte {
	s = truncateUTF8(s, MaxRawBytes)
	if looksLikeHTML(s) {
		s = htmlToText(s, MaxTextBytes)
	} else {
		s = truncateUTF8(s, MaxTextBytes)
	}
	s = sanitize(s)
	if !isASCII(s) && !norm.NFKC.IsNormalString(s) {
		s = norm.NFKC.String(s)
	}
	s = stripQuotesAndSignature(s)
	if isASCII(s) {
		s = strings.ToLower(s)
	} else {
		s = cases.Fold().String(s)
	}
	return appendPlaceholdered(dst, s)
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
// CutRaw cuts s to the classifier's raw input limit (MaxRawBytes) at a
// UTF-8 boundary; cut reports whether anything was removed. Stages that
// carry ticket text cut it with this before passing it on: the classifier
// never reads past the limit, and a multi-megabyte e-mail body would
// otherwise ride through every message and example.
func CutRaw(s string) (out string, cut bool) {
	out = truncateUTF8(s, MaxRawBytes)
	return out, len(out) < len(s)
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// sanitize replaces invalid UTF-8, NUL and other control characters (except
// newline and tab, which the quote detection needs) with spaces. Binary
// content thus degrades to a few meaningless tokens instead of an error.
func sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f {
				clean = false
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unicode.IsControl(r) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f {
				b.WriteByte(' ')
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unicode.IsControl(r) {
			b.WriteByte(' ')
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// htmlTags that mark a text as HTML. Plain text rarely contains them, while a
// bare "<" (as in "a < b" or "<john@example.com>") must not send the text
// through the HTML tokenizer, which would drop it as a tag.
var htmlMarkers = []string{
	"<html", "<body", "<div", "<p>", "<p ", "<br", "<span", "<table", "<td",
	"<tr", "<li", "<ul", "<ol", "<a href", "<img", "<!doctype", "<font",
	"<b>", "<i>", "<strong", "<em>", "<h1", "<h2", "<h3", "<blockquote",
	"<style", "<script", "<meta", "<head", "<!--", "</",
}

func looksLikeHTML(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '<' {
			continue
		}
		rest := s[i:]
		for _, m := range htmlMarkers {
			if len(rest) >= len(m) && strings.EqualFold(rest[:len(m)], m) {
				return true
			}
		}
	}
	return false
}

// skipElements hold no ticket text (or, for blockquote, the quoted
// previous message).
var skipElements = map[string]bool{
	"script": true, "style": true, "head": true, "title": true,
	"noscript": true, "template": true, "blockquote": true, "svg": true,
	"object": true, "iframe": true,
}

var blockElements = map[string]bool{
	"p": true, "div": true, "br": true, "li": true, "tr": true, "h1": true,
	"h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "table": true,
	"ul": true, "ol": true, "hr": true, "pre": true, "section": true,
	"article": true, "header": true, "footer": true, "dd": true, "dt": true,
}

// quoteContainers are the class/id markers mail clients put on the element
// wrapping a quoted previous message.
var quoteContainers = []string{"gmail_quote", "moz-cite-prefix", "divrplyfwdmsg", "yahoo_quoted", "appendonsend"}

// htmlToText extracts the visible text of an HTML document, with line breaks
// at block elements, stopping after limit bytes of text.
func htmlToText(s string, limit int) string {
	z := html.NewTokenizer(strings.NewReader(s))
	z.SetMaxBuf(MaxRawBytes)
	var b strings.Builder
	skipTag := ""
	skipDepth := 0
	cutAll := false
	for b.Len() < limit && !cutAll {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skipDepth == 0 {
				t := z.Text()
				if room := limit - b.Len(); len(t) > room {
					t = t[:room]
				}
				b.Write(t)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			if skipDepth > 0 {
				if tag == skipTag && tt == html.StartTagToken {
					skipDepth++
				}
				continue
			}
			if blockElements[tag] {
				b.WriteByte('\n')
			} else if tag == "td" || tag == "th" {
				b.WriteByte(' ')
			}
			if tt == html.SelfClosingTagToken || isVoid(tag) {
				continue
			}
			if skipElements[tag] {
				skipTag, skipDepth = tag, 1
				continue
			}
			for hasAttr {
				var key, val []byte
				key, val, hasAttr = z.TagAttr()
				k := string(key)
				if k != "class" && k != "id" {
					continue
				}
				v := strings.ToLower(string(val))
				for _, q := range quoteContainers {
					if strings.Contains(v, q) {
						// Everything from the quoted message on is history.
						cutAll = true
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if skipDepth > 0 {
				if tag == skipTag {
					skipDepth--
				}
				continue
			}
			if blockElements[tag] {
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

func isVoid(tag string) bool {
	switch tag {
	case "br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr", "param", "track":
		return true
	}
	return false
}

// Closing phrases that start a signature when they stand alone on a line.
var closingPhrases = map[string]bool{
	"best regards": true, "kind regards": true, "warm regards": true, "regards": true,
	"best wishes": true, "many thanks": true, "thanks and regards": true,
	"thanks & regards": true, "thanks": true, "thank you": true, "thanks in advance": true,
	"sincerely": true, "yours sincerely": true, "yours faithfully": true, "cheers": true,
	"mit freundlichen grüßen": true, "mit freundlichen grüssen": true, "mit freundlichem gruß": true,
	"freundliche grüße": true, "freundliche grüsse": true, "viele grüße": true, "viele grüsse": true,
	"beste grüße": true, "beste grüsse": true, "liebe grüße": true, "liebe grüsse": true,
	"gruß": true, "grüße": true, "lg": true, "mfg": true, "vielen dank": true, "danke": true,
	"cordialement": true, "bien cordialement": true, "bien à vous": true, "salutations": true,
	"meilleures salutations": true, "sincères salutations": true, "merci": true,
	"merci d'avance": true, "saludos": true, "atentamente": true, "cordiali saluti": true,
	"met vriendelijke groet": true, "groeten": true,
}

// Lines a mobile mail client appends.
var sentFromPrefixes = []string{"sent from my ", "von meinem ", "envoyé de mon ", "get outlook for "}

// maxSignatureLines bounds how much text after a closing phrase is taken
// for a signature; more than that is likely content and is kept.
const maxSignatureLines = 12

// headerStarts begin an embedded header block of a quoted message, and
// headerFollows are the header names expected right after it.
var (
	headerStarts  = []string{"from:", "von:", "de:", "de :"}
	headerFollows = []string{"sent:", "date:", "to:", "subject:", "cc:", "gesendet:", "datum:", "an:", "betreff:", "envoyé :", "envoyé:", "à :", "à:", "objet :", "objet:", "date :"}
)

// stripQuotesAndSignature removes the quoted previous messages and the
// signature of an e-mail. It is conservative: when stripping would leave
// nothing, the text is kept as it was (a forwarded message is then still
// classified by its content).
func stripQuotesAndSignature(s string) string {
	if !strings.ContainsAny(s, "\n>") && !strings.Contains(s, "--") {
		// A single line without quote markers: the common case for
		// short tickets and for the benchmark datasets.
		return s
	}
	lines := strings.Split(s, "\n")
	var lower []string
	for _, l := range lines {
		lower = append(lower, strings.ToLower(strings.TrimSpace(l)))
	}
	keep := make([]bool, len(lines))
	end := len(lines)
	for i := 0; i < end; i++ {
		l := lower[i]
		keep[i] = true
		if strings.HasPrefix(l, ">") {
			keep[i] = false
			continue
		}
		if isQuoteIntro(l, lower, i) {
			end = i
			break
		}
	}
	body := collect(lines, keep, end)
	if strings.TrimSpace(body) == "" {
		return s
	}
	// Signature: the last "-- " separator or closing phrase near the end.
	sig := -1
	for i := 0; i < end; i++ {
		if !keep[i] {
			continue
		}
		l := lower[i]
		if strings.TrimRight(lines[i], " \t\r") == "--" || strings.TrimRight(lines[i], "\t\r") == "-- " {
			sig = i
			break
		}
		if hasAnyPrefix(l, sentFromPrefixes) && end-i <= 3 {
			sig = i
			break
		}
		p := strings.TrimRight(l, ",.!:; ")
		if closingPhrases[p] && end-i-1 <= maxSignatureLines {
			sig = i
			break
		}
	}
	if sig >= 0 {
		if withoutSig := collect(lines, keep, sig); strings.TrimSpace(withoutSig) != "" {
			return withoutSig
		}
	}
	return body
}

func isQuoteIntro(l string, lower []string, i int) bool {
	if strings.Contains(l, "-----") || strings.Contains(l, "_____") {
		for _, m := range []string{"original message", "ursprüngliche nachricht", "message d'origine", "original-nachricht", "originalnachricht"} {
			if strings.Contains(l, m) {
				return true
			}
		}
	}
	if strings.HasPrefix(l, "on ") {
		if strings.HasSuffix(l, "wrote:") {
			return true
		}
		if i+1 < len(lower) && strings.HasSuffix(lower[i+1], "wrote:") && !strings.Contains(l, ".") {
			return true
		}
	}
	if strings.HasPrefix(l, "am ") && strings.Contains(l, "schrieb") && strings.HasSuffix(l, ":") {
		return true
	}
	if strings.HasPrefix(l, "le ") && strings.Contains(l, "a écrit") && strings.HasSuffix(l, ":") {
		return true
	}
	if hasAnyPrefix(l, headerStarts) {
		for j := i + 1; j < len(lower) && j <= i+4; j++ {
			if hasAnyPrefix(lower[j], headerFollows) {
				return true
			}
		}
	}
	return false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func collect(lines []string, keep []bool, end int) string {
	var b strings.Builder
	for i := 0; i < end; i++ {
		if keep[i] {
			b.WriteString(lines[i])
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// appendPlaceholdered appends s with whitespace collapsed, whitespace-
// delimited URLs and e-mail addresses replaced by placeholders, and digit
// runs not attached to letters replaced by PlaceholderNumber. s must already
// be case folded.
func appendPlaceholdered(dst []byte, s string) []byte {
	start := len(dst)
	for i := 0; i < len(s); {
		// Skip whitespace.
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		j := i
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if unicode.IsSpace(r) {
				break
			}
			j += size
		}
		chunk := s[i:j]
		i = j
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		dst = appendChunk(dst, chunk)
	}
	return dst
}

func appendChunk(dst []byte, chunk string) []byte {
	core := strings.TrimFunc(chunk, func(r rune) bool {
		return strings.ContainsRune("<>()[]{}\"'.,;:!?", r)
	})
	if isURL(core) {
		return append(dst, PlaceholderURL...)
	}
	if isEmail(core) {
		return append(dst, PlaceholderEmail...)
	}
	// Numbers: a digit run, possibly with inner separators, not touching a
	// letter, becomes one placeholder ("10.5.2024" and "1,200" alike).
	for k := 0; k < len(chunk); {
		c := chunk[k]
		if c >= '0' && c <= '9' && (k == 0 || !isWordByteBefore(chunk, k)) {
			e := k
			for e < len(chunk) {
				d := chunk[e]
				if d >= '0' && d <= '9' {
					e++
					continue
				}
				if (d == '.' || d == ',' || d == ':' || d == '/' || d == '-') && e+1 < len(chunk) && chunk[e+1] >= '0' && chunk[e+1] <= '9' {
					e++
					continue
				}
				break
			}
			if e == len(chunk) || !isWordByteAt(chunk, e) {
				dst = append(dst, PlaceholderNumber...)
				k = e
				continue
			}
			dst = append(dst, chunk[k:e]...)
			k = e
			continue
		}
		dst = append(dst, c)
		k++
	}
	return dst
}

// isWordByteBefore reports whether the rune ending just before byte k is a
// letter or digit (so the digits at k belong to a word like "win10").
func isWordByteBefore(s string, k int) bool {
	r, _ := utf8.DecodeLastRuneInString(s[:k])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func isWordByteAt(s string, k int) bool {
	r, _ := utf8.DecodeRuneInString(s[k:])
	return unicode.IsLetter(r)
}

func isURL(s string) bool {
	if strings.HasPrefix(s, "www.") && len(s) > 6 {
		return true
	}
	i := strings.Index(s, "://")
	if i <= 0 || i+3 >= len(s) {
		return false
	}
	for _, c := range s[:i] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') {
		return false
	}
	dom := s[at+1:]
	dot := strings.LastIndexByte(dom, '.')
	return dot > 0 && dot < len(dom)-1
}
