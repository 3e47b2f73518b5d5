package helpdeskgen

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// E-mail tickets. A share of tickets (Options.EmailShare) is rendered the
// way mail clients send them to a helpdesk: the customer's message on top,
// an HTML signature with a legal footer, then the thread it answers (nested
// <blockquote>s under "On … wrote:" lines), sometimes a forwarded chain,
// pasted logs, and inline images as data: URIs. The sizes of the HTML body
// have a long tail like real mailboxes: a median of a few KB, tens of KB at
// p90, hundreds of KB at p99 and a few bodies of several MB (screenshots
// pasted inline). The topic is still the customer's own message at the top,
// so the labels stay learnable.
//
// Every choice for e-mails is drawn from a random stream of its own, so the
// share changes nothing but the bodies of the tickets it picks: subjects,
// labels and the sequence of the other tickets are those of the same seed
// without e-mails, and a share of 0 (the default) leaves the generator's
// output exactly as it always was.

// Size model of an e-mail's HTML body: log-normal around emailMedianBytes,
// plus a small share of huge ones (several MB of inline screenshots).
const (
	emailMedianBytes = 4500
	emailSigma       = 1.75
	emailHugeShare   = 0.004
	emailHugeMin     = 2 << 20
	emailHugeMax     = 9 << 20
	emailMaxBytes    = 12 << 20
)

// mailLang is the per-language wording of mail clients.
type mailLang struct {
	wrote      string // date, name, address
	forwarded  string
	from, date string
	subject    string
	to         string
	titles     []string
	footer     string
	replies    []string // an agent's answers
	followUps  []string // a customer's follow-ups
	logIntro   string
	imageAlt   string
	dateLayout string
}

