package classify

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// Artifact format, versions 1 and 2. All integers and floats little-endian.
//
//	magic      4 bytes  "ATRM"
//	version    uint32   2 with a similar-ticket index, 1 without
//	metaLen    uint32   length of the metadata
//	metadata   metaLen bytes of JSON (Metadata: feature settings, fields
//	           with labels and calibration, training summary, held-out
//	           metrics)
//	ncol       uint32   number of kept hash buckets (feature columns)
//	buckets    ncol × uint32, strictly increasing, < 2^features.hash_bits
//	idf        ncol × float32
//	per field, in metadata order, K = len(labels):
//	  weights  ncol × K float32 (column-major by feature: the K weights of a
//	           feature are adjacent)
//	  bias     K float32
//	similar    (version 2 only) the similar-ticket index, see writeSimilar
//	created    int64    Unix nanoseconds
//	hash       32 bytes SHA-256 of every byte before created
//
// The hash covers weights and metadata but not the creation time, so
// retraining on the same data with the same seed gives the same hash; its
// hex form is the model ID. Load verifies it, so any corruption is caught.
// A model without an index is written as version 1, so an artifact saved
// before the index existed loads and saves back byte for byte (same ID).
const (
	formatMagic   = "ATRM"
	formatVersion = 2
	maxMetaBytes  = 64 << 20
	maxWeights    = 1 << 28 // 1 GiB of float32: far above any sane model
	maxLabels     = 1 << 16
)

// ErrCorrupt wraps every structural problem Load finds.
var ErrCorrupt = errors.New("classify: corrupt model artifact")

// writeBody writes everything the hash covers.
func (m *Model) writeBody(w io.Writer) error {
	meta, err := json.Marshal(&m.meta)
	if err != nil {
		return fmt.Errorf("classify: encode metadata: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var hdr [12]byte
	copy(hdr[:4], formatMagic)
	version := uint32(1)
	if m.sim != nil {
		version = formatVersion
	}
	binary.LittleEndian.PutUint32(hdr[4:], version)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(meta)))
	bw.Write(hdr[:])
	bw.Write(meta)
	var b4 [4]byte
	binary.LittleEndian.PutUint32(b4[:], uint32(len(m.buckets)))
	bw.Write(b4[:])
	for _, b := range m.buckets {
		binary.LittleEndian.PutUint32(b4[:], b)
		bw.Write(b4[:])
	}
	writeFloats(bw, m.vec.idf)
	for i := range m.fields {
		writeFloats(bw, m.fields[i].W)
		writeFloats(bw, m.fields[i].B)
	}
	if m.sim != nil {
		writeSimilar(bw, m.sim)
	}
	return bw.Flush()
}

func writeFloats(w *bufio.Writer, fs []float32) {
	var b4 [4]byte
	for _, f := range fs {
		binary.LittleEndian.PutUint32(b4[:], math.Float32bits(f))
		w.Write(b4[:])
	}
}

// seal sets the creation time and computes the content hash (model ID).
func (m *Model) seal(created time.Time) error {
	h := sha256.New()
	if err := m.writeBody(h); err != nil {
		return err
	}
	m.id = hex.EncodeToString(h.Sum(nil))
	m.created = created.UTC()
	return nil
}

// Save writes the model artifact (see the format above).
func (m *Model) Save(w io.Writer) error {
	h := sha256.New()
	if err := m.writeBody(io.MultiWriter(w, h)); err != nil {
		return fmt.Errorf("classify: save model: %w", err)
	}
	var tr [8 + sha256.Size]byte
	binary.LittleEndian.PutUint64(tr[:8], uint64(m.created.UnixNano()))
	copy(tr[8:], h.Sum(nil))
	if _, err := w.Write(tr[:]); err != nil {
		return fmt.Errorf("classify: save model: %w", err)
	}
	return nil
}

// Load reads and validates a model artifact. A truncated, corrupted or
// foreign file gives an error wrapping ErrCorrupt (or the reader's error);
// allocation grows with the bytes actually read, so a forged size cannot
// exhaust memory.
func Load(r io.Reader) (*Model, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 1<<16)
	lr := &loadReader{r: io.TeeReader(br, h)}
	m, err := load(lr, h)
	if err != nil {
		return nil, err
	}
	return m, nil
}

type loadReader struct {
	r   io.Reader
	buf [4]byte
}

