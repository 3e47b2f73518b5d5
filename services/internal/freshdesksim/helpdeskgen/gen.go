// Package helpdeskgen generates a realistic, multilingual helpdesk: groups,
// ticket types, priorities, tags and ticket texts whose vocabulary carries a
// learnable signal about the group (and, more weakly, the type and priority)
// plus realistic noise (shared greetings and signatures, fillers, quoted
// replies, typos, some HTML and a few misrouted labels).
//
// Contract: a Generator is deterministic. Two generators created with the same
// seed return the same sequence of tickets. A Generator is not safe for
// concurrent use; callers serialise access.
package helpdeskgen

import (
	"fmt"
	"html"
	"math/rand/v2"
	"strings"
)

// Ticket is one generated ticket with its true labels.
type Ticket struct {
	Subject         string
	Description     string // HTML
	DescriptionText string // plain text of Description
	Group           string // true group label
	Type            string // true type label
	Priority        int    // 1 Low .. 4 Urgent
	Tags            []string
	Language        string // "en", "de", "fr", "es"
	RequesterName   string
	RequesterEmail  string
	Company         string // "" when the requester has no company
	Source          int    // Freshdesk source code (1 email, 2 portal, 3 phone, 7 chat)
	ProductArea     string // one of ProductAreas(); uncorrelated with the group
	// Misrouted is true when the label was deliberately replaced by another
	// group (label noise): the text speaks for a different group.
	Misrouted bool
	// Email is true when the body is a realistic HTML e-mail (see
	// Options.EmailShare).
	Email bool
}

// Group describes one generated group.
type Group struct {
	Name        string
	Description string
}

// Options tune the noise. The zero value selects the defaults.
type Options struct {
	// LabelNoise is the fraction of tickets whose group label is replaced by a
	// random other group (default 0.06). Negative disables it.
	LabelNoise float64
	// ConfuserRate is the fraction of tickets that contain one sentence from
	// another group's vocabulary (default 0.25). Negative disables it.
	ConfuserRate float64
	// TypoRate is the per-word probability of a typo (default 0.03). Negative disables it.
	TypoRate float64
	// EmailShare is the fraction of tickets (0..1) whose body is a
	// realistic HTML e-mail: quoted thread, signature, forwarded chains,
	// pasted logs and inline images, with long-tailed sizes up to several
	// MB (email.go). Default 0: none. E-mails draw from a random stream of
	// their own, so the share changes only the bodies of the tickets it
	// picks.
	EmailShare float64
}

// Generator produces tickets. Create it with New.
type Generator struct {
	rng   *rand.Rand
	opts  Options
	seed  int64
	email *emailGen // nil: no e-mails
}

// New returns a generator seeded with seed and default options.
func New(seed int64) *Generator { return NewWithOptions(seed, Options{}) }

// NewWithOptions returns a generator seeded with seed.
func NewWithOptions(seed int64, opts Options) *Generator {
	if opts.LabelNoise == 0 {
		opts.LabelNoise = 0.06
	}
	if opts.ConfuserRate == 0 {
		opts.ConfuserRate = 0.25
	}
	if opts.TypoRate == 0 {
		opts.TypoRate = 0.03
	}
	s := uint64(seed)
	g := &Generator{rng: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)), opts: opts, seed: seed}
	g.SetEmailShare(opts.EmailShare)
	return g
}

// Groups returns the groups in a fixed order.
func Groups() []Group {
	out := make([]Group, len(groups))
	for i, g := range groups {
		out[i] = Group{Name: g.name, Description: g.description}
	}
	return out
}

// Types returns the ticket types (the default_ticket_type choices).
func Types() []string {
	return []string{"Question", "Incident", "Problem", "Feature Request", "Refund"}
}

// Languages returns the language codes the generator writes in.
func Languages() []string {
	out := make([]string, len(languages))
	for i, l := range languages {
		out[i] = l.code
	}
	return out
}

// ProductAreas returns the choices of the cf_product_area dropdown.
func ProductAreas() []string {
	return []string{"Web App", "Mobile App", "API", "Hardware", "Other"}
}