var mailLangs = map[string]mailLang{
	"en": {
		wrote: "On %s, %s &lt;%s&gt; wrote:", forwarded: "---------- Forwarded message ---------",
		from: "From:", date: "Date:", subject: "Subject:", to: "To:",
		titles:    []string{"Office Manager", "Head of Operations", "IT Administrator", "Accounts Payable", "Store Manager", "Team Lead Customer Care"},
		footer:    "This e-mail and any attachments are confidential and intended solely for the addressee. If you have received it in error, please notify the sender and delete it. Any unauthorised use, disclosure or copying is prohibited.",
		replies:   []string{"Thank you for contacting us. Could you please send us a screenshot of the error message?", "We are sorry for the inconvenience. Our team is looking into it and will get back to you shortly.", "Could you tell us which version of the app you are using and when this started?", "We have forwarded your request to the responsible team.", "Please try to log out and in again and let us know whether the problem persists."},
		followUps: []string{"Thanks for the quick reply. Unfortunately it still does not work.", "I tried that, no change.", "Here is the additional information you asked for.", "Any news on this? It is still happening.", "My colleague sees the same thing on her computer."},
		logIntro:  "Here is what the log shows:", imageAlt: "image%03d.png", dateLayout: "Mon, Jan 2, 2006 at 3:04 PM",
	},
	"de": {
		wrote: "Am %s schrieb %s &lt;%s&gt;:", forwarded: "---------- Weitergeleitete Nachricht ---------",
		from: "Von:", date: "Datum:", subject: "Betreff:", to: "An:",
		titles:    []string{"Büroleitung", "Leitung Betrieb", "IT-Administrator", "Buchhaltung", "Filialleitung"},
		footer:    "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind oder diese E-Mail irrtümlich erhalten haben, informieren Sie bitte sofort den Absender und vernichten Sie diese Mail. Geschäftsführer: siehe Impressum.",
		replies:   []string{"Vielen Dank für Ihre Nachricht. Könnten Sie uns bitte einen Screenshot der Fehlermeldung schicken?", "Wir bedauern die Unannehmlichkeiten. Unser Team prüft den Vorgang und meldet sich in Kürze.", "Welche Version der App verwenden Sie, und seit wann tritt das auf?", "Wir haben Ihre Anfrage an das zuständige Team weitergeleitet."},
		followUps: []string{"Danke für die schnelle Antwort. Leider funktioniert es immer noch nicht.", "Habe ich versucht, keine Änderung.", "Anbei die gewünschten Informationen.", "Gibt es schon etwas Neues? Das Problem besteht weiterhin."},
		logIntro:  "Hier der Auszug aus dem Log:", imageAlt: "Bild%03d.png", dateLayout: "Mon., 2. Jan. 2006 um 15:04",
	},
	"fr": {
		wrote: "Le %s, %s &lt;%s&gt; a écrit :", forwarded: "---------- Message transféré ---------",
		from: "De :", date: "Date :", subject: "Objet :", to: "À :",
		titles:    []string{"Responsable administratif", "Directrice des opérations", "Administrateur informatique", "Comptabilité fournisseurs"},
		footer:    "Ce message et ses pièces jointes sont confidentiels et destinés exclusivement à leur destinataire. Si vous l'avez reçu par erreur, merci d'en avertir l'expéditeur et de le supprimer.",
		replies:   []string{"Merci de nous avoir contactés. Pourriez-vous nous envoyer une capture d'écran du message d'erreur ?", "Nous sommes désolés pour la gêne occasionnée. Notre équipe examine la situation.", "Quelle version de l'application utilisez-vous ?"},
		followUps: []string{"Merci pour la réponse rapide. Malheureusement cela ne fonctionne toujours pas.", "J'ai essayé, aucun changement.", "Voici les informations demandées."},
		logIntro:  "Voici ce que montre le journal :", imageAlt: "image%03d.png", dateLayout: "02/01/2006 à 15:04",
	},
	"es": {
		wrote: "El %s, %s &lt;%s&gt; escribió:", forwarded: "---------- Mensaje reenviado ---------",
		from: "De:", date: "Fecha:", subject: "Asunto:", to: "Para:",
		titles:    []string{"Responsable de administración", "Director de operaciones", "Administrador de sistemas"},
		footer:    "Este mensaje y sus anexos son confidenciales y están dirigidos exclusivamente a su destinatario. Si lo ha recibido por error, comuníquelo al remitente y bórrelo.",
		replies:   []string{"Gracias por contactarnos. ¿Podría enviarnos una captura de pantalla del error?", "Lamentamos las molestias. Nuestro equipo lo está revisando.", "¿Qué versión de la aplicación utiliza?"},
		followUps: []string{"Gracias por la respuesta. Por desgracia sigue sin funcionar.", "Lo he probado, sin cambios.", "Aquí tienen la información que pidieron."},
		logIntro:  "Esto es lo que muestra el registro:", imageAlt: "imagen%03d.png", dateLayout: "02/01/2006 15:04",
	},
}

var logLevels = []string{"INFO", "WARN", "ERROR", "DEBUG"}
var logComponents = []string{"sync-worker", "http", "db-pool", "auth", "printer-spooler", "billing-export", "scheduler"}
var logMessages = []string{"request %d failed: timeout after 30s", "retrying job %d (attempt 3 of 5)", "connection reset by peer while reading response for order %d", "user %d: token expired, refreshing", "queue depth %d exceeds threshold", "export %d finished with 2 warnings", "could not acquire lock for record %d"}

// emailGen draws everything about e-mails from its own stream.
type emailGen struct {
	share float64
	rng   *rand.Rand
}

func newEmailGen(seed int64, share float64) *emailGen {
	s := uint64(seed)
	return &emailGen{share: share, rng: rand.New(rand.NewPCG(s^0xe3a11, s+0x6d61696c))}
}

func (e *emailGen) pick(xs []string) string { return xs[e.rng.IntN(len(xs))] }

// size draws the target size of an HTML body in bytes.
func (e *emailGen) size() int {
	if e.rng.Float64() < emailHugeShare {
		return emailHugeMin + e.rng.IntN(emailHugeMax-emailHugeMin)
	}
	n := emailMedianBytes * math.Exp(emailSigma*e.rng.NormFloat64())
	return int(min(n, emailMaxBytes))
}

