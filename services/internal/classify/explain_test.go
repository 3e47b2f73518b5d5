package classify

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// TestWalkTermsMatchesAddText holds the explanation's walk in step with
// the feature extraction: every feature key gets the same total weight.
func TestWalkTermsMatchesAddText(t *testing.T) {
	e := newExtractor(FeatureOptions{}.withDefaults())
	for _, text := range []string{
		"der drucker hat einen papierstau. bitte _num_ prüfen! _url_ _email_ ok",
		"é ü ß 日本語 mixed_case a b c; x",
		"",
	} {
		for _, subject := range []bool{false, true} {
			var tab termTable
			tab.reset()
			e.addText(&tab, []byte(text), 2, subject)
			keys, tfs := tab.entries(nil, nil)
			x := &explainer{keyIdx: map[uint32]int32{}, termOf: map[string]int32{}}
			for i, k := range keys {
				x.keyIdx[k] = int32(i)
			}
			walkTerms(e, x, []byte(text), 2, subject)
			got := make([]float32, len(keys))
			for _, o := range x.occ {
				got[o.key] += o.w
				if o.term >= 0 && !strings.Contains(text, strings.Fields(x.terms[o.term])[0]) {
					t.Errorf("term %q not in %q", x.terms[o.term], text)
				}
			}
			for i := range keys {
				if got[i] != tfs[i] {
					t.Fatalf("%q subject=%v: key %x walked %v, extracted %v", text, subject, keys[i], got[i], tfs[i])
				}
			}
		}
	}
}

var keywordGroups = map[string]string{"printer": "Hardware", "invoice": "Billing", "password": "Access", "vpn": "Network"}

var (
	kwOnce  sync.Once
	kwModel *Model
	kwData  []Example
	kwErr   error
)

// keywordModel is trained on tickets of shared filler words whose group is
// given by one keyword alone; every ticket also carries a unique word, so
// each is a distinct text, and a numeric ID.
func keywordModel(t testing.TB) (*Model, []Example) {
	t.Helper()
	kwOnce.Do(func() {
		rng := rand.New(rand.NewPCG(5, 5))
		filler := strings.Fields("hello team please help with the issue since this morning our office thanks regards could you check again today urgent problem")
		kws := []string{"printer", "invoice", "password", "vpn"}
		for i := range 480 {
			kw := kws[i%len(kws)]
			words := make([]string, 0, 14)
			for range 12 {
				words = append(words, filler[rng.IntN(len(filler))])
			}
			words = append(words, uniqueWord(rng))
			pos := rng.IntN(len(words))
			words = append(words[:pos], append([]string{kw}, words[pos:]...)...)
			kwData = append(kwData, Example{ID: fmt.Sprint(5000 + i), Subject: words[0] + " " + words[1], Body: strings.Join(words[2:], " "), Group: keywordGroups[kw]})
		}
		kwModel, kwErr = Train(context.Background(), kwData, TrainOptions{Seed: 3, Features: FeatureOptions{HashBits: 16}})
	})
	if kwErr != nil {
		t.Fatal(kwErr)
	}
	return kwModel, kwData
}

func uniqueWord(rng *rand.Rand) string {
	b := make([]byte, 9)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b)
}

func TestExplainKeyword(t *testing.T) {
	m, _ := keywordModel(t)
	for kw, group := range keywordGroups {
		subject := "Problem this morning"
		body := "Hello team, could you please check the " + strings.ToUpper(kw) + " in our office again? Thanks, regards"
		res := m.PredictExplain(subject, body, 0, 0)
		fr, _ := res.Field(FieldGroup)
		if fr.Top().Label != group {
			t.Fatalf("%s: predicted %v", kw, fr.Top())
		}
		if len(fr.Terms) == 0 || len(fr.Terms) > DefaultExplainTerms {
			t.Fatalf("%s: %d terms", kw, len(fr.Terms))
		}
		if fr.Terms[0].Text != kw {
			t.Errorf("%s: strongest term %q (terms %v)", kw, fr.Terms[0].Text, fr.Terms)
		}
		text := Normalize(subject) + " " + Normalize(body)
		for i, term := range fr.Terms {
			if !strings.Contains(text, term.Text) || !(term.Weight > 0) {
				t.Errorf("%s: term %v not a positive word of the ticket", kw, term)
			}
			if i > 0 && term.Weight > fr.Terms[i-1].Weight {
				t.Errorf("%s: terms out of order: %v", kw, fr.Terms)
			}
		}
		// Prediction itself is unchanged by explaining.
		plain := m.Predict(subject, body)
		if pf, _ := plain.Field(FieldGroup); pf.Top() != fr.Top() || pf.Terms != nil {
			t.Errorf("%s: Predict %v / terms %v, PredictExplain %v", kw, pf.Top(), pf.Terms, fr.Top())
		}
	}
	if n := len(m.PredictExplain("", "printer", 0, 2).Fields[0].Terms); n > 2 {
		t.Errorf("asked for 2 terms, got %d", n)
	}
	if r := m.PredictExplain("", "", 0, 0); !r.Empty || r.Fields[0].Terms != nil {
		t.Errorf("empty ticket explained: %+v", r)
	}
}