func (l *loadReader) full(p []byte, what string) error {
	if _, err := io.ReadFull(l.r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated in %s", ErrCorrupt, what)
		}
		return fmt.Errorf("classify: read model: %w", err)
	}
	return nil
}

func (l *loadReader) u32(what string) (uint32, error) {
	if err := l.full(l.buf[:], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(l.buf[:]), nil
}

// floats reads n float32 in chunks, so memory follows the data present.
func (l *loadReader) floats(n int, what string) ([]float32, error) {
	out := make([]float32, 0, min(n, 1<<16))
	var chunk [4096]byte
	for len(out) < n {
		k := min(n-len(out), len(chunk)/4)
		if err := l.full(chunk[:4*k], what); err != nil {
			return nil, err
		}
		for i := range k {
			f := math.Float32frombits(binary.LittleEndian.Uint32(chunk[4*i:]))
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return nil, fmt.Errorf("%w: non-finite value in %s", ErrCorrupt, what)
			}
			out = append(out, f)
		}
	}
	return out, nil
}

func load(lr *loadReader, h hash.Hash) (*Model, error) {
	var hdr [12]byte
	if err := lr.full(hdr[:], "header"); err != nil {
		return nil, err
	}
	if string(hdr[:4]) != formatMagic {
		return nil, fmt.Errorf("%w: bad magic %q (not a model artifact)", ErrCorrupt, hdr[:4])
	}
	version := binary.LittleEndian.Uint32(hdr[4:])
	if version < 1 || version > formatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads 1..%d", ErrCorrupt, version, formatVersion)
	}
	metaLen := binary.LittleEndian.Uint32(hdr[8:])
	if metaLen > maxMetaBytes {
		return nil, fmt.Errorf("%w: metadata length %d exceeds %d", ErrCorrupt, metaLen, maxMetaBytes)
	}
	var metaBuf bytes.Buffer
	if n, err := io.CopyN(&metaBuf, lr.r, int64(metaLen)); err != nil {
		if n < int64(metaLen) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, fmt.Errorf("%w: truncated in metadata", ErrCorrupt)
		}
		return nil, fmt.Errorf("classify: read model: %w", err)
	}
	m := &Model{}
	if err := json.Unmarshal(metaBuf.Bytes(), &m.meta); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	if err := m.meta.validate(); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	fo := m.meta.Features
	size := 1 << fo.HashBits
	ncol32, err := lr.u32("column count")
	if err != nil {
		return nil, err
	}
	ncol := int(ncol32)
	if ncol > size {
		return nil, fmt.Errorf("%w: %d columns exceed hash space %d", ErrCorrupt, ncol, size)
	}
	total := 0
	for _, f := range m.meta.Fields {
		total += (ncol + 1) * len(f.Labels)
	}
	if total > maxWeights {
		return nil, fmt.Errorf("%w: %d weights exceed %d", ErrCorrupt, total, maxWeights)
	}
	m.buckets = make([]uint32, 0, min(ncol, 1<<16))
	for i := 0; i < ncol; i++ {
		b, err := lr.u32("buckets")
		if err != nil {
			return nil, err
		}
		if int(b) >= size || (i > 0 && b <= m.buckets[i-1]) {
			return nil, fmt.Errorf("%w: bucket %d out of order or range", ErrCorrupt, i)
		}
		m.buckets = append(m.buckets, b)
	}
	if m.vec.idf, err = lr.floats(ncol, "idf"); err != nil {
		return nil, err
	}
	for i := range m.meta.Fields {
		K := len(m.meta.Fields[i].Labels)
		W, err := lr.floats(ncol*K, "weights of "+m.meta.Fields[i].Name)
		if err != nil {
			return nil, err
		}
		B, err := lr.floats(K, "bias of "+m.meta.Fields[i].Name)
		if err != nil {
			return nil, err
		}
		m.fields = append(m.fields, fieldModel{info: &m.meta.Fields[i], W: W, B: B})
	}
	if version >= 2 {
		if m.sim, err = readSimilar(lr); err != nil {
			return nil, err
		}
	}
	sum := h.Sum(nil)
	var tr [8 + sha256.Size]byte
	if err := lr.full(tr[:], "trailer"); err != nil {
		return nil, err
	}
	if !bytes.Equal(tr[8:], sum) {
		return nil, fmt.Errorf("%w: content hash mismatch", ErrCorrupt)
	}
	m.id = hex.EncodeToString(sum)
	m.created = time.Unix(0, int64(binary.LittleEndian.Uint64(tr[:8]))).UTC()
	m.vec.colOf = make([]int32, size)
	for b := range m.vec.colOf {
		m.vec.colOf[b] = -1
	}
	for c, b := range m.buckets {
		m.vec.colOf[b] = int32(c)
	}
	m.vec.charWeight = float32(fo.CharWeight)
	return m, nil
}