// SetEmailShare makes the given share (0..1) of the tickets generated from
// now on realistic HTML e-mails (see Options.EmailShare).
func (g *Generator) SetEmailShare(share float64) {
	share = min(max(share, 0), 1)
	if g.email == nil {
		if share == 0 {
			return
		}
		g.email = newEmailGen(g.seed, share)
	}
	g.email.share = share
}

// emailify renders t as an e-mail when the e-mail stream picks it. paras and
// quoted are the ticket's own message as Next built it.
func (g *Generator) emailify(t *Ticket, gi int, lang *langDef, paras []string, quoted string) {
	e := g.email
	if e == nil || e.share <= 0 || e.rng.Float64() >= e.share {
		return
	}
	ml, ok := mailLangs[lang.code]
	if !ok {
		ml = mailLangs["en"]
	}
	target := e.size()
	// Large bodies are mostly inline images (screenshots) or mostly text
	// (long threads, pasted logs), in a drawn mix.
	imageBytes := 0
	if target > 20<<10 && e.rng.IntN(10) < 6 {
		imageBytes = int(float64(target) * (0.3 + 0.65*e.rng.Float64()))
	}
	textTarget := target - imageBytes

	var h, txt strings.Builder
	h.Grow(target + 16<<10)
	txt.Grow(textTarget + 4<<10)
	h.WriteString(`<div dir="ltr">`)
	for _, p := range paras[:len(paras)-1] {
		h.WriteString("<div>")
		h.WriteString(strings.ReplaceAll(html.EscapeString(p), "\n", "<br>"))
		h.WriteString("</div><div><br></div>")
		txt.WriteString(p)
		txt.WriteString("\n\n")
	}
	e.signature(&h, &txt, ml, t, paras[len(paras)-1])
	depth := e.thread(&h, &txt, ml, t, gi, lang, paras, textTarget)
	if quoted != "" {
		h.WriteString("<div>" + strings.ReplaceAll(html.EscapeString(quoted), "\n", "<br>") + "</div>")
		txt.WriteString(quoted + "\n")
	}
	for range depth {
		h.WriteString("</blockquote></div>")
	}
	e.inlineImages(&h, ml, imageBytes)
	h.WriteString("</div>")
	t.Description = h.String()
	t.DescriptionText = strings.TrimSpace(txt.String())
	t.Email = true
	t.Source = 1 // e-mail
}

// signature writes the rich signature, which replaces the plain one (sig).
func (e *emailGen) signature(h, txt *strings.Builder, ml mailLang, t *Ticket, sig string) {
	name := t.RequesterName
	h.WriteString(`<div><br></div>-- <br><div dir="ltr" class="gmail_signature"><table cellpadding="0" cellspacing="0" style="font-family:Arial,sans-serif;font-size:12px;color:#444"><tr>`)
	if e.rng.IntN(3) > 0 {
		fmt.Fprintf(h, `<td style="padding-right:10px"><img src="%s" alt="logo" width="48" height="48"></td>`, e.pngDataURI(48, 48, false))
	}
	title := e.pick(ml.titles)
	phone := fmt.Sprintf("+%d %d %d", 30+e.rng.IntN(20), 100+e.rng.IntN(900), 100000+e.rng.IntN(900000))
	fmt.Fprintf(h, `<td><b>%s</b><br>%s<br>%s<br>Tel. %s<br><a href="mailto:%s">%s</a></td></tr></table>`,
		html.EscapeString(name), html.EscapeString(title), html.EscapeString(t.Company), phone, t.RequesterEmail, t.RequesterEmail)
	fmt.Fprintf(h, `<p style="font-size:9px;color:#999">%s</p></div>`, html.EscapeString(ml.footer))
	txt.WriteString(sig + "\n" + title + "\nTel. " + phone + "\n\n" + ml.footer + "\n")

}

