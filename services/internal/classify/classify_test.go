package classify

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestTrainDeterministic(t *testing.T) {
	data := genExamples(300, 3, 0.05)
	opts := TrainOptions{Seed: 9, Features: FeatureOptions{HashBits: 14}, Workers: 2}
	a, err := Train(context.Background(), data, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Workers = 1 // the schedule must not matter
	b, err := Train(context.Background(), data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() {
		t.Fatalf("same data and seed gave models %s and %s", a.ID(), b.ID())
	}
	var ba, bb bytes.Buffer
	if err := a.Save(&ba); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(&bb); err != nil {
		t.Fatal(err)
	}
	const trailer = 8 + 32
	if !bytes.Equal(ba.Bytes()[:ba.Len()-trailer], bb.Bytes()[:bb.Len()-trailer]) {
		t.Fatal("artifacts differ beyond the creation time")
	}
	opts.Seed = 10
	c, err := Train(context.Background(), data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID() == a.ID() {
		t.Error("a different seed gave the same model (the seed is unused?)")
	}
}

func TestMultilingualObviousCases(t *testing.T) {
	m := testModel(t)
	if got := m.FieldNames(); strings.Join(got, ",") != "group,priority,type,tags" {
		t.Fatalf("fields %v", got)
	}
	cases := []struct{ subject, body, group string }{
		{"Drucker", "Hallo, der Drucker im 2. Stock hat schon wieder einen Papierstau.", "Hardware"},
		{"", "Mein Passwort ist abgelaufen und ich kann mich nicht anmelden", "Access"},
		{"Invoice", "We were charged twice, please refund the payment.", "Billing"},
		{"VPN", "The VPN connection drops every few minutes from home.", "Network"},
		{"", "Bonjour, le wifi est très lent au bureau depuis ce matin.", "Network"},
		{"Facture", "Ma facture est incorrecte, merci de vérifier.", "Billing"},
		{"Tastatur kaputt", "", "Hardware"},
	}
	for _, c := range cases {
		r := m.Predict(c.subject, c.body)
		g, ok := r.Field(FieldGroup)
		if !ok {
			t.Fatal("no group")
		}
		if g.Top().Label != c.group {
			t.Errorf("%q / %q: got %s (%.2f), want %s", c.subject, c.body, g.Top().Label, g.Top().Probability, c.group)
		}
		var sum float64
		for i, lp := range g.Labels {
			sum += lp.Probability
			if i > 0 && lp.Probability > g.Labels[i-1].Probability {
				t.Errorf("labels not sorted: %v", g.Labels)
			}
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("probabilities sum to %v", sum)
		}
	}
	r := m.Predict("Dringend: Rechnung falsch", "Es ist für uns dringend. Die Rechnung ist falsch.")
	tags, _ := r.Field(FieldTags)
	if !strings.Contains(strings.Join(tags.Selected, ","), "finance") {
		t.Errorf("tags %v, want finance selected", tags.Labels)
	}
	if typ, _ := r.Field(FieldType); typ.Top().Label != "Question" {
		t.Errorf("type %v, want Question", typ.Labels)
	}
}

func TestCalibrationGenerated(t *testing.T) {
	m := testModel(t)
	test := genExamples(1500, 77, 0.1)
	rep := Evaluate(m, test)
	for _, f := range rep.Fields {
		if f.ECE > 0.08 {
			t.Errorf("%s: ECE %.3f on generated data, want <= 0.08", f.Field, f.ECE)
		}
	}
	g := rep.Field(FieldGroup)
	// With 10% of labels replaced at random (2.5% by the same label), about
	// 92.5% is the best reachable accuracy.
	if g.Accuracy < 0.85 {
		t.Errorf("group accuracy %.3f", g.Accuracy)
	}
	if h := m.HeldOut(FieldGroup); h == nil || h.ECE > 0.08 || len(h.Curve) != curveSteps+1 || len(h.Confusion) != 4 {
		t.Errorf("held-out report missing or off: %+v", h)
	}
	if _, _, ok := g.ThresholdForPrecision(0.999999); ok {
		t.Log("precision 1 reached on noisy data")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := testModel(t)
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	l, err := Load(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if l.ID() != m.ID() || !l.Created().Equal(m.Created()) {
		t.Fatalf("id/created changed: %s %v vs %s %v", l.ID(), l.Created(), m.ID(), m.Created())
	}
	for _, ex := range genExamples(50, 5, 0) {
		a, b := m.Predict(ex.Subject, ex.Body), l.Predict(ex.Subject, ex.Body)
		for i := range a.Fields {
			for j := range a.Fields[i].Labels {
				if a.Fields[i].Labels[j] != b.Fields[i].Labels[j] {
					t.Fatalf("prediction differs after load: %v vs %v", a.Fields[i].Labels, b.Fields[i].Labels)
				}
			}
		}
	}
	var again bytes.Buffer
	if err := l.Save(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("save(load(x)) != x")
	}
}

func TestLoadRejectsCorrupt(t *testing.T) {
	m := testModel(t)
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	check := func(name string, b []byte) {
		t.Helper()
		if _, err := Load(bytes.NewReader(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	check("empty", nil)
	check("magic", append([]byte("XXXX"), good[4:]...))
	for _, n := range []int{3, 11, 20, len(good) / 2, len(good) - 1} {
		check("truncated", good[:n])
	}
	for _, off := range []int{6, 9, 40, len(good) / 3, len(good) - 50, len(good) - 5} {
		b := bytes.Clone(good)
		b[off] ^= 0x41
		check("flipped", b)
	}
	// A forged huge column count must fail without allocating it.
	b := bytes.Clone(good)
	metaLen := int(b[8]) | int(b[9])<<8 | int(b[10])<<16 | int(b[11])<<24
	copy(b[12+metaLen:], []byte{0xff, 0xff, 0xff, 0x00})
	check("huge ncol", b)
}

func TestHostileInput(t *testing.T) {
	m := testModel(t)
	big := strings.Repeat("Der Drucker ist kaputt. ", 450_000) // ~10 MB
	for name, body := range map[string]string{
		"empty":   "",
		"10MB":    big,
		"invalid": "\xff\xfe\xfd printer \xc3\x28",
		"binary":  string(binaryNoise(1 << 20)),
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := m.Predict(name, body)
		runtime.ReadMemStats(&after)
		if len(r.Fields) != 4 {
			t.Fatalf("%s: %d fields", name, len(r.Fields))
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24*MaxRawBytes {
			t.Errorf("%s: allocated %d bytes", name, alloc)
		}
	}
	if r := m.Predict("", ""); !r.Empty {
		t.Error("empty ticket not flagged Empty")
	}
}

func TestPredictAllocations(t *testing.T) {
	m := testModel(t)
	m.Predict("warm", "up the pool")
	allocs := testing.AllocsPerRun(50, func() {
		m.Predict("Drucker kaputt", "Hallo, der Drucker hat einen Papierstau. Danke")
	})
	// The result itself: one slice per field of labels, the selected labels
	// and the field list; the normaliser's strings. (The race detector's
	// sync.Pool drops items at random, hence the slack.)
	if allocs > 40 {
		t.Errorf("%.0f allocations per Predict", allocs)
	}
}

func TestPredictBatchMatchesPredict(t *testing.T) {
	m := testModel(t)
	ex := genExamples(20, 11, 0)
	in := make([][2]string, len(ex))
	for i, e := range ex {
		in[i] = [2]string{e.Subject, e.Body}
	}
	out := m.PredictBatch(in, 2)
	for i, e := range ex {
		want := m.Predict(e.Subject, e.Body)
		if out[i].Fields[0].Top() != want.Fields[0].Top() {
			t.Fatalf("%d: batch %v, single %v", i, out[i].Fields[0].Top(), want.Fields[0].Top())
		}
	}
	if top := m.PredictTopK("x", "printer", 2); len(top.Fields[0].Labels) != 2 {
		t.Errorf("top-k kept %d labels", len(top.Fields[0].Labels))
	}
}

func TestTrainErrors(t *testing.T) {
	if _, err := Train(context.Background(), nil, TrainOptions{}); !errors.Is(err, ErrNoData) {
		t.Errorf("no data: %v", err)
	}
	if _, err := Train(context.Background(), genExamples(10, 1, 0), TrainOptions{Features: FeatureOptions{HashBits: 40}}); err == nil {
		t.Error("bad hash bits accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, genExamples(100, 1, 0), TrainOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestReadJSONL(t *testing.T) {
	in := `{"id":"1","subject":"s","body":"b","group":"g","priority":3,"tags":["a"],"language":"de"}

{"id":2,"body":"x","group":"h","type":"Incident"}
not json
{"id":"4","body":"no label"}
{"id":"5","body":"y","group":"g","priority":"high"}`
	ex, err := ReadJSONL(strings.NewReader(in))
	if len(ex) != 3 {
		t.Fatalf("%d examples", len(ex))
	}
	if ex[0].Priority != "3" || ex[1].ID != "2" || ex[2].Priority != "high" || ex[0].Tags[0] != "a" {
		t.Errorf("parsed %+v", ex)
	}
	var le *LineError
	if !errors.As(err, &le) || le.Line != 4 || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("err = %v, want line 4 and line 5 reported", err)
	}
}

func TestThresholdForPrecision(t *testing.T) {
	conf := []float64{0.99, 0.97, 0.95, 0.9, 0.8, 0.6}
	correct := []bool{true, true, true, false, true, false}
	r := &FieldReport{Curve: precisionCurve(conf, correct, len(conf), false)}
	th, cov, ok := r.ThresholdForPrecision(0.75)
	if !ok || th > 0.8 || th <= 0.6 || math.Abs(cov-5.0/6) > 1e-9 {
		t.Errorf("0.75: %v %v %v", th, cov, ok)
	}
	th, cov, ok = r.ThresholdForPrecision(1)
	if !ok || th > 0.95 || th <= 0.9 || math.Abs(cov-0.5) > 1e-9 {
		t.Errorf("1.0: %v %v %v", th, cov, ok)
	}
	r = &FieldReport{Curve: precisionCurve([]float64{0.9}, []bool{false}, 1, false)}
	if _, _, ok := r.ThresholdForPrecision(0.5); ok {
		t.Error("unreachable precision reported reachable")
	}
	var nilRep *FieldReport
	if _, _, ok := nilRep.ThresholdForPrecision(0.5); ok {
		t.Error("nil report")
	}
}

func FuzzLoad(f *testing.F) {
	m, err := Train(context.Background(), genExamples(60, 2, 0), TrainOptions{Seed: 1, Folds: 1, Features: FeatureOptions{HashBits: 12}})
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes()) // version 2, with a similar-ticket index
	old, err := Train(context.Background(), genExamples(60, 2, 0), TrainOptions{Seed: 1, Folds: 1, NoSimilar: true, Features: FeatureOptions{HashBits: 12}})
	if err != nil {
		f.Fatal(err)
	}
	buf.Reset()
	if err := old.Save(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes()) // version 1, no index
	f.Add([]byte("ATRM\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Load(bytes.NewReader(b))
		if err == nil {
			m.PredictExplain("subject", "body text", 0, 0)
			m.Similar("subject", "body text", 3)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}