// validate checks the metadata a loaded model depends on.
func (md *Metadata) validate() error {
	if err := md.Features.validate(); err != nil {
		return err
	}
	if len(md.Fields) == 0 {
		return errors.New("no fields")
	}
	seen := map[string]bool{}
	for _, f := range md.Fields {
		if !slices.Contains(Fields, f.Name) || seen[f.Name] {
			return fmt.Errorf("field %q unknown or repeated", f.Name)
		}
		seen[f.Name] = true
		K := len(f.Labels)
		if K == 0 || K > maxLabels {
			return fmt.Errorf("field %s: %d labels", f.Name, K)
		}
		if f.MultiLabel != (f.Name == FieldTags) {
			return fmt.Errorf("field %s: multi-label flag wrong", f.Name)
		}
		if f.MultiLabel {
			if len(f.PlattA) != K || len(f.PlattB) != K || len(f.TagThresholds) != K {
				return fmt.Errorf("field %s: calibration of %d tags incomplete", f.Name, K)
			}
		} else if !(f.Temperature > 0) || math.IsInf(f.Temperature, 0) {
			return fmt.Errorf("field %s: temperature %v", f.Name, f.Temperature)
		}
	}
	return nil
}

// writeSimilar writes the similar-ticket index:
//
//	terms_per_doc uint32
//	nstr     uint32, then per label string: uint32 length, bytes (UTF-8)
//	nset     uint32, then per label set: 4 × uint32 (string index + 1 per
//	         field in Fields order, 0 = no value)
//	ndoc     uint32, then per example: uint32 length + id, uint32 length +
//	         subject, uint32 label set
//	nterm    uint32, then term hashes nterm × uint32 strictly increasing,
//	         idf nterm × float32, posting counts nterm × uint32
//	postings sum(counts) × uint32 example, then as many uint16 weights
func writeSimilar(w *bufio.Writer, ix *similarIndex) {
	u32 := func(v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		w.Write(b[:])
	}
	str := func(s string) {
		u32(uint32(len(s)))
		w.WriteString(s)
	}
	u32(uint32(ix.termsPerDoc))
	u32(uint32(len(ix.strs)))
	for _, s := range ix.strs {
		str(s)
	}
	u32(uint32(len(ix.sets)))
	for _, set := range ix.sets {
		for _, si := range set {
			u32(uint32(si + 1))
		}
	}
	u32(uint32(len(ix.docs)))
	for _, d := range ix.docs {
		str(d.id)
		str(d.subject)
		u32(uint32(d.set))
	}
	u32(uint32(len(ix.terms)))
	for _, t := range ix.terms {
		u32(t)
	}
	writeFloats(w, ix.idf)
	for i := range ix.terms {
		u32(ix.off[i+1] - ix.off[i])
	}
	for _, d := range ix.pdoc {
		u32(d)
	}
	var b2 [2]byte
	for _, x := range ix.pw {
		binary.LittleEndian.PutUint16(b2[:], x)
		w.Write(b2[:])
	}
}

// count reads a uint32 count and checks it against limit.
func (l *loadReader) count(what string, limit int) (int, error) {
	v, err := l.u32(what)
	if err != nil {
		return 0, err
	}
	if int64(v) > int64(limit) {
		return 0, fmt.Errorf("%w: %s %d exceeds %d", ErrCorrupt, what, v, limit)
	}
	return int(v), nil
}

// str reads a length-prefixed UTF-8 string of at most limit bytes.
func (l *loadReader) str(what string, limit int) (string, error) {
	n, err := l.count(what+" length", limit)
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if err := l.full(b, what); err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: %s not UTF-8", ErrCorrupt, what)
	}
	return string(b), nil
}