// thread writes the thread this message answers: alternating agent replies
// and customer messages, newest first, each quoting the ones before. Quoted
// text includes the ticket's own first message and sometimes a forwarded
// chain or a pasted log, until the text budget is spent. It returns how many
// quotes are open, for the caller to close.
func (e *emailGen) thread(h, txt *strings.Builder, ml mailLang, t *Ticket, gi int, lang *langDef, paras []string, textTarget int) int {
	name := t.RequesterName
	v := vocabFor(gi, lang.code)
	when := 1 + e.rng.IntN(20)
	depth := 0
	for h.Len()+depth*len("</blockquote></div>") < textTarget || depth == 0 {
		agent := depth%2 == 0
		who, addr := "Support", "support@acme.example"
		if !agent {
			who, addr = name, t.RequesterEmail
		}
		date := fmt.Sprintf("2024-%02d-%02d %02d:%02d", 1+e.rng.IntN(12), 1+e.rng.IntN(28), 8+e.rng.IntN(10), e.rng.IntN(60))
		fmt.Fprintf(h, `<div class="gmail_quote"><div dir="ltr" class="gmail_attr">%s<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">`,
			fmt.Sprintf(ml.wrote, date, html.EscapeString(who), addr))
		txt.WriteString("\n" + html.UnescapeString(fmt.Sprintf(ml.wrote, date, who, addr)) + "\n")
		var msg []string
		switch {
		case agent:
			msg = append(msg, e.pick(lang.greetings), e.pick(ml.replies), e.pick(ml.replies), e.pick(lang.closings)+"\nSupport")
		case depth == 1:
			msg = append(msg, paras...) // the customer's first message
		default:
			msg = append(msg, e.pick(lang.greetings), e.pick(ml.followUps))
			for k := e.rng.IntN(3); k > 0; k-- {
				msg = append(msg, e.fill(e.pick(v.sentences), v))
			}
			msg = append(msg, e.pick(lang.closings)+"\n"+name)
		}
		for _, p := range msg {
			h.WriteString("<div>" + strings.ReplaceAll(html.EscapeString(p), "\n", "<br>") + "</div>")
			txt.WriteString(p + "\n")
		}
		remaining := textTarget - h.Len()
		if !agent && remaining > 8<<10 && e.rng.IntN(3) == 0 {
			e.pastedLog(h, txt, ml, min(remaining/2, 256<<10))
		}
		if depth > 0 && depth%4 == 3 && remaining > 2<<10 && e.rng.IntN(2) == 0 {
			e.forwarded(h, txt, ml, t, lang, v, when)
		}
		depth++
		if depth > 400 {
			break
		}
	}
	return depth
}

// inlineImages writes screenshots pasted into the message, about imageBytes.
func (e *emailGen) inlineImages(h *strings.Builder, ml mailLang, imageBytes int) {
	for n := 1; imageBytes > 0; n++ {
		chunk := imageBytes
		if imageBytes > 64<<10 && e.rng.IntN(2) == 0 {
			chunk = imageBytes / 2
		}
		// Base64 adds a third; a noisy grey PNG is about one byte a pixel.
		side := max(8, int(math.Sqrt(float64(chunk)*3/4)))
		uri := e.pngDataURI(side, side, true)
		alt := fmt.Sprintf(ml.imageAlt, n)
		fmt.Fprintf(h, `<div><img src="%s" alt="%s" width="%d" height="%d"><br></div>`, uri, alt, side, side)
		imageBytes -= len(uri)
	}
}

func (e *emailGen) fill(tmpl string, v groupVocab) string {
	r := strings.NewReplacer(
		"{obj}", e.pick(v.objects),
		"{n}", fmt.Sprintf("%d", 10000+e.rng.IntN(90000)),
		"{product}", e.pick(products),
		"{date}", fmt.Sprintf("2024-%02d-%02d", 1+e.rng.IntN(12), 1+e.rng.IntN(28)),
	)
	return r.Replace(tmpl)
}

