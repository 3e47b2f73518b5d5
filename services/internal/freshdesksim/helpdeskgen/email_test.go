package helpdeskgen

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestEmailShareChangesOnlyThePickedBodies: e-mails draw from their own
// stream, so with a share the other tickets are exactly those of the same
// seed without e-mails, and the picked ones keep their subject and labels.
func TestEmailShareChangesOnlyThePickedBodies(t *testing.T) {
	plain, zero, mixed := New(42), NewWithOptions(42, Options{EmailShare: 0}), NewWithOptions(42, Options{EmailShare: 0.3})
	emails := 0
	for i := range 600 {
		p, z, m := plain.Next(), zero.Next(), mixed.Next()
		if !reflect.DeepEqual(p, z) {
			t.Fatalf("ticket %d: EmailShare 0 changed the output", i)
		}
		if !m.Email {
			if !reflect.DeepEqual(p, m) {
				t.Fatalf("ticket %d is no e-mail but differs from the same seed without e-mails", i)
			}
			continue
		}
		emails++
		if m.Subject != p.Subject || m.Group != p.Group || m.Type != p.Type || m.Priority != p.Priority ||
			!reflect.DeepEqual(m.Tags, p.Tags) || m.Language != p.Language || m.RequesterEmail != p.RequesterEmail {
			t.Fatalf("ticket %d: the e-mail changed more than the body:\n%+v\n%+v", i, p, m)
		}
		if m.Source != 1 || !strings.Contains(m.DescriptionText, strings.Split(p.DescriptionText, "\n\n")[1][:20]) {
			t.Fatalf("ticket %d: e-mail lacks source 1 or the customer's own message", i)
		}
	}
	if emails < 120 || emails > 240 {
		t.Fatalf("%d e-mails in 600 tickets at share 0.3", emails)
	}
	a, b := NewWithOptions(9, Options{EmailShare: 1}), NewWithOptions(9, Options{EmailShare: 1})
	for i := range 100 {
		if x, y := a.Next(), b.Next(); !reflect.DeepEqual(x, y) {
			t.Fatalf("e-mail %d differs between two generators of the same seed", i)
		}
	}
}

var dataPNG = regexp.MustCompile(`data:image/png;base64,([A-Za-z0-9+/=]+)`)

// TestEmailSizeDistribution checks the long tail of e-mail bodies loosely:
// median a few KB, p90 tens of KB, p99 hundreds of KB, a few of several MB;
// and that they look like mail: quoted threads in every language, inline
// images that decode as PNG, forwarded chains and pasted logs.
func TestEmailSizeDistribution(t *testing.T) {
	if testing.Short() {
		t.Skip("generates ~50 MB of e-mail")
	}
	g := NewWithOptions(5, Options{EmailShare: 1})
	const n = 2000
	sizes := make([]int, 0, n)
	var quotes, images, forwards, logs int
	intros := map[string]bool{}
	checkedPNG := 0
	for range n {
		tk := g.Next()
		if !tk.Email || tk.Source != 1 {
			t.Fatalf("share 1 gave a non-e-mail ticket")
		}
		d := tk.Description
		sizes = append(sizes, len(d))
		if strings.Contains(d, "<blockquote") {
			quotes++
		}
		if strings.Contains(d, "---------- ") {
			forwards++
		}
		if strings.Contains(d, "<pre") {
			logs++
		}
		for _, w := range []string{" wrote:", " schrieb ", " a écrit :", " escribió:"} {
			if strings.Contains(d, w) {
				intros[w] = true
			}
		}
		if m := dataPNG.FindStringSubmatch(d); m != nil {
			images++
			if checkedPNG < 20 {
				raw, err := base64.StdEncoding.DecodeString(m[1])
				if err != nil {
					t.Fatalf("inline image is not base64: %v", err)
				}
				if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
					t.Fatalf("inline image is not a valid PNG: %v", err)
				}
				checkedPNG++
			}
		}
		if tk.DescriptionText == "" || strings.Contains(tk.DescriptionText, "data:image") || strings.Contains(tk.DescriptionText, "<div") {
			t.Fatalf("plain text of an e-mail holds markup or images: %.200q", tk.DescriptionText)
		}
	}
	sort.Ints(sizes)
	p := func(q float64) int { return sizes[int(q*float64(n-1))] }
	huge := 0
	for _, s := range sizes {
		if s >= 2<<20 {
			huge++
		}
	}
	t.Logf("HTML body bytes: p50 %d, p90 %d, p99 %d, max %d; %d of %d at 2 MB or more", p(0.5), p(0.9), p(0.99), sizes[n-1], huge, n)
	t.Logf("quoted %d, inline images %d, forwarded %d, pasted logs %d, quote languages %v", quotes, images, forwards, logs, intros)
	if m := p(0.5); m < 2<<10 || m > 10<<10 {
		t.Errorf("median %d bytes; want a few KB", m)
	}
	if q := p(0.9); q < 15<<10 || q > 150<<10 {
		t.Errorf("p90 %d bytes; want tens of KB", q)
	}
	if q := p(0.99); q < 100<<10 || q > 2<<20 {
		t.Errorf("p99 %d bytes; want hundreds of KB", q)
	}
	if huge < 2 || huge > n/50 {
		t.Errorf("%d bodies of 2 MB or more; want a few", huge)
	}
	if quotes != n || images < n/2 || forwards < n/50 || logs < n/100 || len(intros) != 4 {
		t.Errorf("quoted %d, images %d, forwarded %d, logs %d, languages %d: not mail-like enough", quotes, images, forwards, logs, len(intros))
	}
}

func BenchmarkNextEmail(b *testing.B) {
	g := NewWithOptions(1, Options{EmailShare: 1})
	var bytes int64
	b.ReportAllocs()
	for b.Loop() {
		bytes += int64(len(g.Next().Description))
	}
	b.SetBytes(bytes / int64(b.N))
}

func BenchmarkNextPlain(b *testing.B) {
	g := New(1)
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}
