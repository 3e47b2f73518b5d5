package classify

import (
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"case and space", "  Printer   BROKEN\n\tagain ", "printer broken again"},
		{"html", `<html><head><title>T</title><style>p{color:red}</style></head><body><p>Hello&nbsp;<b>World</b></p><script>alert(1)</script><div>second</div></body></html>`, "hello world second"},
		{"html blockquote dropped", `<div>new text</div><blockquote>old quoted text</blockquote>`, "new text"},
		{"html gmail quote cut", `<div>my issue</div><div class="gmail_quote">On Mon someone wrote: old</div>`, "my issue"},
		{"html entities", `<p>Caf&eacute; &amp; cr&egrave;me</p>`, "café & crème"},
		{"plain angle brackets kept", "a < b and <john@example.com> replied", "a < b and _email_ replied"},
		{"url", "see https://example.com/a?b=1, or www.example.org.", "see _url_ or _url_"},
		{"email", "mail jane.doe@example.co.uk please", "mail _email_ please"},
		{"numbers", "order 12345 on 10.05.2024 costs 1,200 eur; win10 and 3d", "order _num_ on _num_ costs _num_ eur; win10 and 3d"},
		{"nfkc", "ｆｕｌｌｗｉｄｔｈ ﬁle", "fullwidth file"},
		{"german fold", "STRAẞE Grüße Größe", "strasse grüsse grösse"},
		{"french", "Le serveur est inaccessible depuis ce matin", "le serveur est inaccessible depuis ce matin"},
		{"quoted lines", "my answer\n> old line\n> older", "my answer"},
		{"on wrote", "new issue here\n\nOn Mon, 3 Jun 2024 at 10:00, Bob <bob@x.com> wrote:\nold stuff", "new issue here"},
		{"on wrote wrapped", "new issue\nOn Mon, 3 Jun 2024 at 10:00, Bob\n<bob@x.com> wrote:\nold", "new issue"},
		{"am schrieb", "Neues Problem\nAm 03.06.2024 um 10:00 schrieb Bob Muster <bob@x.de>:\nalter Text", "neues problem"},
		{"le a écrit", "Nouveau problème\nLe lun. 3 juin 2024, Bob a écrit :\nancien", "nouveau problème"},
		{"original message", "Please fix\n-----Original Message-----\nFrom: x\nold", "please fix"},
		{"ursprüngliche", "Bitte beheben\n-----Ursprüngliche Nachricht-----\nVon: x", "bitte beheben"},
		{"outlook header", "Please fix this\n\nFrom: Bob\nSent: Monday\nTo: Help\nSubject: old\nold body", "please fix this"},
		{"von header", "Bitte prüfen\nVon: Bob\nGesendet: Montag\nAn: Hilfe\nalt", "bitte prüfen"},
		{"sig dashes", "Printer broken\n-- \nBob Smith\nACME", "printer broken"},
		{"best regards", "The VPN drops\nBest regards,\nBob\nACME Inc", "the vpn drops"},
		{"mfg", "Der Drucker streikt\n\nMit freundlichen Grüßen\nMax Muster", "der drucker streikt"},
		{"cordialement", "Le wifi est lent\nCordialement,\nJean", "le wifi est lent"},
		{"sent from", "Screen broken\nSent from my iPhone", "screen broken"},
		{"only quote kept", "> everything is quoted", "> everything is quoted"},
		{"closing far from end kept", "Regards\n" + strings.Repeat("content line\n", 20), "regards" + strings.Repeat(" content line", 20)},
		{"invalid utf8", "bad \xff\xfe bytes", "bad bytes"},
		{"control bytes", "nul\x00byte\x07bell", "nul byte bell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNormalizeBounded checks that huge and hostile inputs cost bounded
// memory: the allocation for a 10 MB body stays a small multiple of the
// input caps, not of the input.
func TestNormalizeBounded(t *testing.T) {
	inputs := map[string]string{
		"10MB text":  strings.Repeat("printer broken again ", 500_000),
		"10MB html":  "<html><body>" + strings.Repeat("<div><p>printer <b>broken</b></p></div>", 250_000),
		"10MB tag":   "<div " + strings.Repeat("a", 10<<20),
		"10MB bin":   string(binaryNoise(10 << 20)),
		"10MB lines": strings.Repeat("> quoted\n", 1<<20),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out := Normalize(in)
			runtime.ReadMemStats(&after)
			if !utf8.ValidString(out) {
				t.Fatal("output not valid UTF-8")
			}
			if len(out) > MaxTextBytes*2 {
				t.Fatalf("output %d bytes, want <= %d", len(out), 2*MaxTextBytes)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24*MaxRawBytes {
				t.Fatalf("allocated %d bytes for a %d-byte input, want <= %d", alloc, len(in), 24*MaxRawBytes)
			}
		})
	}
}

func binaryNoise(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"", "<p>hi</p>", "On x wrote:\n> y", "a\xffb", "mail a@b.c https://x.y 12.3", "-- \nsig", "<div class=gmail_quote>x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Normalize(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 output for %q", s)
		}
		if Normalize(s) != out {
			t.Fatalf("not deterministic for %q", s)
		}
	})
}

func TestCutRawCutsAtARuneBoundary(t *testing.T) {
	short := strings.Repeat("é", 10)
	if out, cut := CutRaw(short); out != short || cut {
		t.Fatalf("short input changed: %q %v", out, cut)
	}
	// "€" is 3 bytes; placed across the limit it must go whole.
	long := strings.Repeat("a", MaxRawBytes-1) + "€" + strings.Repeat("b", 100)
	out, cut := CutRaw(long)
	if !cut || len(out) != MaxRawBytes-1 || !utf8.ValidString(out) {
		t.Fatalf("cut %v to %d bytes (valid %v); want %d valid bytes", cut, len(out), utf8.ValidString(out), MaxRawBytes-1)
	}
	exact := strings.Repeat("a", MaxRawBytes)
	if out, cut := CutRaw(exact); out != exact || cut {
		t.Fatalf("input of exactly the limit was cut")
	}
}