// pastedLog appends a <pre> block of about n bytes of log lines (whose
// characters need no HTML escaping).
func (e *emailGen) pastedLog(h, txt *strings.Builder, ml mailLang, n int) {
	h.WriteString("<div>" + html.EscapeString(ml.logIntro) + `</div><pre style="font-family:monospace;font-size:11px">`)
	txt.WriteString(ml.logIntro + "\n")
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	line := make([]byte, 0, 160)
	for written := 0; written < n; written += len(line) {
		line = append(line[:0], "2024-"...)
		line = two(line, 1+e.rng.IntN(12))
		line = append(line, '-')
		line = two(line, 1+e.rng.IntN(28))
		line = append(line, 'T')
		line = two(line, e.rng.IntN(24))
		line = append(line, ':')
		line = two(line, e.rng.IntN(60))
		line = append(line, ':')
		line = two(line, e.rng.IntN(60))
		line = append(line, "Z "...)
		line = append(line, e.pick(logLevels)...)
		line = append(line, " ["...)
		line = append(line, e.pick(logComponents)...)
		line = append(line, "] "...)
		msg := e.pick(logMessages)
		i := strings.Index(msg, "%d")
		line = append(line, msg[:i]...)
		line = strconv.AppendInt(line, int64(1000+e.rng.IntN(900000)), 10)
		line = append(line, msg[i+2:]...)
		line = append(line, '\n')
		h.Write(line)
		txt.Write(line)
	}
	h.WriteString("</pre>")
}

// forwarded appends a forwarded message with its header block.
func (e *emailGen) forwarded(h, txt *strings.Builder, ml mailLang, t *Ticket, lang *langDef, v groupVocab, when int) {
	from := e.pick(lang.firstNames) + " " + e.pick(lang.lastNames)
	addr := strings.ToLower(asciiFold(strings.ReplaceAll(from, " ", "."))) + "@partner.example"
	date := fmt.Sprintf("2024-%02d-%02d", 1+e.rng.IntN(12), 1+(when+e.rng.IntN(20))%28)
	fmt.Fprintf(h, `<div class="gmail_quote"><div dir="ltr" class="gmail_attr">%s<br>%s <strong class="gmail_sendername">%s</strong> <span>&lt;%s&gt;</span><br>%s %s<br>%s %s<br>%s %s<br></div><br>`,
		ml.forwarded, ml.from, html.EscapeString(from), addr, ml.date, date, ml.subject, html.EscapeString("Fwd: "+t.Subject), ml.to, t.RequesterEmail)
	txt.WriteString(ml.forwarded + "\n" + ml.from + " " + from + " <" + addr + ">\n" + ml.date + " " + date + "\n" + ml.subject + " Fwd: " + t.Subject + "\n\n")
	for k := 1 + e.rng.IntN(3); k > 0; k-- {
		s := e.fill(e.pick(v.sentences), v)
		h.WriteString("<div>" + html.EscapeString(s) + "</div>")
		txt.WriteString(s + "\n")
	}
	h.WriteString("</div>")
}

// pngDataURI returns a valid PNG of w×h as a data: URI: a noisy grey
// "screenshot" (about one byte a pixel, it does not compress) or a small
// two-colour logo.
func (e *emailGen) pngDataURI(w, h int, noisy bool) string {
	var buf bytes.Buffer
	buf.Grow(w*h + h + 1024)
	var pix8 [8]byte
	if noisy {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := 0; i < len(img.Pix); i += 8 {
			binary.LittleEndian.PutUint64(pix8[:], e.rng.Uint64())
			copy(img.Pix[i:], pix8[:])
		}
		// Noise does not compress: storing it is as small and much faster.
		_ = (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&buf, img)
	} else {
		img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.White, color.RGBA{R: uint8(e.rng.IntN(200)), G: uint8(e.rng.IntN(200)), B: 160, A: 255}})
		cx, cy, r := w/2, h/2, w/3
		for y := range h {
			for x := range w {
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r {
					img.SetColorIndex(x, y, 1)
				}
			}
		}
		_ = png.Encode(&buf, img)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}
