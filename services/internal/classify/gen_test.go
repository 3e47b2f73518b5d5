package classify

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// genGroup is one queue of the generated multilingual helpdesk.
type genGroup struct {
	name       string
	en, de, fr []string
}

var genGroups = []genGroup{
	{"Billing",
		[]string{"the invoice is wrong", "refund for my payment", "charged twice on my credit card", "please update the billing address"},
		[]string{"die Rechnung ist falsch", "Rückerstattung meiner Zahlung", "doppelt von der Kreditkarte abgebucht", "bitte die Rechnungsadresse ändern"},
		[]string{"la facture est incorrecte", "remboursement de mon paiement", "débité deux fois sur ma carte bancaire", "merci de modifier l'adresse de facturation"}},
	{"Access",
		[]string{"I cannot log in", "please reset my password", "my account is locked", "the two-factor code is not accepted"},
		[]string{"ich kann mich nicht anmelden", "bitte mein Passwort zurücksetzen", "mein Benutzerkonto ist gesperrt", "der Zwei-Faktor-Code wird nicht akzeptiert"},
		[]string{"je ne peux pas me connecter", "merci de réinitialiser mon mot de passe", "mon compte est bloqué", "le code à deux facteurs est refusé"}},
	{"Hardware",
		[]string{"the laptop screen is broken", "the printer has a paper jam", "my keyboard stopped working", "the monitor keeps flickering"},
		[]string{"der Laptopbildschirm ist kaputt", "der Drucker hat einen Papierstau", "meine Tastatur funktioniert nicht mehr", "der Monitor flackert ständig"},
		[]string{"l'écran du portable est cassé", "l'imprimante a un bourrage papier", "mon clavier ne fonctionne plus", "le moniteur clignote sans arrêt"}},
	{"Network",
		[]string{"the VPN connection keeps dropping", "the wifi is very slow", "there is no internet in the office", "I cannot reach the file server"},
		[]string{"die VPN-Verbindung bricht ständig ab", "das WLAN ist sehr langsam", "im Büro gibt es kein Internet", "der Dateiserver ist nicht erreichbar"},
		[]string{"la connexion VPN se coupe sans cesse", "le wifi est très lent", "pas d'internet au bureau", "le serveur de fichiers est inaccessible"}},
}

var genFiller = map[string][]string{
	"en": {"Hello team,", "Hi,", "Good morning,", "This started yesterday.", "Could you please have a look?", "It is quite urgent for us.", "Thanks for your help."},
	"de": {"Hallo zusammen,", "Guten Tag,", "Seit gestern besteht das Problem.", "Könnten Sie sich das bitte ansehen?", "Es ist für uns dringend.", "Danke für die Hilfe."},
	"fr": {"Bonjour,", "Bonjour l'équipe,", "Le problème a commencé hier.", "Pouvez-vous regarder s'il vous plaît ?", "C'est assez urgent pour nous.", "Merci pour votre aide."},
}

var genClosing = map[string]string{"en": "Best regards", "de": "Mit freundlichen Grüßen", "fr": "Cordialement"}

// genExamples makes n tickets in English, German and French. noise is the
// fraction of group labels replaced by a random group, so the achievable
// accuracy (and hence calibration) is known.
func genExamples(n int, seed uint64, noise float64) []Example {
	rng := rand.New(rand.NewPCG(seed, 7))
	langs := []string{"en", "de", "fr"}
	out := make([]Example, n)
	for i := range out {
		g := genGroups[rng.IntN(len(genGroups))]
		lang := langs[rng.IntN(len(langs))]
		var phrases []string
		switch lang {
		case "en":
			phrases = g.en
		case "de":
			phrases = g.de
		default:
			phrases = g.fr
		}
		fill := genFiller[lang]
		p1, p2 := phrases[rng.IntN(len(phrases))], phrases[rng.IntN(len(phrases))]
		urgent := rng.IntN(3) == 0
		var b strings.Builder
		b.WriteString(fill[rng.IntN(2)] + "\n")
		b.WriteString(p2 + ". " + fill[2+rng.IntN(2)] + "\n")
		if urgent {
			b.WriteString(fill[len(fill)-2] + "\n")
		}
		b.WriteString(fill[len(fill)-1] + "\n\n" + genClosing[lang] + "\nAlex Muster\nACME GmbH\n")
		ex := Example{ID: string(rune('a' + i%26)), Subject: p1, Body: b.String(), Group: g.name, Language: lang,
			Priority: "low", Type: "Incident", Tags: []string{}}
		if urgent {
			ex.Priority = "high"
			ex.Tags = append(ex.Tags, "urgent")
		}
		if g.name == "Billing" {
			ex.Type = "Question"
			ex.Tags = append(ex.Tags, "finance")
		}
		if rng.Float64() < noise {
			ex.Group = genGroups[rng.IntN(len(genGroups))].name
		}
		out[i] = ex
	}
	return out
}

var (
	smallOnce  sync.Once
	smallModel *Model
	smallErr   error
)

// testModel is a model trained once per test binary on generated data.
func testModel(t testing.TB) *Model {
	t.Helper()
	smallOnce.Do(func() {
		smallModel, smallErr = Train(context.Background(), genExamples(600, 1, 0.1), TrainOptions{Seed: 42, Features: FeatureOptions{HashBits: 16}})
	})
	if smallErr != nil {
		t.Fatal(smallErr)
	}
	return smallModel
}