// TestExplainSumsToScore checks the attribution is exact: the weights of
// all terms add up to the label's score minus its bias when the ticket has
// no placeholder.
func TestExplainSumsToScore(t *testing.T) {
	m, _ := keywordModel(t)
	subject, body := "printer again", "hello team the printer in our office is broken again"
	res := m.PredictExplain(subject, body, 0, 1000)
	fr, _ := res.Field(FieldGroup)
	s := m.getScratch()
	defer m.pool.Put(s)
	m.featurize(s, subject, body)
	f := &m.fields[0]
	K := len(f.info.Labels)
	k := chosenLabel(f.info, &fr)
	var score float64
	for j, c := range s.vec.cols {
		score += float64(s.vec.vals[j]) * float64(f.W[int(c)*K+k])
	}
	// Terms keep only positive weights; recompute with all of them.
	var pos float64
	for _, term := range fr.Terms {
		pos += term.Weight
	}
	if !(pos >= score-1e-6) {
		t.Errorf("positive terms sum to %v < score %v", pos, score)
	}
}

func TestSimilarNearCopy(t *testing.T) {
	m, data := keywordModel(t)
	if !m.HasSimilar() || m.SimilarDocs() != len(data) {
		t.Fatalf("index: %v, %d docs", m.HasSimilar(), m.SimilarDocs())
	}
	for _, i := range []int{17, 203, 479} {
		e := data[i]
		words := strings.Fields(e.Body)
		words[len(words)/2] = "meanwhile" // a near-copy: one word changed
		got := m.Similar(e.Subject, strings.Join(words, " ")+" ok", 3)
		if len(got) != 3 {
			t.Fatalf("%d similar", len(got))
		}
		top := got[0]
		if top.ExampleID != e.ID || top.TicketID != int64(5000+i) || top.Subject != e.Subject || top.Labels[FieldGroup] != e.Group {
			t.Errorf("near-copy of %s: top %+v", e.ID, top)
		}
		if top.Similarity < 0.8 || top.Similarity > 1 {
			t.Errorf("near-copy similarity %v", top.Similarity)
		}
		for j := 1; j < len(got); j++ {
			if got[j].Similarity > got[j-1].Similarity || got[j].ExampleID == top.ExampleID {
				t.Errorf("results out of order or repeated: %+v", got)
			}
		}
	}
	if got := m.Similar("", "zzzz qqqq", 3); len(got) != 0 {
		t.Errorf("no common term, got %+v", got)
	}
	if got := m.Similar("x", "y", 0); got != nil {
		t.Errorf("k=0 gave %v", got)
	}
}

// TestLoadWithoutIndex: a model without an index (as every artifact saved
// before the index existed) is written as format version 1, loads, and
// has no similar tickets; one with the index survives a round trip.
func TestLoadWithoutIndex(t *testing.T) {
	_, data := keywordModel(t)
	old, err := Train(context.Background(), data, TrainOptions{Seed: 3, Folds: 1, NoSimilar: true, Features: FeatureOptions{HashBits: 14}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := old.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if v := buf.Bytes()[4]; v != 1 {
		t.Fatalf("model without index written as version %d", v)
	}
	l, err := Load(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if l.HasSimilar() || l.Similar("printer", "printer", 3) != nil || l.ID() != old.ID() {
		t.Errorf("old artifact: index %v, id %s vs %s", l.HasSimilar(), l.ID(), old.ID())
	}
	if r := l.PredictExplain("", "the printer is broken", 0, 0); len(r.Fields[0].Terms) == 0 {
		t.Error("no explanation from a model without index")
	}

	m, _ := keywordModel(t)
	buf.Reset()
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if v := buf.Bytes()[4]; v != 2 {
		t.Fatalf("model with index written as version %d", v)
	}
	l, err = Load(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Similar("printer", "printer broken", 3), l.Similar("printer", "printer broken", 3)
	if len(a) != 3 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("similar differs after load:\n%v\n%v", a, b)
	}
	var again bytes.Buffer
	if err := l.Save(&again); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("save(load(x)) != x (%v)", err)
	}
	if ix := l.sim; ix.bytes() <= 0 || math.IsNaN(float64(ix.idf[0])) {
		t.Error("index size")
	}
}