// groupWeights sets how often each group (by index in groups) occurs.
var groupWeights = []int{15, 20, 15, 15, 8, 12, 7, 8}

var priorityByType = map[string][]weighted{
	"Question":        {{"1", 5}, {"2", 4}, {"3", 1}},
	"Incident":        {{"2", 4}, {"3", 3}, {"4", 2}, {"1", 1}},
	"Problem":         {{"2", 5}, {"3", 3}, {"1", 1}, {"4", 1}},
	"Feature Request": {{"1", 6}, {"2", 3}},
	"Refund":          {{"2", 5}, {"1", 2}, {"3", 2}},
}

var sources = []weighted{{"1", 60}, {"2", 25}, {"3", 8}, {"7", 7}}

func (g *Generator) pickWeighted(ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.weight
	}
	n := g.rng.IntN(total)
	for _, w := range ws {
		if n < w.weight {
			return w.value
		}
		n -= w.weight
	}
	return ws[len(ws)-1].value
}

func (g *Generator) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *Generator) chance(p float64) bool { return p > 0 && g.rng.Float64() < p }

func (g *Generator) pickLang() *langDef {
	total := 0
	for _, l := range languages {
		total += l.weight
	}
	n := g.rng.IntN(total)
	for i := range languages {
		if n < languages[i].weight {
			return &languages[i]
		}
		n -= languages[i].weight
	}
	return &languages[0]
}