// u32s reads n uint32 in chunks, so memory follows the data present.
func (l *loadReader) u32s(n int, what string) ([]uint32, error) {
	out := make([]uint32, 0, min(n, 1<<16))
	var chunk [4096]byte
	for len(out) < n {
		k := min(n-len(out), len(chunk)/4)
		if err := l.full(chunk[:4*k], what); err != nil {
			return nil, err
		}
		for i := range k {
			out = append(out, binary.LittleEndian.Uint32(chunk[4*i:]))
		}
	}
	return out, nil
}

// readSimilar reads and validates the index writeSimilar wrote.
func readSimilar(lr *loadReader) (*similarIndex, error) {
	ix := &similarIndex{}
	var err error
	if ix.termsPerDoc, err = lr.count("similar terms per example", 1024); err != nil {
		return nil, err
	}
	if ix.termsPerDoc < 1 {
		return nil, fmt.Errorf("%w: similar terms per example 0", ErrCorrupt)
	}
	nstr, err := lr.count("similar label strings", maxSimilarStrings)
	if err != nil {
		return nil, err
	}
	for range nstr {
		s, err := lr.str("similar label", maxSimilarLabel)
		if err != nil {
			return nil, err
		}
		ix.strs = append(ix.strs, s)
	}
	nset, err := lr.count("similar label sets", maxSimilarDocs)
	if err != nil {
		return nil, err
	}
	for range nset {
		var set [4]int32
		for fi := range set {
			v, err := lr.u32("similar label set")
			if err != nil {
				return nil, err
			}
			if int64(v) > int64(nstr) {
				return nil, fmt.Errorf("%w: similar label set refers to string %d of %d", ErrCorrupt, v, nstr)
			}
			set[fi] = int32(v) - 1
		}
		ix.sets = append(ix.sets, set)
	}
	ndoc, err := lr.count("similar examples", maxSimilarDocs)
	if err != nil {
		return nil, err
	}
	for range ndoc {
		var d simDoc
		if d.id, err = lr.str("similar example id", maxSimilarID); err != nil {
			return nil, err
		}
		if d.subject, err = lr.str("similar example subject", maxSimilarSubject); err != nil {
			return nil, err
		}
		set, err := lr.u32("similar example label set")
		if err != nil {
			return nil, err
		}
		if int64(set) >= int64(nset) {
			return nil, fmt.Errorf("%w: similar example label set %d of %d", ErrCorrupt, set, nset)
		}
		d.set = int32(set)
		ix.docs = append(ix.docs, d)
	}
	nterm, err := lr.count("similar terms", maxSimilarTerms)
	if err != nil {
		return nil, err
	}
	if ix.terms, err = lr.u32s(nterm, "similar terms"); err != nil {
		return nil, err
	}
	for i := 1; i < nterm; i++ {
		if ix.terms[i] <= ix.terms[i-1] {
			return nil, fmt.Errorf("%w: similar term %d out of order", ErrCorrupt, i)
		}
	}
	if ix.idf, err = lr.floats(nterm, "similar idf"); err != nil {
		return nil, err
	}
	counts, err := lr.u32s(nterm, "similar posting counts")
	if err != nil {
		return nil, err
	}
	ix.off = make([]uint32, nterm+1)
	total := 0
	for i, c := range counts {
		total += int(c)
		if total > maxSimilarPostings || total > ndoc*ix.termsPerDoc {
			return nil, fmt.Errorf("%w: similar postings exceed %d", ErrCorrupt, min(maxSimilarPostings, ndoc*ix.termsPerDoc))
		}
		ix.off[i+1] = uint32(total)
	}
	if ix.pdoc, err = lr.u32s(total, "similar postings"); err != nil {
		return nil, err
	}
	for _, d := range ix.pdoc {
		if int(d) >= ndoc {
			return nil, fmt.Errorf("%w: similar posting refers to example %d of %d", ErrCorrupt, d, ndoc)
		}
	}
	ix.pw = make([]uint16, 0, min(total, 1<<16))
	var chunk [4096]byte
	for len(ix.pw) < total {
		k := min(total-len(ix.pw), len(chunk)/2)
		if err := lr.full(chunk[:2*k], "similar weights"); err != nil {
			return nil, err
		}
		for i := range k {
			ix.pw = append(ix.pw, binary.LittleEndian.Uint16(chunk[2*i:]))
		}
	}
	return ix, nil
}
