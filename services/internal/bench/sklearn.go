package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// parseBaselines reads the scikit-learn table of the datasets' README: the
// Markdown table whose header has dataset, label, model, accuracy and
// macro-F1 columns. Columns are found by header name, so added columns do
// not break it.
func parseBaselines(path string) ([]SklearnRow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []SklearnRow
	var cols map[string]int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			cols = nil
			continue
		}
		cells := splitRow(line)
		if cols == nil {
			c := map[string]int{}
			for i, h := range cells {
				c[normHeader(h)] = i
			}
			_, d := c["dataset"]
			_, m := c["model"]
			_, a := c["accuracy"]
			_, f := c["macro-f1"]
			if d && m && a && f {
				cols = c
			} else {
				cols = map[string]int{} // a table, but not this one
			}
			continue
		}
		if len(cols) == 0 || strings.Trim(strings.Join(cells, ""), "-: ") == "" {
			continue // other table, or the separator row
		}
		get := func(k string) string {
			if i, ok := cols[k]; ok && i < len(cells) {
				return strings.Trim(cells[i], "` ")
			}
			return ""
		}
		num := func(k string) float64 {
			v, _ := strconv.ParseFloat(strings.ReplaceAll(get(k), ",", ""), 64)
			return v
		}
		row := SklearnRow{
			Dataset: get("dataset"), Label: get("label"), Model: get("model"),
			Accuracy: num("accuracy"), MacroF1: num("macro-f1"),
			TrainUsPerTicket: num("train µs/ticket"), PredictUsPerTick: num("predict µs/ticket"),
			Source: "datasets/README.md",
		}
		if row.Label == "" {
			row.Label = "group"
		}
		if row.Dataset != "" && row.Model != "" && row.MacroF1 > 0 {
			out = append(out, row)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no baseline table (dataset | label | model | accuracy | macro-F1)", path)
	}
	return out, nil
}

func splitRow(line string) []string {
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	parts := strings.Split(line, "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func normHeader(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	return strings.ReplaceAll(h, "us/ticket", "µs/ticket")
}

// sklearnPython returns /usr/bin/python3 when it can import scikit-learn.
func sklearnPython(ctx context.Context) string {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if exec.CommandContext(ctx, py, "-c", "import sklearn, numpy, scipy").Run() != nil {
		return ""
	}
	return py
}

// sklearnScript is the baseline of datasets/README.md: TF-IDF of word 1-2
// grams and char_wb 2-5 grams, sublinear TF, min_df 2, then LinearSVC (C=1)
// and LogisticRegression (C=10). It is written to a temporary file and run;
// it is not a dependency of the project.
const sklearnScript = `
import json, sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

def load(p, limit):
    rows = [json.loads(l) for l in open(p, encoding="utf-8") if l.strip()]
    if limit > 0 and limit < len(rows):
        rows = [rows[i * len(rows) // limit] for i in range(limit)]
    return rows

d, limit = sys.argv[1], int(sys.argv[2])
train, test = load(d + "/train.jsonl", limit), load(d + "/test.jsonl", max(limit // 3, 50) if limit > 0 else 0)
text = lambda r: ((r.get("subject") or "") + " " + (r.get("body") or "")).strip()
out = []
for label in ("group", "priority", "type"):
    tr = [r for r in train if r.get(label) not in (None, "")]
    te = [r for r in test if r.get(label) not in (None, "")]
    if len({str(r[label]) for r in tr}) < 2 or not te:
        continue
    for name, clf in (("LinearSVC", LinearSVC(C=1)), ("LogReg", LogisticRegression(C=10, max_iter=1000))):
        feats = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2))
        p = make_pipeline(feats, clf)
        t0 = time.time(); p.fit([text(r) for r in tr], [str(r[label]) for r in tr]); t1 = time.time()
        pred = p.predict([text(r) for r in te]); t2 = time.time()
        y = [str(r[label]) for r in te]
        out.append({"label": label, "model": name, "accuracy": accuracy_score(y, pred),
                    "macro_f1": f1_score(y, pred, average="macro"),
                    "train_us": (t1 - t0) * 1e6 / len(tr), "predict_us": (t2 - t1) * 1e6 / len(te)})
print(json.dumps(out))
`

// recomputeSklearn runs the baseline script on every dataset.
func recomputeSklearn(ctx context.Context, py string, dirs []string, limit int) ([]SklearnRow, error) {
	f, err := os.CreateTemp("", "autotriage-sklearn-*.py")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(sklearnScript); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	var out []SklearnRow
	for _, d := range dirs {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, py, f.Name(), d, strconv.Itoa(limit))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s: %w: %s", filepath.Base(d), err, lastLine(stderr.String()))
		}
		var raw []map[string]any
		if err := json.Unmarshal(lastJSONArray(stdout.Bytes()), &raw); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(d), err)
		}
		for _, r := range raw {
			s, _ := r["label"].(string)
			m, _ := r["model"].(string)
			fl := func(k string) float64 { v, _ := r[k].(float64); return v }
			out = append(out, SklearnRow{
				Dataset: filepath.Base(d), Label: s, Model: m, Accuracy: fl("accuracy"), MacroF1: fl("macro_f1"),
				TrainUsPerTicket: fl("train_us"), PredictUsPerTick: fl("predict_us"), Source: "recomputed",
			})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the script produced no figures")
	}
	return out, nil
}

func lastJSONArray(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.HasPrefix(lines[i], []byte("[")) {
			return lines[i]
		}
	}
	return b
}