func (g *Generator) pickGroup() int {
	total := 0
	for _, w := range groupWeights {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range groupWeights {
		if n < w {
			return i
		}
		n -= w
	}
	return 0
}

func vocabFor(gi int, lang string) groupVocab {
	if v, ok := groups[gi].vocab[lang]; ok {
		return v
	}
	return groups[gi].vocab["en"]
}

func (g *Generator) fill(tmpl string, v groupVocab) string {
	r := strings.NewReplacer(
		"{obj}", g.pick(v.objects),
		"{n}", fmt.Sprintf("%d", 10000+g.rng.IntN(90000)),
		"{product}", g.pick(products),
		"{date}", fmt.Sprintf("2024-%02d-%02d", 1+g.rng.IntN(12), 1+g.rng.IntN(28)),
	)
	return r.Replace(tmpl)
}

// typo swaps two adjacent letters of a word, the commonest real typo.
func (g *Generator) typos(s string) string {
	if g.opts.TypoRate <= 0 {
		return s
	}
	words := strings.Fields(s)
	for i, w := range words {
		r := []rune(w)
		if len(r) > 3 && g.chance(g.opts.TypoRate) {
			j := 1 + g.rng.IntN(len(r)-2)
			r[j], r[j+1] = r[j+1], r[j]
			words[i] = string(r)
		}
	}
	return strings.Join(words, " ")
}

// Next returns the next ticket.
func (g *Generator) Next() Ticket {
	lang := g.pickLang()
	gi := g.pickGroup()
	gd := &groups[gi]
	v := vocabFor(gi, lang.code)
	typ := g.pickWeighted(gd.types)
	prio := int(g.pickWeighted(priorityByType[typ])[0] - '0')

	subject := g.fill(g.pick(v.subjects), v)
	if g.chance(0.12) {
		subject = map[string]string{"en": "Re: ", "de": "AW: ", "fr": "RE : ", "es": "RE: "}[lang.code] + subject
	}
	paras := []string{g.pick(lang.greetings), g.typos(strings.Join(g.mainSentences(lang, gi, v, typ, prio), " "))}
	first, last := g.pick(lang.firstNames), g.pick(lang.lastNames)
	name := first + " " + last
	company := ""
	if g.chance(0.4) {
		company = g.pick(companies)
	}
	sig := g.pick(lang.closings) + "\n" + name
	if company != "" {
		sig += "\n" + company
	}
	paras = append(paras, sig)
	var quoted string
	if g.chance(0.15) {
		qg := g.rng.IntN(len(groups))
		qv := vocabFor(qg, lang.code)
		quoted = g.fill(lang.quoteIntro, qv) + "\n> " + g.pick(lang.greetings) + "\n> " + g.fill(g.pick(lang.fillers), qv)
	}

	text := strings.Join(paras, "\n\n")
	if quoted != "" {
		text += "\n\n" + quoted
	}
	desc := g.renderHTML(paras, quoted)
	label, misrouted, tags := g.label(gi)
	src := int(g.pickWeighted(sources)[0] - '0')
	t := Ticket{
		Subject: subject, Description: desc, DescriptionText: text,
		Group: groups[label].name, Type: typ, Priority: prio, Tags: tags, Language: lang.code,
		RequesterName: name, RequesterEmail: requesterEmail(first, last, company), Company: company, Source: src,
		ProductArea: g.pick(ProductAreas()), Misrouted: misrouted,
	}
	g.emailify(&t, gi, lang, paras, quoted)
	return t
}

// mainSentences are the body of the message: a type cue, urgency, the
// group's sentences, sometimes one of another group (a confuser), fillers.
func (g *Generator) mainSentences(lang *langDef, gi int, v groupVocab, typ string, prio int) []string {
	var main []string
	if cues := lang.typeCues[typ]; len(cues) > 0 && g.chance(0.6) {
		main = append(main, g.pick(cues))
	}
	if prio == 4 && g.chance(0.7) {
		main = append(main, g.pick(lang.urgent))
	}
	n := 2 + g.rng.IntN(2)
	perm := g.rng.Perm(len(v.sentences))
	for i := 0; i < n && i < len(perm); i++ {
		main = append(main, g.fill(v.sentences[perm[i]], v))
	}
	if g.chance(g.opts.ConfuserRate) {
		other := (gi + 1 + g.rng.IntN(len(groups)-1)) % len(groups)
		ov := vocabFor(other, lang.code)
		main = append(main, g.fill(g.pick(ov.sentences), ov))
	}
	for k := g.rng.IntN(3); k > 0; k-- {
		main = append(main, g.fill(g.pick(lang.fillers), v))
	}
	return main
}

// label is the group the ticket is labelled with (another one with
// probability LabelNoise: misrouted) and that group's tags.
func (g *Generator) label(gi int) (label int, misrouted bool, tags []string) {
	label = gi
	if g.chance(g.opts.LabelNoise) {
		label = (gi + 1 + g.rng.IntN(len(groups)-1)) % len(groups)
		misrouted = true
	}
	ld := &groups[label]
	tags = []string{g.pick(ld.tags)}
	if g.chance(0.3) {
		if t := g.pick(ld.tags); t != tags[0] {
			tags = append(tags, t)
		}
	}
	if g.chance(0.05) {
		tags = append(tags, "vip")
	}
	return label, misrouted, tags
}

// requesterEmail is first.last at the company's domain (example.com without one).
func requesterEmail(first, last, company string) string {
	domain := "example.com"
	if company != "" {
		domain = strings.ToLower(strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				return r
			}
			return -1
		}, strings.Fields(company)[0])) + ".example"
	}
	return strings.ToLower(asciiFold(first)+"."+asciiFold(last)) + "@" + domain
}

// renderHTML builds Freshdesk-like description HTML: one div per paragraph,
// line breaks as <br>, sometimes wrapped in a styled div as mail clients do,
// quoted replies in a blockquote.
func (g *Generator) renderHTML(paras []string, quoted string) string {
	var b strings.Builder
	styled := g.chance(0.25)
	if styled {
		b.WriteString(`<div style="font-family:-apple-system, BlinkMacSystemFont, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif; font-size:14px">`)
	}
	for i, p := range paras {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("<div>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(p), "\n", "<br>"))
		b.WriteString("</div>")
	}
	if quoted != "" {
		b.WriteString("\n<blockquote class=\"freshdesk_quote\">")
		b.WriteString(strings.ReplaceAll(html.EscapeString(quoted), "\n", "<br>"))
		b.WriteString("</blockquote>")
	}
	if styled {
		b.WriteString("</div>")
	}
	return b.String()
}

func asciiFold(s string) string {
	r := strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss", "Ä", "Ae", "Ö", "Oe", "Ü", "Ue",
		"é", "e", "è", "e", "à", "a", "ç", "c", "í", "i", "á", "a", "ó", "o", "ú", "u", "ñ", "n")
	return r.Replace(s)
}
